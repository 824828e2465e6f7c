//! Flow queries: everything the engine's span store holds for a correlation
//! id, a trace id or a message id, drawn as a graph (producers, queues,
//! handlers and dead-letter queues; edges are messages with counts,
//! latencies and outcomes) and a timeline (spans by start, with parents and
//! links).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::storage::{SpanKey, SpanRecord, SpanStore, StorageError, Store};
use crate::telemetry::attr;

/// Most spans one flow query returns; `Flow::truncated` says when a flow had
/// more.
pub const FLOW_SPANS_MAX: u32 = 10_000;

/// How far back (in spans) the list of recent flows looks.
pub const RECENT_WINDOW_SPANS: u32 = 50_000;

/// Flow queries over the engine's span store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Flows {
    store: Option<Store>,
}

/// What a flow was looked up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowQuery {
    /// A correlation id: every message of one business flow.
    Correlation,
    /// A trace id.
    Trace,
    /// A message id: the flow the message belongs to.
    Message,
}

/// One flow: its graph and its timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Flow {
    /// What was asked for.
    pub query: FlowQuery,
    /// The id asked for.
    pub id: String,
    /// Correlation ids seen in the flow, sorted.
    pub correlation_ids: Vec<String>,
    /// Trace ids seen in the flow, sorted.
    pub trace_ids: Vec<String>,
    /// Producers, queues, handlers and dead-letter queues.
    pub nodes: Vec<FlowNode>,
    /// Messages moving between them.
    pub edges: Vec<FlowEdge>,
    /// Every span, by start time.
    pub timeline: Vec<FlowSpan>,
    /// `true` when the flow had more than [`FLOW_SPANS_MAX`] spans.
    pub truncated: bool,
}

/// What a node of the flow graph is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowNodeKind {
    /// Something outside the engine that sent messages (named by the
    /// envelope's `source`).
    Producer,
    /// A queue.
    Queue,
    /// The consumers of a queue.
    Handler,
    /// A dead-letter queue, or a queue's parked dead letters.
    DeadLetterQueue,
}

/// A node of the flow graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowNode {
    /// Stable id, e.g. `queue:orders`.
    pub id: String,
    /// What it is.
    pub kind: FlowNodeKind,
    /// What to call it.
    pub label: String,
}

/// An edge of the flow graph: messages that went from one node to another.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowEdge {
    /// Node id.
    pub from: String,
    /// Node id.
    pub to: String,
    /// Messages (or deliveries) along it.
    pub messages: u64,
    /// Of them, failed ones (error status).
    pub failures: u64,
    /// Mean duration of the spans behind it, µs.
    pub latency_us_avg: Option<u64>,
    /// Longest, µs.
    pub latency_us_max: Option<u64>,
    /// Counts by outcome (`acked`, `retry_scheduled`, `max_retries`...).
    pub outcomes: BTreeMap<String, u64>,
}

/// One span of a flow's timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowSpan {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// Parent span, if any.
    pub parent_span_id: Option<String>,
    /// E.g. `process orders`.
    pub name: String,
    /// `producer`, `consumer` or `internal`.
    pub kind: String,
    /// µs since the epoch.
    pub start_us: i64,
    /// µs.
    pub duration_us: i64,
    /// `ok`, `error` or `unset`.
    pub status: String,
    /// Error description.
    pub status_message: Option<String>,
    /// Switchyard operation (`send`, `process`, `ack`, `dead_letter`...).
    pub operation: Option<String>,
    /// Queue.
    pub queue: Option<String>,
    /// Message id.
    pub message_id: Option<String>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Causation id.
    pub causation_id: Option<String>,
    /// Delivery attempt.
    pub attempt: Option<i64>,
    /// How it ended.
    pub outcome: Option<String>,
    /// Every other attribute.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Linked spans.
    pub links: Vec<FlowLink>,
}

/// A link from one span to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowLink {
    /// Linked trace.
    pub trace_id: String,
    /// Linked span.
    pub span_id: String,
}

/// A recent flow, for a list to pick from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowSummary {
    /// Its correlation id.
    pub correlation_id: String,
    /// First span start, µs since the epoch.
    pub first_us: i64,
    /// Last span end, µs since the epoch.
    pub last_us: i64,
    /// Spans kept of it.
    pub spans: u64,
    /// Spans with an error status.
    pub errors: u64,
    /// Dead-letterings.
    pub dead_lettered: u64,
    /// Queues it touched.
    pub queues: Vec<String>,
}

impl Flows {
    pub(crate) fn new(store: Option<Store>) -> Flows {
        Flows { store }
    }

    async fn spans(&self, key: SpanKey) -> Result<Vec<SpanRecord>, StorageError> {
        match &self.store {
            Some(store) => store.spans(key, FLOW_SPANS_MAX + 1).await,
            None => Ok(Vec::new()),
        }
    }

    /// Every span of a correlation id.
    pub async fn by_correlation(&self, id: &str) -> Result<Flow, StorageError> {
        let spans = self.spans(SpanKey::Correlation(id.to_owned())).await?;
        Ok(build(FlowQuery::Correlation, id, spans))
    }

    /// Every span of a trace.
    pub async fn by_trace(&self, id: &str) -> Result<Flow, StorageError> {
        let spans = self.spans(SpanKey::Trace(id.to_ascii_lowercase())).await?;
        Ok(build(FlowQuery::Trace, id, spans))
    }

    /// The flow a message belongs to: every span of its correlation id (the
    /// message's own spans when they carry none).
    pub async fn by_message(&self, id: &str) -> Result<Flow, StorageError> {
        let own = self.spans(SpanKey::Message(id.to_owned())).await?;
        let correlation = own.iter().find_map(|s| s.correlation_id.clone());
        let spans = match correlation {
            Some(correlation) => self.spans(SpanKey::Correlation(correlation)).await?,
            None => own,
        };
        Ok(build(FlowQuery::Message, id, spans))
    }

    /// Looks `id` up as a correlation id, then a message id, then a trace id;
    /// an empty correlation flow when nothing matches.
    pub async fn lookup(&self, id: &str) -> Result<Flow, StorageError> {
        let flow = self.by_correlation(id).await?;
        if !flow.timeline.is_empty() {
            return Ok(flow);
        }
        let flow = self.by_message(id).await?;
        if !flow.timeline.is_empty() {
            return Ok(flow);
        }
        let by_trace = self.by_trace(id).await?;
        if !by_trace.timeline.is_empty() {
            return Ok(by_trace);
        }
        Ok(build(FlowQuery::Correlation, id, Vec::new()))
    }

    /// Flows with the latest activity, newest first.
    pub async fn recent(&self, n_max: u32) -> Result<Vec<FlowSummary>, StorageError> {
        let Some(store) = &self.store else {
            return Ok(Vec::new());
        };
        let rows = store.recent_flows(n_max, RECENT_WINDOW_SPANS).await?;
        Ok(rows
            .into_iter()
            .map(|r| FlowSummary {
                correlation_id: r.correlation_id,
                first_us: r.first_us,
                last_us: r.last_us,
                spans: r.n_spans,
                errors: r.n_errors,
                dead_lettered: r.n_dead_lettered,
                queues: r.queues,
            })
            .collect())
    }
}

#[derive(Default)]
struct EdgeAcc {
    messages: u64,
    failures: u64,
    latency_us_sum: u64,
    latency_us_max: u64,
    outcomes: BTreeMap<String, u64>,
}

struct Graph {
    nodes: BTreeMap<String, FlowNode>,
    edges: BTreeMap<(String, String), EdgeAcc>,
}

impl Graph {
    fn node(&mut self, kind: FlowNodeKind, name: &str) -> String {
        let (prefix, label) = match kind {
            FlowNodeKind::Producer => ("producer", name.to_owned()),
            FlowNodeKind::Queue => ("queue", name.to_owned()),
            FlowNodeKind::Handler => ("handler", format!("{name} consumer")),
            FlowNodeKind::DeadLetterQueue => ("queue", name.to_owned()),
        };
        let id = format!("{prefix}:{name}");
        let node = self.nodes.entry(id.clone()).or_insert(FlowNode {
            id: id.clone(),
            kind,
            label,
        });
        // A queue seen as a dead-letter target anywhere is drawn as one.
        if kind == FlowNodeKind::DeadLetterQueue {
            node.kind = kind;
        }
        id
    }

    fn parked(&mut self, queue: &str) -> String {
        let id = format!("parked:{queue}");
        self.nodes.entry(id.clone()).or_insert(FlowNode {
            id: id.clone(),
            kind: FlowNodeKind::DeadLetterQueue,
            label: format!("{queue} (parked)"),
        });
        id
    }

    fn edge(&mut self, from: String, to: String, span: &SpanRecord, outcome: Option<&str>) {
        let acc = self.edges.entry((from, to)).or_default();
        acc.messages += 1;
        if span.status == "error" {
            acc.failures += 1;
        }
        let duration = span.duration_us.max(0) as u64;
        acc.latency_us_sum += duration;
        acc.latency_us_max = acc.latency_us_max.max(duration);
        if let Some(outcome) = outcome {
            *acc.outcomes.entry(outcome.to_owned()).or_default() += 1;
        }
    }
}

fn text_attribute<'a>(span: &'a SpanRecord, key: &str) -> Option<&'a str> {
    span.attributes.get(key).and_then(|v| v.as_str())
}

fn build(query: FlowQuery, id: &str, mut spans: Vec<SpanRecord>) -> Flow {
    let truncated = spans.len() > FLOW_SPANS_MAX as usize;
    spans.truncate(FLOW_SPANS_MAX as usize);
    spans.sort_by_key(|s| s.start_us);
    let by_id: HashMap<&str, &SpanRecord> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let mut graph = Graph {
        nodes: BTreeMap::new(),
        edges: BTreeMap::new(),
    };
    for span in &spans {
        let Some(queue) = span.queue.as_deref() else {
            continue;
        };
        match span.operation.as_deref() {
            Some("send") => {
                // Sent from inside a handler: the handler is the producer.
                let parent = span
                    .parent_span_id
                    .as_deref()
                    .and_then(|p| by_id.get(p))
                    .filter(|p| matches!(p.operation.as_deref(), Some("process" | "receive")));
                let from = match parent.and_then(|p| p.queue.as_deref()) {
                    Some(handled) => graph.node(FlowNodeKind::Handler, handled),
                    None => {
                        let source = text_attribute(span, attr::SOURCE).unwrap_or("client");
                        graph.node(FlowNodeKind::Producer, source)
                    }
                };
                let to = graph.node(FlowNodeKind::Queue, queue);
                graph.edge(from, to, span, span.outcome.as_deref().or(Some("sent")));
            }
            Some("process" | "receive") => {
                let from = graph.node(FlowNodeKind::Queue, queue);
                let to = graph.node(FlowNodeKind::Handler, queue);
                graph.edge(from, to, span, span.outcome.as_deref());
            }
            Some("dead_letter") => {
                let from = graph.node(FlowNodeKind::Queue, queue);
                let parked = span.attributes.get(attr::PARKED).and_then(|v| v.as_bool());
                let to = match (parked, text_attribute(span, attr::DEAD_LETTER_QUEUE)) {
                    (Some(false), Some(dlq)) => graph.node(FlowNodeKind::DeadLetterQueue, dlq),
                    _ => graph.parked(queue),
                };
                let reason = text_attribute(span, attr::DEAD_LETTER_REASON);
                graph.edge(from, to, span, reason);
            }
            Some(action @ ("retried" | "moved")) => {
                let parked = span.attributes.get(attr::PARKED).and_then(|v| v.as_bool());
                let from = match parked {
                    Some(true) => graph.parked(queue),
                    _ => graph.node(FlowNodeKind::DeadLetterQueue, queue),
                };
                let Some(to) = text_attribute(span, attr::REDRIVE_TO) else {
                    continue;
                };
                let to = graph.node(FlowNodeKind::Queue, to);
                graph.edge(from, to, span, Some(action));
            }
            _ => {}
        }
    }
    let mut correlation_ids: Vec<String> = spans
        .iter()
        .filter_map(|s| s.correlation_id.clone())
        .collect();
    correlation_ids.sort();
    correlation_ids.dedup();
    let mut trace_ids: Vec<String> = spans.iter().map(|s| s.trace_id.clone()).collect();
    trace_ids.sort();
    trace_ids.dedup();
    let edges = graph
        .edges
        .into_iter()
        .map(|((from, to), acc)| FlowEdge {
            from,
            to,
            messages: acc.messages,
            failures: acc.failures,
            latency_us_avg: (acc.messages > 0).then(|| acc.latency_us_sum / acc.messages),
            latency_us_max: (acc.messages > 0).then_some(acc.latency_us_max),
            outcomes: acc.outcomes,
        })
        .collect();
    Flow {
        query,
        id: id.to_owned(),
        correlation_ids,
        trace_ids,
        nodes: graph.nodes.into_values().collect(),
        edges,
        timeline: spans.into_iter().map(to_flow_span).collect(),
        truncated,
    }
}

fn to_flow_span(s: SpanRecord) -> FlowSpan {
    FlowSpan {
        trace_id: s.trace_id,
        span_id: s.span_id,
        parent_span_id: s.parent_span_id,
        name: s.name,
        kind: s.kind,
        start_us: s.start_us,
        duration_us: s.duration_us,
        status: s.status,
        status_message: s.status_message,
        operation: s.operation,
        queue: s.queue,
        message_id: s.message_id,
        correlation_id: s.correlation_id,
        causation_id: s.causation_id,
        attempt: s.attempt,
        outcome: s.outcome,
        attributes: s.attributes,
        links: s
            .links
            .into_iter()
            .map(|(trace_id, span_id)| FlowLink { trace_id, span_id })
            .collect(),
    }
}
