//! Observability: an OpenTelemetry span for every message operation, kept in
//! the engine's own store (for flow queries and the console) and optionally
//! exported over OTLP; Prometheus metrics; structured logs.
//!
//! How spans are made: the queue module calls the functions of [`Telemetry`]
//! at each step of a message's life. They build spans with the OpenTelemetry
//! API on the engine's own tracer provider (not the process-global one, so
//! several engines in one process each keep their own flows), timed by the
//! engine's [`Clock`]. The W3C `traceparent` in each envelope carries the
//! trace across hops: a delivery's consumer span is a child of the span that
//! sent the message. A consumer span lives from hand-out to settlement; it is
//! parked in an in-memory table keyed by lease until the ack, nack or reject
//! (or lease expiry) ends it.
//!
//! Where spans go: a batch processor per exporter. The store exporter
//! ([`record`]) writes them to the storage seam's [`SpanStore`]; the OTLP
//! exporter sends them to a collector; tests add an in-memory one.
//!
//! A new capability adds its spans the same way: a `Telemetry` function per
//! step, attributes from [`attr`], operation names the flow graph
//! ([`flow`]) knows.

pub mod attr;
mod context;
pub mod flow;
pub mod logging;
pub mod metrics;
mod record;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, Span,
    SpanExporter,
};

pub(crate) use context::{Cause, current_cause, with_cause};
pub use flow::{Flow, FlowEdge, FlowNode, FlowNodeKind, FlowQuery, FlowSummary, Flows};
pub use metrics::Metrics;

use crate::clock::{Clock, Timestamp};
use crate::config::TelemetryConfig;
use crate::envelope::{Envelope, MessageId};
use crate::storage::{DeadReason, Store};

/// Name of the instrumentation scope of the engine's spans.
pub const SCOPE: &str = "switchyard";

/// The engine's tracing: its tracer provider, the consumer spans in flight,
/// and its metrics. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` when no exporter is configured: spans are not built at all.
    provider: Option<SdkTracerProvider>,
    tracer: Option<SdkTracer>,
    clock: Clock,
    /// Consumer spans waiting for their delivery to be settled.
    in_flight: Mutex<HashMap<LeaseKey, InFlight>>,
    metrics: Metrics,
    /// Consumer spans dropped because the in-flight table was full.
    n_untracked: AtomicU64,
    /// Spans the store exporter has written.
    n_stored: Arc<AtomicU64>,
}

/// One delivery: `(durable store?, sequence, lease number)`.
pub(crate) type LeaseKey = (bool, i64, i64);

/// Most consumer spans waiting for settlement; beyond it deliveries go
/// untraced (counted) rather than grow memory without bound.
const IN_FLIGHT_SPANS_MAX: usize = 1 << 20;

struct InFlight {
    span: Span,
    ids: MessageIds,
    lease_until: Timestamp,
}

/// The ids every span about one message carries.
#[derive(Clone, Debug)]
pub(crate) struct MessageIds {
    pub(crate) queue: Arc<str>,
    /// The message id as text, formatted once for all its spans.
    pub(crate) message_id: Arc<str>,
    pub(crate) correlation_id: Arc<str>,
    pub(crate) causation_id: Option<Arc<str>>,
}

impl MessageIds {
    pub(crate) fn new(queue: &Arc<str>, message_id: MessageId, envelope: &Envelope) -> MessageIds {
        MessageIds {
            queue: queue.clone(),
            message_id: message_id.to_string().into(),
            correlation_id: envelope.correlation_id.as_str().into(),
            causation_id: envelope.causation_id.as_deref().map(Arc::from),
        }
    }

    fn attributes(&self, operation_type: &'static str, operation: &'static str) -> Vec<KeyValue> {
        let mut attributes = vec![
            KeyValue::new(attr::MESSAGING_SYSTEM, attr::SYSTEM),
            KeyValue::new(attr::DESTINATION, self.queue.clone()),
            KeyValue::new(attr::OPERATION_TYPE, operation_type),
            KeyValue::new(attr::OPERATION_NAME, operation),
            KeyValue::new(attr::MESSAGE_ID, self.message_id.clone()),
            KeyValue::new(attr::CONVERSATION_ID, self.correlation_id.clone()),
        ];
        if let Some(causation) = &self.causation_id {
            attributes.push(KeyValue::new(attr::CAUSATION_ID, causation.clone()));
        }
        attributes
    }
}

/// How a delivery was settled, for its spans.
#[derive(Clone, Debug)]
pub(crate) enum Settled {
    Acked,
    RetryScheduled {
        due: Timestamp,
        error: String,
    },
    DeadLettered {
        reason: DeadReason,
        to: Option<String>,
        error: Option<String>,
    },
}

/// A producer span in progress: ended once the send commits.
pub(crate) struct SendSpan {
    span: Span,
}

/// Whether a delivery is pulled (`receive`) or pushed to a handler (`process`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeliveryMode {
    Pull,
    Push,
}

impl Telemetry {
    /// Telemetry that builds no spans (the metrics still count).
    pub fn off(clock: Clock) -> Telemetry {
        Telemetry::with_provider(None, clock)
    }

    /// Starts span processing: a batch processor for the engine's store
    /// (when `config.keep_spans` and `store` is given), one for OTLP (when an
    /// endpoint is configured), and one for each of `extra` (tests pass an
    /// in-memory exporter).
    pub(crate) fn start(
        config: &TelemetryConfig,
        clock: Clock,
        store: Option<Store>,
        extra: Vec<Box<dyn DynSpanExporter>>,
    ) -> Result<Telemetry, TelemetryError> {
        let batch = || {
            BatchConfigBuilder::default()
                .with_max_queue_size(config.span_queue_max)
                .with_max_export_batch_size(config.span_batch_max)
                .with_scheduled_delay(Duration::from_millis(config.span_flush_interval_ms))
                .build()
        };
        let mut builder = SdkTracerProvider::builder()
            .with_id_generator(TimeOrderedIds::default())
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sample_ratio,
            ))))
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            );
        let mut n_exporters = 0;
        let n_stored = Arc::new(AtomicU64::new(0));
        if let (true, Some(store)) = (config.keep_spans, store) {
            let exporter = record::StoreExporter::new(store, n_stored.clone());
            builder = builder.with_span_processor(
                BatchSpanProcessor::builder(exporter)
                    .with_batch_config(batch())
                    .build(),
            );
            n_exporters += 1;
        }
        if let Some(url) = config.otlp_traces_url() {
            use opentelemetry_otlp::{Protocol, WithExportConfig};
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(url.clone())
                .with_timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| TelemetryError::Otlp {
                    url,
                    reason: e.to_string(),
                })?;
            builder = builder.with_span_processor(
                BatchSpanProcessor::builder(exporter)
                    .with_batch_config(batch())
                    .build(),
            );
            n_exporters += 1;
        }
        for exporter in extra {
            builder = builder.with_span_processor(
                BatchSpanProcessor::builder(BoxedExporter(exporter))
                    .with_batch_config(batch())
                    .build(),
            );
            n_exporters += 1;
        }
        let provider = (n_exporters > 0).then(|| builder.build());
        let telemetry = Telemetry::with_provider(provider, clock);
        let telemetry = Telemetry {
            inner: Arc::new(Inner {
                n_stored,
                ..Arc::into_inner(telemetry.inner).expect("not shared yet")
            }),
        };
        Ok(telemetry)
    }

    /// Spans written to the engine's store so far. Under overload the span
    /// queue (`span_queue_max`) drops what the exporter cannot take: compare
    /// with the spans made to see whether every span was kept.
    pub fn n_spans_stored(&self) -> u64 {
        self.inner.n_stored.load(Ordering::Relaxed)
    }

    fn with_provider(provider: Option<SdkTracerProvider>, clock: Clock) -> Telemetry {
        let tracer = provider.as_ref().map(|p| p.tracer(SCOPE));
        Telemetry {
            inner: Arc::new(Inner {
                provider,
                tracer,
                clock,
                in_flight: Mutex::new(HashMap::new()),
                metrics: Metrics::new(),
                n_untracked: AtomicU64::new(0),
                n_stored: Arc::new(AtomicU64::new(0)),
            }),
        }
    }

    /// The engine's tracer, for a `tracing-opentelemetry` layer that puts
    /// application spans (handler code) into the same traces; `None` when
    /// tracing is off.
    pub fn tracer(&self) -> Option<SdkTracer> {
        self.inner.tracer.clone()
    }

    /// The engine's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Sends every finished span to its exporters now.
    pub fn flush(&self) {
        if let Some(provider) = &self.inner.provider
            && let Err(e) = provider.force_flush()
        {
            tracing::warn!(cause = %e, "could not flush spans");
        }
    }

    /// Ends the consumer spans still open, flushes, and stops the exporters.
    pub(crate) fn shutdown(&self) {
        let open: Vec<InFlight> = {
            let mut in_flight = self.inner.in_flight.lock().expect("in-flight spans lock");
            in_flight.drain().map(|(_, v)| v).collect()
        };
        let now = self.inner.clock.now_system();
        for mut entry in open {
            entry
                .span
                .set_attribute(KeyValue::new(attr::OUTCOME, "unsettled"));
            entry.span.end_with_timestamp(now);
        }
        if let Some(provider) = &self.inner.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(cause = %e, "could not shut down span export");
        }
    }

    fn tracer_ref(&self) -> Option<&SdkTracer> {
        self.inner.tracer.as_ref()
    }

    /// Starts the producer span of a message about to be stored. Its context
    /// becomes the message's `traceparent`. `parent` is the traceparent the
    /// sender gave (or inherited from the message being handled).
    pub(crate) fn send_started(
        &self,
        ids: &MessageIds,
        source: Option<&str>,
        parent: (Option<&str>, Option<&str>),
        batch_len: usize,
    ) -> Option<(SendSpan, String)> {
        let tracer = self.tracer_ref()?;
        let parent_cx = remote_context(parent.0, parent.1);
        let mut attributes = ids.attributes("send", "send");
        if let Some(source) = source {
            attributes.push(KeyValue::new(attr::SOURCE, source.to_owned()));
        }
        if batch_len > 1 {
            attributes.push(KeyValue::new(attr::BATCH_COUNT, batch_len as i64));
        }
        let span = tracer
            .span_builder(format!("send {}", ids.queue))
            .with_kind(SpanKind::Producer)
            .with_start_time(self.inner.clock.now_system())
            .with_attributes(attributes)
            .start_with_context(tracer, &parent_cx);
        let traceparent = traceparent_of(span.span_context());
        Some((SendSpan { span }, traceparent))
    }

    /// Ends a producer span: `error` when the send failed.
    pub(crate) fn send_ended(&self, mut send: SendSpan, error: Option<&str>, duplicate: bool) {
        if duplicate {
            send.span
                .set_attribute(KeyValue::new(attr::OUTCOME, "duplicate"));
        }
        if let Some(error) = error {
            send.span.set_status(Status::error(error.to_owned()));
        } else {
            send.span.set_status(Status::Ok);
        }
        send.span.end_with_timestamp(self.inner.clock.now_system());
    }

    /// Starts the consumer span of a delivery (a child of the span that sent
    /// the message) and keeps it until the delivery is settled. Returns the
    /// `traceparent` for follow-up messages.
    pub(crate) fn delivery_started(
        &self,
        key: LeaseKey,
        ids: MessageIds,
        envelope: &Envelope,
        attempt: u32,
        lease_until: Timestamp,
        mode: DeliveryMode,
    ) -> Option<String> {
        self.inner.metrics.delivered(&ids.queue);
        let tracer = self.tracer_ref()?;
        let parent_cx = remote_context(
            envelope.traceparent.as_deref(),
            envelope.tracestate.as_deref(),
        );
        let (operation_type, verb) = match mode {
            DeliveryMode::Pull => ("receive", "receive"),
            DeliveryMode::Push => ("process", "process"),
        };
        let mut attributes = ids.attributes(operation_type, verb);
        attributes.push(KeyValue::new(attr::ATTEMPT, i64::from(attempt)));
        attributes.push(KeyValue::new(attr::REDELIVERED, attempt > 1));
        if let Some(source) = &envelope.source {
            attributes.push(KeyValue::new(attr::SOURCE, source.clone()));
        }
        let span = tracer
            .span_builder(format!("{verb} {}", ids.queue))
            .with_kind(SpanKind::Consumer)
            .with_start_time(self.inner.clock.now_system())
            .with_attributes(attributes)
            .start_with_context(tracer, &parent_cx);
        let traceparent = traceparent_of(span.span_context());
        let mut in_flight = self.inner.in_flight.lock().expect("in-flight spans lock");
        if in_flight.len() >= IN_FLIGHT_SPANS_MAX {
            self.inner.n_untracked.fetch_add(1, Ordering::Relaxed);
            let mut span = span;
            span.set_attribute(KeyValue::new(attr::OUTCOME, "untracked"));
            span.end_with_timestamp(self.inner.clock.now_system());
        } else {
            in_flight.insert(
                key,
                InFlight {
                    span,
                    ids,
                    lease_until,
                },
            );
        }
        Some(traceparent)
    }

    /// Ends a delivery: a settle span (ack, nack or reject) under its
    /// consumer span, a retry or dead-letter span under that when the
    /// message goes on, and the consumer span itself with the outcome.
    pub(crate) fn delivery_settled(&self, key: LeaseKey, attempt: u32, settled: &Settled) {
        let entry = self
            .inner
            .in_flight
            .lock()
            .expect("in-flight spans lock")
            .remove(&key);
        let Some(InFlight { mut span, ids, .. }) = entry else {
            return;
        };
        let Some(tracer) = self.tracer_ref() else {
            return;
        };
        let now = self.inner.clock.now_system();
        let cx = Context::new().with_remote_span_context(span.span_context().clone());
        let (verb, outcome) = match settled {
            Settled::Acked => ("ack", "acked"),
            Settled::RetryScheduled { .. } => ("nack", "retry_scheduled"),
            Settled::DeadLettered {
                reason: DeadReason::Rejected,
                ..
            } => ("reject", "dead_lettered"),
            Settled::DeadLettered { .. } => ("nack", "dead_lettered"),
        };
        let mut attributes = ids.attributes("settle", verb);
        attributes.push(KeyValue::new(attr::ATTEMPT, i64::from(attempt)));
        attributes.push(KeyValue::new(attr::OUTCOME, outcome));
        let mut settle = tracer
            .span_builder(format!("{verb} {}", ids.queue))
            .with_kind(SpanKind::Consumer)
            .with_start_time(now)
            .with_attributes(attributes)
            .start_with_context(tracer, &cx);
        let settle_cx = Context::new().with_remote_span_context(settle.span_context().clone());
        match settled {
            Settled::Acked => {
                span.set_status(Status::Ok);
            }
            Settled::RetryScheduled { due, error } => {
                let mut attributes = ids.attributes("settle", "retry");
                attributes.push(KeyValue::new(attr::ATTEMPT, i64::from(attempt)));
                attributes.push(KeyValue::new(attr::RETRY_DUE_MS, due.0));
                let mut retry = tracer
                    .span_builder(format!("retry {}", ids.queue))
                    .with_kind(SpanKind::Internal)
                    .with_start_time(now)
                    .with_attributes(attributes)
                    .start_with_context(tracer, &settle_cx);
                retry.end_with_timestamp(now);
                span.set_attribute(KeyValue::new(attr::ERROR_MESSAGE, error.clone()));
                span.set_status(Status::error(error.clone()));
            }
            Settled::DeadLettered { reason, to, error } => {
                self.dead_letter_span(&settle_cx, &ids, *reason, to.as_deref(), Some(attempt));
                let description = error.clone().unwrap_or_else(|| reason.as_str().to_owned());
                if let Some(error) = error {
                    span.set_attribute(KeyValue::new(attr::ERROR_MESSAGE, error.clone()));
                }
                span.set_status(Status::error(description));
            }
        }
        settle.end_with_timestamp(now);
        span.set_attribute(KeyValue::new(attr::OUTCOME, outcome));
        span.end_with_timestamp(now);
    }

    /// A dead-lettering that no delivery settled: expiry, overflow, or
    /// attempts used up by lost leases. A child of the message's producer.
    pub(crate) fn dead_lettered(
        &self,
        ids: &MessageIds,
        envelope: &Envelope,
        reason: DeadReason,
        to: Option<&str>,
        attempts: u32,
    ) {
        if self.tracer_ref().is_none() {
            return;
        }
        let cx = remote_context(
            envelope.traceparent.as_deref(),
            envelope.tracestate.as_deref(),
        );
        self.dead_letter_span(&cx, ids, reason, to, Some(attempts));
    }

    fn dead_letter_span(
        &self,
        parent: &Context,
        ids: &MessageIds,
        reason: DeadReason,
        to: Option<&str>,
        attempts: Option<u32>,
    ) {
        let Some(tracer) = self.tracer_ref() else {
            return;
        };
        let now = self.inner.clock.now_system();
        let operation = match reason {
            DeadReason::Expired => "expire",
            _ => "dead_letter",
        };
        let mut attributes = ids.attributes("settle", "dead_letter");
        attributes.push(KeyValue::new(attr::DEAD_LETTER_REASON, reason.as_str()));
        attributes.push(KeyValue::new(
            attr::DEAD_LETTER_QUEUE,
            to.unwrap_or(&ids.queue).to_owned(),
        ));
        attributes.push(KeyValue::new(attr::PARKED, to.is_none()));
        if let Some(attempts) = attempts {
            attributes.push(KeyValue::new(attr::ATTEMPT, i64::from(attempts)));
        }
        let mut span = tracer
            .span_builder(format!("{operation} {}", ids.queue))
            .with_kind(SpanKind::Internal)
            .with_start_time(now)
            .with_attributes(attributes)
            .start_with_context(tracer, parent);
        span.set_status(Status::error(format!("dead-lettered: {}", reason.as_str())));
        span.end_with_timestamp(now);
    }

    /// An operator action on one dead letter (retry to its queue, move,
    /// purge): a span in the message's trace, so the flow shows it.
    pub(crate) fn operator_action(
        &self,
        ids: &MessageIds,
        envelope: &Envelope,
        action: &'static str,
        to: Option<&str>,
        parked: bool,
    ) {
        let Some(tracer) = self.tracer_ref() else {
            return;
        };
        let now = self.inner.clock.now_system();
        let cx = remote_context(
            envelope.traceparent.as_deref(),
            envelope.tracestate.as_deref(),
        );
        let mut attributes = ids.attributes("settle", action);
        attributes.push(KeyValue::new(attr::OPERATOR, true));
        attributes.push(KeyValue::new(attr::PARKED, parked));
        if let Some(to) = to {
            attributes.push(KeyValue::new(attr::REDRIVE_TO, to.to_owned()));
        }
        let mut span = tracer
            .span_builder(format!("{action} {}", ids.queue))
            .with_kind(SpanKind::Internal)
            .with_start_time(now)
            .with_attributes(attributes)
            .start_with_context(tracer, &cx);
        span.set_status(Status::Ok);
        span.end_with_timestamp(now);
    }

    /// Ends consumer spans whose lease ran out before anyone settled them
    /// (the consumer died or was too slow): outcome `lease_expired`.
    pub(crate) fn expire_leases(&self, now: Timestamp) -> usize {
        let expired: Vec<InFlight> = {
            let mut in_flight = self.inner.in_flight.lock().expect("in-flight spans lock");
            let keys: Vec<LeaseKey> = in_flight
                .iter()
                .filter(|(_, v)| v.lease_until < now)
                .map(|(k, _)| *k)
                .collect();
            keys.iter().filter_map(|k| in_flight.remove(k)).collect()
        };
        let end = self.inner.clock.now_system();
        let n_expired = expired.len();
        for mut entry in expired {
            entry
                .span
                .set_attribute(KeyValue::new(attr::OUTCOME, "lease_expired"));
            entry.span.set_status(Status::error(
                "lease expired before the delivery was settled",
            ));
            entry.span.end_with_timestamp(end);
        }
        n_expired
    }

    /// Deliveries handed out without a span because too many were in flight.
    pub fn n_untracked(&self) -> u64 {
        self.inner.n_untracked.load(Ordering::Relaxed)
    }
}

/// The `tracing` span a push handler runs in. With the engine's tracer
/// bridged in (see [`logging`]) it is a child of the delivery's consumer span,
/// so the handler's own spans and logs join the message's trace; its fields
/// put the message's ids on every log line inside.
pub(crate) fn handler_span(delivery: &crate::queue::Delivery) -> tracing::Span {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let trace_id = delivery
        .traceparent
        .as_deref()
        .and_then(|tp| tp.get(3..35))
        .unwrap_or("");
    let span = tracing::info_span!(
        "handle",
        queue = %delivery.lease.queue(),
        message_id = %delivery.message.id,
        correlation_id = %delivery.message.envelope.correlation_id,
        attempt = delivery.attempt,
        trace_id = %trace_id,
    );
    if let Some(traceparent) = &delivery.traceparent {
        // Fails only when no OpenTelemetry layer is installed: nothing to join.
        let _ = span.set_parent(remote_context(Some(traceparent), None));
    }
    span
}

/// Trace ids laid out like a UUID v7: a millisecond timestamp, then random
/// bits (the right-most 7 bytes stay random, as W3C Trace Context asks and
/// ratio samplers need). Time-ordered ids are appended to the span store's
/// key index instead of landing at random pages of it, which keeps span
/// writes cheap. Span ids stay random.
#[derive(Debug, Default)]
struct TimeOrderedIds {
    random: opentelemetry_sdk::trace::RandomIdGenerator,
}

impl opentelemetry_sdk::trace::IdGenerator for TimeOrderedIds {
    fn new_trace_id(&self) -> opentelemetry::trace::TraceId {
        opentelemetry::trace::TraceId::from_bytes(*uuid::Uuid::now_v7().as_bytes())
    }

    fn new_span_id(&self) -> opentelemetry::trace::SpanId {
        self.random.new_span_id()
    }
}

/// The W3C `traceparent` of a span.
fn traceparent_of(cx: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        cx.trace_id(),
        cx.span_id(),
        cx.trace_flags().to_u8()
    )
}

/// A context whose parent is the span named by a W3C `traceparent`; the
/// empty context (a new trace) when it is missing or malformed.
fn remote_context(traceparent: Option<&str>, tracestate: Option<&str>) -> Context {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    let Some(traceparent) = traceparent else {
        return Context::new();
    };
    let mut carrier = HashMap::with_capacity(2);
    carrier.insert("traceparent".to_owned(), traceparent.to_owned());
    if let Some(tracestate) = tracestate {
        carrier.insert("tracestate".to_owned(), tracestate.to_owned());
    }
    TraceContextPropagator::new().extract(&carrier)
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built.
    #[error("cannot export spans to `{url}`: {reason}")]
    Otlp {
        /// The traces URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

/// An exporter given to [`crate::Engine`] by the embedding application (tests
/// pass `opentelemetry_sdk`'s `InMemorySpanExporter`). Every
/// `opentelemetry_sdk` span exporter is one.
pub trait DynSpanExporter: Send + Sync + std::fmt::Debug {
    /// Exports one batch.
    fn export_batch(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send + '_>,
    >;
}

impl<T: SpanExporter + 'static> DynSpanExporter for T {
    fn export_batch(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send + '_>,
    > {
        Box::pin(self.export(batch))
    }
}

#[derive(Debug)]
struct BoxedExporter(Box<dyn DynSpanExporter>);

impl SpanExporter for BoxedExporter {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.export_batch(batch).await
    }
}
