//! Spans, flows, metrics and OTLP export through the public API: an
//! in-memory exporter sees every span the engine makes, the engine's own
//! store answers flow queries, and a real OTLP/HTTP receiver on 127.0.0.1
//! gets what the exporter sends.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use tempfile::TempDir;

use crate::clock::{Clock, ManualClock, Timestamp};
use crate::config::Config;
use crate::engine::{Engine, OpenOptions};
use crate::envelope::OutgoingMessage;
use crate::queue::{Backoff, ConsumeOptions, DeadLetterFilter, Outcome, QueueSpec, ReceiveOptions};
use crate::telemetry::{FlowNodeKind, FlowQuery, attr};

const START: Timestamp = Timestamp(1_800_000_000_000);

struct Fixture {
    engine: Engine,
    clock: ManualClock,
    spans: InMemorySpanExporter,
    _dir: TempDir,
}

async fn fixture_with(config: impl FnOnce(&mut Config)) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let (clock, manual) = Clock::manual(START);
    let mut c = Config::default();
    c.storage.data_dir = Some(dir.path().to_path_buf());
    c.queue.maintenance_interval_ms = 24 * 60 * 60 * 1000;
    config(&mut c);
    let spans = InMemorySpanExporter::default();
    let engine = Engine::open_with(
        c,
        OpenOptions {
            clock,
            span_exporters: vec![Box::new(spans.clone())],
        },
    )
    .await
    .expect("engine opens");
    Fixture {
        engine,
        clock: manual,
        spans,
        _dir: dir,
    }
}

async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

impl Fixture {
    async fn receive(&self, queue: &str) -> crate::queue::Delivery {
        let mut got = self
            .engine
            .queues()
            .receive(
                queue,
                ReceiveOptions {
                    n_max: 1,
                    ..Default::default()
                },
            )
            .await
            .expect("receive");
        assert_eq!(got.len(), 1, "one delivery from {queue}");
        got.remove(0)
    }

    /// Every span finished so far, by name and in the order they ended.
    fn finished(&self) -> Vec<SpanData> {
        self.engine.telemetry().flush();
        self.spans.get_finished_spans().expect("spans")
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn one<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found = named(spans, name);
    assert_eq!(found.len(), 1, "one `{name}` span in {:?}", names(spans));
    found[0]
}

fn names(spans: &[SpanData]) -> Vec<String> {
    spans.iter().map(|s| s.name.to_string()).collect()
}

fn is_child(child: &SpanData, parent: &SpanData) -> bool {
    child.parent_span_id == parent.span_context.span_id()
        && child.span_context.trace_id() == parent.span_context.trace_id()
}

#[tokio::test]
async fn a_message_failed_twice_then_acked_has_one_consumer_span_per_attempt() {
    let f = fixture().await;
    let queues = f.engine.queues();
    queues
        .declare(
            QueueSpec::new("orders")
                .max_retries(3)
                .retry_backoff(Backoff::fixed(100)),
        )
        .await
        .unwrap();
    let sent = queues
        .send(
            "orders",
            OutgoingMessage::json(&1).correlation_id("order-7"),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        let d = f.receive("orders").await;
        queues
            .nack(&d.lease, "payment service timed out")
            .await
            .unwrap();
        f.clock.advance(Duration::from_millis(100));
    }
    let d = f.receive("orders").await;
    queues.ack(&d.lease).await.unwrap();

    let spans = f.finished();
    let send = one(&spans, "send orders");
    assert_eq!(send.span_kind, SpanKind::Producer);
    assert_eq!(send.parent_span_id, opentelemetry::trace::SpanId::INVALID);
    for (key, value) in [
        (attr::MESSAGING_SYSTEM, "switchyard"),
        (attr::DESTINATION, "orders"),
        (attr::OPERATION_TYPE, "send"),
        (attr::MESSAGE_ID, &sent.id.to_string()),
        (attr::CONVERSATION_ID, "order-7"),
    ] {
        assert_eq!(attribute(send, key).as_deref(), Some(value), "{key}");
    }
    let mut receives = named(&spans, "receive orders");
    receives.sort_by_key(|s| attribute(s, attr::ATTEMPT));
    assert_eq!(receives.len(), 3, "{:?}", names(&spans));
    let expected = [
        ("1", "retry_scheduled", false),
        ("2", "retry_scheduled", false),
        ("3", "acked", true),
    ];
    for (span, (attempt, outcome, ok)) in receives.iter().zip(expected) {
        assert_eq!(span.span_kind, SpanKind::Consumer);
        assert!(is_child(span, send), "each attempt is a child of the send");
        assert_eq!(attribute(span, attr::ATTEMPT).as_deref(), Some(attempt));
        assert_eq!(attribute(span, attr::OUTCOME).as_deref(), Some(outcome));
        assert_eq!(
            attribute(span, attr::OPERATION_TYPE).as_deref(),
            Some("receive")
        );
        assert_eq!(
            attribute(span, attr::CONVERSATION_ID).as_deref(),
            Some("order-7")
        );
        assert_eq!(
            matches!(span.status, Status::Ok),
            ok,
            "status of attempt {attempt}"
        );
    }
    let nacks = named(&spans, "nack orders");
    assert_eq!(nacks.len(), 2);
    let retries = named(&spans, "retry orders");
    assert_eq!(retries.len(), 2);
    for (nack, receive) in nacks.iter().zip(&receives[..2]) {
        assert!(is_child(nack, receive), "a nack is a child of its attempt");
        assert_eq!(
            attribute(nack, attr::OPERATION_TYPE).as_deref(),
            Some("settle")
        );
        assert!(
            retries.iter().any(|r| is_child(r, nack)),
            "a retry under each nack"
        );
    }
    let due = START.0 + 100;
    assert_eq!(
        attribute(retries[0], attr::RETRY_DUE_MS).as_deref(),
        Some(due.to_string().as_str())
    );
    let ack = one(&spans, "ack orders");
    assert!(is_child(ack, receives[2]));
    assert_eq!(spans.len(), 1 + 3 + 2 + 2 + 1, "{:?}", names(&spans));
}

#[tokio::test]
async fn a_dead_letter_retried_by_an_operator_stays_in_its_trace_and_flow() {
    let f = fixture().await;
    let queues = f.engine.queues();
    queues
        .declare(
            QueueSpec::new("orders")
                .max_retries(1)
                .retry_backoff(Backoff::fixed(10))
                .dead_letter_queue("orders.dlq"),
        )
        .await
        .unwrap();
    let sent = queues
        .send("orders", OutgoingMessage::json(&1).source("web-shop"))
        .await
        .unwrap();
    for _ in 0..2 {
        let d = f.receive("orders").await;
        queues.nack(&d.lease, "card declined").await.unwrap();
        f.clock.advance(Duration::from_millis(10));
    }
    let retried = queues
        .retry_dead_letters(&DeadLetterFilter {
            queue: Some("orders.dlq".to_owned()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(retried, vec![sent.id]);
    let d = f.receive("orders").await;
    queues.ack(&d.lease).await.unwrap();

    let spans = f.finished();
    let send = one(&spans, "send orders");
    let dead = one(&spans, "dead_letter orders");
    assert_eq!(
        attribute(dead, attr::DEAD_LETTER_REASON).as_deref(),
        Some("max-retries")
    );
    assert_eq!(
        attribute(dead, attr::DEAD_LETTER_QUEUE).as_deref(),
        Some("orders.dlq")
    );
    let last_nack = named(&spans, "nack orders")
        .into_iter()
        .find(|n| is_child(dead, n))
        .expect("the dead-lettering is a child of the last nack");
    assert_eq!(
        attribute(last_nack, attr::OUTCOME).as_deref(),
        Some("dead_lettered")
    );
    let redrive = one(&spans, "retried orders.dlq");
    assert!(
        is_child(redrive, send),
        "the operator's retry joins the message's trace"
    );
    assert_eq!(
        attribute(redrive, attr::REDRIVE_TO).as_deref(),
        Some("orders")
    );
    assert_eq!(attribute(redrive, attr::OPERATOR).as_deref(), Some("true"));
    let receives = named(&spans, "receive orders");
    assert_eq!(receives.len(), 3);
    assert!(receives.iter().all(|r| is_child(r, send)));
    let after = receives
        .iter()
        .find(|r| attribute(r, attr::OUTCOME).as_deref() == Some("acked"))
        .expect("the retried delivery was acked");
    assert_eq!(
        attribute(after, attr::ATTEMPT).as_deref(),
        Some("1"),
        "attempts reset"
    );

    // The engine's own store draws the same story as a graph.
    let flow = f
        .engine
        .flows()
        .by_correlation(&sent.id.to_string())
        .await
        .unwrap();
    assert_eq!(flow.query, FlowQuery::Correlation);
    assert_eq!(flow.timeline.len(), spans.len());
    let kinds: HashMap<&str, FlowNodeKind> =
        flow.nodes.iter().map(|n| (n.id.as_str(), n.kind)).collect();
    assert_eq!(
        kinds,
        HashMap::from([
            ("producer:web-shop", FlowNodeKind::Producer),
            ("queue:orders", FlowNodeKind::Queue),
            ("handler:orders", FlowNodeKind::Handler),
            ("queue:orders.dlq", FlowNodeKind::DeadLetterQueue),
        ])
    );
    let edge = |from: &str, to: &str| {
        flow.edges
            .iter()
            .find(|e| e.from == from && e.to == to)
            .unwrap_or_else(|| panic!("edge {from} -> {to} in {:?}", flow.edges))
    };
    assert_eq!(edge("producer:web-shop", "queue:orders").messages, 1);
    let deliveries = edge("queue:orders", "handler:orders");
    assert_eq!((deliveries.messages, deliveries.failures), (3, 2));
    assert_eq!(deliveries.outcomes.get("retry_scheduled"), Some(&1));
    assert_eq!(deliveries.outcomes.get("dead_lettered"), Some(&1));
    assert_eq!(deliveries.outcomes.get("acked"), Some(&1));
    let dead = edge("queue:orders", "queue:orders.dlq");
    assert_eq!(
        (dead.messages, dead.outcomes.get("max-retries")),
        (1, Some(&1))
    );
    assert_eq!(
        edge("queue:orders.dlq", "queue:orders")
            .outcomes
            .get("retried"),
        Some(&1)
    );
    assert_eq!(flow.edges.len(), 4, "{:?}", flow.edges);
    // Timeline: ordered, with parents inside the flow.
    assert!(
        flow.timeline
            .windows(2)
            .all(|w| w[0].start_us <= w[1].start_us)
    );
    let ids: Vec<&str> = flow.timeline.iter().map(|s| s.span_id.as_str()).collect();
    for span in &flow.timeline {
        if let Some(parent) = &span.parent_span_id {
            assert!(
                ids.contains(&parent.as_str()),
                "{} has its parent",
                span.name
            );
        }
    }
    // The same flow by message id and by trace id; a lookup finds it too.
    let by_message = f
        .engine
        .flows()
        .by_message(&sent.id.to_string())
        .await
        .unwrap();
    assert_eq!(by_message.query, FlowQuery::Message);
    assert_eq!(by_message.timeline.len(), flow.timeline.len());
    let trace_id = flow.trace_ids[0].clone();
    assert_eq!(flow.trace_ids.len(), 1);
    let by_trace = f.engine.flows().by_trace(&trace_id).await.unwrap();
    assert_eq!(by_trace.timeline.len(), flow.timeline.len());
    let lookup = f.engine.flows().lookup(&trace_id).await.unwrap();
    assert_eq!(lookup.query, FlowQuery::Trace);
    let recent = f.engine.flows().recent(10).await.unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].correlation_id, sent.id.to_string());
    assert_eq!(recent[0].dead_lettered, 1);
    assert_eq!(
        recent[0].queues,
        vec!["orders".to_owned(), "orders.dlq".to_owned()]
    );
    let nothing = f.engine.flows().lookup("no-such-id").await.unwrap();
    assert!(nothing.timeline.is_empty() && nothing.nodes.is_empty());
}

#[tokio::test]
async fn a_handler_that_sends_continues_the_flow_without_copying_ids() {
    let f = fixture().await;
    let queues = f.engine.queues().clone();
    queues.declare(QueueSpec::new("orders")).await.unwrap();
    queues.declare(QueueSpec::new("payments")).await.unwrap();
    let inner = queues.clone();
    let consumer = queues
        .consume("orders", ConsumeOptions::default(), move |_delivery| {
            let queues = inner.clone();
            async move {
                // A plain send: the handler context supplies the ids.
                queues
                    .send("payments", OutgoingMessage::json(&"charge"))
                    .await
                    .unwrap();
                Outcome::Ack
            }
        })
        .await
        .unwrap();
    let first = queues
        .send(
            "orders",
            OutgoingMessage::json(&"order").correlation_id("order-9"),
        )
        .await
        .unwrap();
    let payment = loop {
        let got = queues
            .receive(
                "payments",
                ReceiveOptions {
                    n_max: 1,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if let Some(d) = got.into_iter().next() {
            break d;
        }
        tokio::task::yield_now().await;
    };
    consumer.unsubscribe().await.unwrap();
    queues.ack(&payment.lease).await.unwrap();
    let envelope = &payment.message.envelope;
    assert_eq!(envelope.correlation_id, "order-9");
    assert_eq!(envelope.causation_id, Some(first.id.to_string()));

    let spans = f.finished();
    let send_order = one(&spans, "send orders");
    let process = one(&spans, "process orders");
    let send_payment = one(&spans, "send payments");
    let receive_payment = one(&spans, "receive payments");
    assert!(is_child(process, send_order));
    assert!(
        is_child(send_payment, process),
        "the follow-up is sent from the handler's span"
    );
    assert!(is_child(receive_payment, send_payment));
    assert_eq!(
        attribute(process, attr::OPERATION_TYPE).as_deref(),
        Some("process")
    );
    assert_eq!(
        attribute(send_payment, attr::CAUSATION_ID),
        Some(first.id.to_string())
    );
    assert_eq!(
        attribute(send_payment, attr::CONVERSATION_ID).as_deref(),
        Some("order-9")
    );

    let flow = f.engine.flows().by_correlation("order-9").await.unwrap();
    let edge = flow
        .edges
        .iter()
        .find(|e| e.from == "handler:orders" && e.to == "queue:payments")
        .expect("the orders handler produced into payments");
    assert_eq!(edge.messages, 1);
    assert!(flow.nodes.iter().any(|n| n.id == "producer:client"));
    let metrics = f.engine.metrics_text().await;
    let handled = r#"switchyard_handler_duration_seconds_count{queue="orders"} 1"#;
    assert!(metrics.contains(handled), "{metrics}");
}

#[tokio::test]
async fn an_expired_lease_ends_its_consumer_span_as_lease_expired() {
    let f = fixture_with(|c| c.queue.lease_ms_default = 1_000).await;
    let queues = f.engine.queues();
    queues.declare(QueueSpec::new("orders")).await.unwrap();
    queues
        .send("orders", OutgoingMessage::json(&1))
        .await
        .unwrap();
    let first = f.receive("orders").await;
    f.clock.advance(Duration::from_millis(1_001));
    f.engine.maintain().await.unwrap();
    let again = f.receive("orders").await;
    assert!(again.redelivered);
    queues.ack(&again.lease).await.unwrap();
    assert!(
        queues.ack(&first.lease).await.is_err(),
        "the stale lease is refused"
    );
    let spans = f.finished();
    let outcomes: Vec<Option<String>> = named(&spans, "receive orders")
        .iter()
        .map(|s| attribute(s, attr::OUTCOME))
        .collect();
    assert_eq!(
        outcomes,
        vec![Some("lease_expired".to_owned()), Some("acked".to_owned())]
    );
}

#[tokio::test]
async fn metrics_count_state_changes_and_show_queue_depths() {
    let f = fixture().await;
    let queues = f.engine.queues();
    queues
        .declare(
            QueueSpec::new("orders")
                .max_retries(0)
                .dead_letter_queue("orders.dlq"),
        )
        .await
        .unwrap();
    for n in 0..3 {
        queues
            .send("orders", OutgoingMessage::json(&n))
            .await
            .unwrap();
    }
    let d = f.receive("orders").await;
    queues.ack(&d.lease).await.unwrap();
    let d = f.receive("orders").await;
    queues.nack(&d.lease, "boom").await.unwrap();
    let text = f.engine.metrics_text().await;
    for line in [
        r#"switchyard_messages_sent_total{queue="orders"} 3"#,
        r#"switchyard_messages_delivered_total{queue="orders"} 2"#,
        r#"switchyard_messages_acked_total{queue="orders"} 1"#,
        r#"switchyard_messages_dead_lettered_total{queue="orders",reason="max-retries"} 1"#,
        r#"switchyard_queue_ready{queue="orders"} 1"#,
        r#"switchyard_queue_ready{queue="orders.dlq"} 1"#,
        r#"switchyard_queue_dead_lettered{queue="orders"} 1"#,
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    let totals = f.engine.telemetry().metrics().totals();
    assert_eq!((totals.sent, totals.acked, totals.dead_lettered), (3, 1, 1));
}

#[tokio::test]
async fn spans_are_pruned_by_age_and_by_count() {
    let f = fixture_with(|c| {
        c.telemetry.spans_max = 3;
        c.telemetry.span_retention_ms = 60_000;
    })
    .await;
    let queues = f.engine.queues();
    queues.declare(QueueSpec::new("orders")).await.unwrap();
    // Flushed one by one: each span is its own export batch, and retention
    // deletes whole batches.
    for n in 0..5 {
        queues
            .send("orders", OutgoingMessage::json(&n).correlation_id("c"))
            .await
            .unwrap();
        f.engine.telemetry().flush();
    }
    f.engine.maintain().await.unwrap();
    let flow = f.engine.flows().by_correlation("c").await.unwrap();
    assert_eq!(flow.timeline.len(), 3, "only the newest 3 are kept");
    f.clock.advance(Duration::from_millis(60_001));
    f.engine.maintain().await.unwrap();
    let flow = f.engine.flows().by_correlation("c").await.unwrap();
    assert!(flow.timeline.is_empty(), "older than the retention");
}

#[tokio::test]
async fn tracing_off_makes_no_spans_and_keeps_no_flows() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.data_dir = Some(dir.path().to_path_buf());
    config.telemetry.keep_spans = false;
    let engine = Engine::open(config).await.unwrap();
    engine.queues().declare(QueueSpec::new("q")).await.unwrap();
    let sent = engine
        .queues()
        .send("q", OutgoingMessage::json(&1))
        .await
        .unwrap();
    assert!(engine.telemetry().tracer().is_none());
    let flow = engine
        .flows()
        .by_message(&sent.id.to_string())
        .await
        .unwrap();
    assert!(flow.timeline.is_empty());
    let received = engine
        .queues()
        .receive(
            "q",
            ReceiveOptions {
                n_max: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(received[0].traceparent, None);
    engine.shutdown().await;
}

mod otlp {
    //! A real OTLP/HTTP receiver: a plain HTTP/1.1 server on 127.0.0.1 that
    //! decodes each `POST /v1/traces` body as OTLP protobuf.

    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use prost::Message as _;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    async fn serve(listener: TcpListener, got: mpsc::UnboundedSender<(String, Vec<u8>)>) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let got = got.clone();
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                loop {
                    let mut request_line = String::new();
                    if stream.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        stream.read_line(&mut line).await.unwrap();
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    stream.read_exact(&mut body).await.unwrap();
                    got.send((request_line.trim_end().to_owned(), body))
                        .unwrap();
                    let reply = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    stream.get_mut().write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spans_reach_a_real_otlp_http_receiver() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(serve(listener, tx));
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.data_dir = Some(dir.path().to_path_buf());
        config
            .telemetry
            .apply_otel_env(|name| match name {
                "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(format!("http://{addr}")),
                "OTEL_SERVICE_NAME" => Some("orders-service".to_owned()),
                _ => None,
            })
            .unwrap();
        let engine = Engine::open(config).await.unwrap();
        let queues = engine.queues();
        queues.declare(QueueSpec::new("orders")).await.unwrap();
        let sent = queues
            .send(
                "orders",
                OutgoingMessage::json(&1).correlation_id("order-1"),
            )
            .await
            .unwrap();
        let d = queues
            .receive(
                "orders",
                ReceiveOptions {
                    n_max: 1,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .remove(0);
        queues.ack(&d.lease).await.unwrap();
        // Shutdown flushes the exporters (the guard the issue asks for).
        engine.shutdown().await;

        let mut names = Vec::new();
        let mut service = None;
        let mut send_attributes = HashMap::new();
        while let Ok((request_line, body)) = rx.try_recv() {
            assert_eq!(request_line, "POST /v1/traces HTTP/1.1");
            let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
            for resource in request.resource_spans {
                for kv in resource.resource.unwrap().attributes {
                    if kv.key == "service.name"
                        && let Some(Value::StringValue(name)) = kv.value.unwrap().value
                    {
                        service = Some(name);
                    }
                }
                for scope in resource.scope_spans {
                    assert_eq!(scope.scope.unwrap().name, "switchyard");
                    for span in scope.spans {
                        if span.name == "send orders" {
                            for kv in &span.attributes {
                                if let Some(Value::StringValue(v)) =
                                    kv.value.as_ref().and_then(|v| v.value.clone())
                                {
                                    send_attributes.insert(kv.key.clone(), v);
                                }
                            }
                        }
                        names.push(span.name);
                    }
                }
            }
        }
        names.sort();
        assert_eq!(names, vec!["ack orders", "receive orders", "send orders"]);
        assert_eq!(service.as_deref(), Some("orders-service"));
        assert_eq!(
            send_attributes.get(attr::MESSAGE_ID),
            Some(&sent.id.to_string())
        );
        assert_eq!(
            send_attributes
                .get(attr::CONVERSATION_ID)
                .map(String::as_str),
            Some("order-1")
        );
        assert_eq!(
            send_attributes
                .get(attr::MESSAGING_SYSTEM)
                .map(String::as_str),
            Some("switchyard")
        );
    }
}

#[tokio::test]
async fn a_full_span_buffer_drops_new_spans_and_counts_them() {
    let f = fixture_with(|c| {
        c.telemetry.span_queue_max = 4;
        c.telemetry.span_batch_max = 1000;
        // Nothing is exported until the flush below.
        c.telemetry.span_flush_interval_ms = 24 * 60 * 60 * 1000;
    })
    .await;
    let queues = f.engine.queues();
    queues.declare(QueueSpec::new("q")).await.unwrap();
    for n in 0..10 {
        queues.send("q", OutgoingMessage::json(&n)).await.unwrap();
    }
    let telemetry = f.engine.telemetry();
    assert_eq!(telemetry.n_spans_dropped(), 6, "4 fit, 6 did not");
    let finished = f.finished();
    assert_eq!(finished.len(), 4, "{:?}", names(&finished));
    assert_eq!(telemetry.n_spans_stored(), 4);
    // Room again once the buffer is drained.
    queues.send("q", OutgoingMessage::json(&10)).await.unwrap();
    assert_eq!(f.finished().len(), 5);
    assert_eq!(telemetry.n_spans_dropped(), 6);
    // A settlement queues its spans (ack, then receive) together: as many
    // as fit are kept, the rest counted.
    let first = f.receive("q").await;
    let second = f.receive("q").await;
    queues.ack(&first.lease).await.unwrap();
    queues.send("q", OutgoingMessage::json(&11)).await.unwrap();
    queues.ack(&second.lease).await.unwrap();
    assert_eq!(telemetry.n_spans_dropped(), 7, "room for 1 of 2");
    let finished = f.finished();
    assert_eq!(
        names(&finished[5..]),
        ["ack q", "receive q", "send q", "ack q"]
    );
}

#[tokio::test]
async fn sampling_keeps_a_ratio_of_new_traces_and_whole_traces_only() {
    let f = fixture_with(|c| c.telemetry.sample_ratio = 0.0).await;
    let queues = f.engine.queues();
    queues.declare(QueueSpec::new("q")).await.unwrap();
    queues.send("q", OutgoingMessage::json(&1)).await.unwrap();
    let d = f.receive("q").await;
    let traceparent = d.traceparent.expect("a context even when not sampled");
    assert!(!traceparent.sampled(), "{traceparent}");
    assert!(traceparent.to_string().ends_with("-00"), "{traceparent}");
    queues.ack(&d.lease).await.unwrap();
    assert!(f.finished().is_empty(), "nothing of an unsampled trace");
}

#[tokio::test]
async fn shutdown_ends_open_deliveries_and_leaves_the_callers_exporter_its_spans() {
    let f = fixture().await;
    let queues = f.engine.queues();
    queues.declare(QueueSpec::new("q")).await.unwrap();
    queues.send("q", OutgoingMessage::json(&1)).await.unwrap();
    let _held = f.receive("q").await;
    f.engine.shutdown().await;
    // Shutting down does not shut the caller's in-memory exporter (which
    // would clear it): the spans are still there to read.
    let spans = f.spans.get_finished_spans().expect("spans");
    let receive = one(&spans, "receive q");
    assert_eq!(
        attribute(receive, attr::OUTCOME).as_deref(),
        Some("unsettled")
    );
    assert!(is_child(receive, one(&spans, "send q")));
}

#[tokio::test]
async fn a_senders_tracestate_reaches_every_span_of_the_trace() {
    let f = fixture().await;
    let queues = f.engine.queues();
    queues.declare(QueueSpec::new("q")).await.unwrap();
    let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut message = OutgoingMessage::json(&1);
    message.traceparent = Some(parent.parse().unwrap());
    message.tracestate = Some("vendor=abc".to_owned());
    queues.send("q", message).await.unwrap();
    let d = f.receive("q").await;
    queues.ack(&d.lease).await.unwrap();
    let spans = f.finished();
    assert_eq!(spans.len(), 3, "{:?}", names(&spans));
    for span in &spans {
        assert_eq!(
            span.span_context.trace_state().header(),
            "vendor=abc",
            "{}",
            span.name
        );
        assert_eq!(
            span.span_context.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
    }
}
