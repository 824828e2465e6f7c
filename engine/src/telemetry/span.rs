//! The engine's own spans: plain structs with OpenTelemetry's data model
//! (trace and span ids, parent, kind, times, status, semantic-convention
//! attributes), built on the hot path without the SDK's span machinery.
//!
//! Why not `SdkTracer` spans: on a message path that costs a few
//! microseconds, the SDK's span objects (a builder, an attribute vector of
//! key-values, a span moved through a processor channel and converted again
//! by every exporter) cost as much as the message itself. A [`RawSpan`] holds
//! the message's shared ids and a few typed fields; the attribute list an
//! OTLP collector sees is built from it only when a span is exported
//! ([`RawSpan::to_span_data`]), on the exporter's thread.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SpanData, SpanEvents, SpanLinks};

use super::MessageIds;
use super::attr;
use crate::envelope::TraceParent;

/// One of the engine's spans. A consumer span is open (parked until its
/// delivery is settled) until `end_ns` is set.
///
/// Kept small: every span is moved by value from where it is made, through
/// the in-flight table, into the pipeline's buffer, and each move copies it
/// whole. Operations and outcomes are one-byte enums, times are
/// nanoseconds, and the rare extra attributes are boxed.
#[derive(Clone, Debug)]
pub(crate) struct RawSpan {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    /// `SpanId::INVALID` for a root.
    pub(crate) parent_span_id: SpanId,
    pub(crate) parent_is_remote: bool,
    /// Recorded and exported only when sampled.
    pub(crate) sampled: bool,
    /// The W3C `tracestate` of the trace, carried from parent to child.
    pub(crate) trace_state: Option<Arc<str>>,
    /// Its name, kind and `messaging.operation.*` attributes.
    pub(crate) operation: Operation,
    /// Nanoseconds since the Unix epoch.
    pub(crate) start_ns: u64,
    pub(crate) end_ns: u64,
    pub(crate) status: SpanStatus,
    pub(crate) ids: MessageIds,
    pub(crate) attempt: Option<u32>,
    pub(crate) outcome: Option<Outcome>,
    /// Attributes beyond the ids, attempt and outcome (source, batch size,
    /// retry due time, dead-letter reason...): none on most spans.
    pub(crate) extra: Extra,
}

/// What a span records. Each operation gives the first word of the span's
/// name, its kind, and its `messaging.operation.type` and
/// `messaging.operation.name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    Send,
    /// A pulled delivery.
    Receive,
    /// A delivery pushed to a handler.
    Process,
    Ack,
    Nack,
    Reject,
    /// A retry scheduled by a nack.
    Retry,
    DeadLetter,
    /// A dead-lettering because the message's time to live ran out.
    Expire,
    /// Operator actions on dead letters.
    Retried,
    Moved,
    Purged,
}

impl Operation {
    /// The first word of the span's name (`send` in `send orders`).
    pub(crate) fn verb(self) -> &'static str {
        match self {
            Operation::Expire => "expire",
            other => other.name(),
        }
    }

    /// `messaging.operation.name`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Operation::Send => "send",
            Operation::Receive => "receive",
            Operation::Process => "process",
            Operation::Ack => "ack",
            Operation::Nack => "nack",
            Operation::Reject => "reject",
            Operation::Retry => "retry",
            Operation::DeadLetter | Operation::Expire => "dead_letter",
            Operation::Retried => "retried",
            Operation::Moved => "moved",
            Operation::Purged => "purged",
        }
    }

    /// `messaging.operation.type`.
    pub(crate) fn operation_type(self) -> &'static str {
        match self {
            Operation::Send => "send",
            Operation::Receive => "receive",
            Operation::Process => "process",
            _ => "settle",
        }
    }

    pub(crate) fn kind(self) -> SpanKind {
        match self {
            Operation::Send => SpanKind::Producer,
            Operation::Receive
            | Operation::Process
            | Operation::Ack
            | Operation::Nack
            | Operation::Reject => SpanKind::Consumer,
            _ => SpanKind::Internal,
        }
    }
}

/// How a delivery (or a send) ended: `switchyard.outcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Acked,
    RetryScheduled,
    DeadLettered,
    /// The lease ran out before the delivery was settled.
    LeaseExpired,
    /// A resend within the dedup window: nothing new was stored.
    Duplicate,
    /// The engine shut down before the delivery was settled.
    Unsettled,
    /// Too many deliveries were in flight to keep this one's span open.
    Untracked,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Acked => "acked",
            Outcome::RetryScheduled => "retry_scheduled",
            Outcome::DeadLettered => "dead_lettered",
            Outcome::LeaseExpired => "lease_expired",
            Outcome::Duplicate => "duplicate",
            Outcome::Unsettled => "unsettled",
            Outcome::Untracked => "untracked",
        }
    }
}

/// A span's status. OpenTelemetry's [`Status`] takes 24 bytes for what
/// this holds in 16.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum SpanStatus {
    #[default]
    Unset,
    Ok,
    Error(Box<str>),
}

impl SpanStatus {
    pub(crate) fn error(description: impl Into<String>) -> SpanStatus {
        SpanStatus::Error(description.into().into_boxed_str())
    }

    pub(crate) fn to_status(&self) -> Status {
        match self {
            SpanStatus::Unset => Status::Unset,
            SpanStatus::Ok => Status::Ok,
            SpanStatus::Error(description) => Status::error(description.to_string()),
        }
    }
}

/// A span's extra attributes: boxed, as most spans have none.
#[derive(Clone, Debug, Default)]
// A boxed vector is one pointer in the span, where a vector takes three and
// a boxed slice two.
#[allow(clippy::box_collection)]
pub(crate) struct Extra(Option<Box<Vec<KeyValue>>>);

impl Extra {
    pub(crate) fn push(&mut self, kv: KeyValue) {
        self.0.get_or_insert_default().push(kv);
    }

    pub(crate) fn as_slice(&self) -> &[KeyValue] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

/// Nanoseconds since the Unix epoch (0 before it).
pub(crate) fn unix_nanos(t: SystemTime) -> u64 {
    // Seconds and nanoseconds apart: `as_nanos` would make a u128.
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() * 1_000_000_000 + u64::from(d.subsec_nanos()))
        .unwrap_or(0)
}

/// Where a new span hangs: its trace, parent span and sampling decision.
#[derive(Clone, Debug)]
pub(crate) struct Parent {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) sampled: bool,
    /// The parent came from another process or hop (a `traceparent`).
    pub(crate) remote: bool,
    pub(crate) trace_state: Option<Arc<str>>,
}

impl Parent {
    /// The parent named by a W3C `traceparent`; `None` when there is none
    /// (the span then starts a new trace). `tracestate` goes with it to
    /// every span of the trace.
    pub(crate) fn from_traceparent(
        traceparent: Option<TraceParent>,
        tracestate: Option<&str>,
    ) -> Option<Parent> {
        let tp = traceparent?;
        Some(Parent {
            trace_id: TraceId::from_bytes(tp.trace_id()),
            span_id: SpanId::from_bytes(tp.span_id()),
            sampled: tp.sampled(),
            remote: true,
            trace_state: tracestate.filter(|s| !s.is_empty()).map(Arc::from),
        })
    }

    /// A span of this process as parent.
    pub(crate) fn of(span: &RawSpan) -> Parent {
        Parent {
            trace_id: span.trace_id,
            span_id: span.span_id,
            sampled: span.sampled,
            remote: false,
            trace_state: span.trace_state.clone(),
        }
    }
}

/// New span and trace ids, and the sampling decision for new traces.
#[derive(Debug)]
pub(crate) struct Ids {
    random: RandomIdGenerator,
    /// Traces kept out of 2^63, as `TraceIdRatioBased` decides.
    ratio_bound: u64,
    always: bool,
}

impl Ids {
    pub(crate) fn new(sample_ratio: f64) -> Ids {
        Ids {
            random: RandomIdGenerator::default(),
            ratio_bound: (sample_ratio.clamp(0.0, 1.0) * (1u64 << 63) as f64) as u64,
            always: sample_ratio >= 1.0,
        }
    }

    /// Trace ids whose first 8 bytes are a UUID v7's (a millisecond
    /// timestamp and a counter, so they are appended to the span store's key
    /// index instead of landing at random pages of it) and whose last 8
    /// bytes are random (W3C Trace Context asks for random right-most bytes,
    /// and the ratio sampler decides on them: a UUID's fixed variant bits
    /// there would skew it). Ids made close together also share their leading
    /// 62 bits, all that the span store keys them by, and so share key rows:
    /// 12 random bits after the timestamp instead of the UUID's counter made
    /// ten times the key rows and cost the span thread 6x in its inserts.
    pub(crate) fn new_trace_id(&self) -> TraceId {
        self.trace_id_after(&uuid::Uuid::now_v7())
    }

    /// A new trace id whose time-ordered half is that of `uuid`, a UUID v7
    /// just made (a message's id): the same as [`Ids::new_trace_id`]
    /// without making a second UUID.
    fn trace_id_after(&self, uuid: &uuid::Uuid) -> TraceId {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&uuid.as_bytes()[..8]);
        bytes[8..].copy_from_slice(&self.random.new_span_id().to_bytes());
        TraceId::from_bytes(bytes)
    }

    pub(crate) fn new_span_id(&self) -> SpanId {
        self.random.new_span_id()
    }

    /// Parent-based sampling: a child follows its parent's decision; a new
    /// trace is kept when its id falls under the ratio (the rule of
    /// OpenTelemetry's `TraceIdRatioBased` sampler, so every service that
    /// samples by the same ratio keeps the same traces).
    pub(crate) fn sampled(&self, parent: Option<&Parent>, trace_id: TraceId) -> bool {
        match parent {
            Some(parent) => parent.sampled,
            None if self.always => true,
            None => {
                let low = u64::from_be_bytes(trace_id.to_bytes()[8..].try_into().expect("8 bytes"));
                (low >> 1) < self.ratio_bound
            }
        }
    }

    /// Ids, parent link and sampling decision for a new span under `parent`
    /// (a new trace when `None`).
    pub(crate) fn place(&self, parent: Option<&Parent>) -> Placement {
        let trace_id = parent.map_or_else(|| self.new_trace_id(), |p| p.trace_id);
        self.place_in(parent, trace_id)
    }

    /// As [`Ids::place`], for the span that sends a message: a new trace
    /// takes its time-ordered half from the message's id (a UUID v7).
    pub(crate) fn place_send(&self, parent: Option<&Parent>, message_id: &uuid::Uuid) -> Placement {
        let trace_id = parent.map_or_else(|| self.trace_id_after(message_id), |p| p.trace_id);
        self.place_in(parent, trace_id)
    }

    fn place_in(&self, parent: Option<&Parent>, trace_id: TraceId) -> Placement {
        Placement {
            trace_id,
            span_id: self.new_span_id(),
            parent_span_id: parent.map_or(SpanId::INVALID, |p| p.span_id),
            parent_is_remote: parent.is_some_and(|p| p.remote),
            sampled: self.sampled(parent, trace_id),
            trace_state: parent.and_then(|p| p.trace_state.clone()),
        }
    }
}

/// The identity part of a new span.
#[derive(Clone, Debug)]
pub(crate) struct Placement {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) parent_span_id: SpanId,
    pub(crate) parent_is_remote: bool,
    pub(crate) sampled: bool,
    pub(crate) trace_state: Option<Arc<str>>,
}

impl RawSpan {
    /// A span starting (and, until told otherwise, ending) at `at`, in
    /// nanoseconds since the epoch.
    pub(crate) fn new(
        placement: Placement,
        operation: Operation,
        ids: MessageIds,
        at: u64,
    ) -> RawSpan {
        RawSpan {
            trace_id: placement.trace_id,
            span_id: placement.span_id,
            parent_span_id: placement.parent_span_id,
            parent_is_remote: placement.parent_is_remote,
            sampled: placement.sampled,
            trace_state: placement.trace_state,
            operation,
            start_ns: at,
            end_ns: at,
            status: SpanStatus::Unset,
            ids,
            attempt: None,
            outcome: None,
            extra: Extra::default(),
        }
    }

    /// Ends the span at `at`, in nanoseconds since the epoch.
    pub(crate) fn end_at(&mut self, at: u64) {
        self.end_ns = at;
    }

    /// `verb queue`, the span's name.
    pub(crate) fn name(&self) -> String {
        let verb = self.operation.verb();
        let mut name = String::with_capacity(verb.len() + 1 + self.ids.queue.len());
        name.push_str(verb);
        name.push(' ');
        name.push_str(&self.ids.queue);
        name
    }

    /// The span's W3C `traceparent`, for the messages it sends on.
    pub(crate) fn traceparent(&self) -> TraceParent {
        traceparent(self.trace_id, self.span_id, self.sampled)
    }

    /// The span as the OpenTelemetry SDK's exporters take it, with every
    /// attribute of the messaging semantic conventions spelled out.
    pub(crate) fn to_span_data(&self, scope: &InstrumentationScope) -> SpanData {
        let ids = &self.ids;
        let mut attributes = Vec::with_capacity(10 + self.extra.as_slice().len());
        attributes.extend([
            KeyValue::new(attr::MESSAGING_SYSTEM, attr::SYSTEM),
            KeyValue::new(attr::DESTINATION, ids.queue.clone()),
            KeyValue::new(attr::OPERATION_TYPE, self.operation.operation_type()),
            KeyValue::new(attr::OPERATION_NAME, self.operation.name()),
            KeyValue::new(attr::MESSAGE_ID, ids.message_id.to_string()),
            KeyValue::new(attr::CONVERSATION_ID, ids.correlation_id()),
        ]);
        if let Some(causation) = &ids.causation_id {
            attributes.push(KeyValue::new(attr::CAUSATION_ID, causation.clone()));
        }
        if let Some(attempt) = self.attempt {
            attributes.push(KeyValue::new(attr::ATTEMPT, i64::from(attempt)));
            if matches!(self.operation, Operation::Receive | Operation::Process) {
                attributes.push(KeyValue::new(attr::REDELIVERED, attempt > 1));
            }
        }
        attributes.extend(self.extra.as_slice().iter().cloned());
        if let Some(outcome) = self.outcome {
            attributes.push(KeyValue::new(attr::OUTCOME, outcome.as_str()));
        }
        SpanData {
            span_context: span_context(
                self.trace_id,
                self.span_id,
                self.sampled,
                false,
                self.trace_state.as_deref(),
            ),
            parent_span_id: self.parent_span_id,
            parent_span_is_remote: self.parent_is_remote,
            span_kind: self.operation.kind(),
            name: Cow::Owned(self.name()),
            start_time: UNIX_EPOCH + Duration::from_nanos(self.start_ns),
            end_time: UNIX_EPOCH + Duration::from_nanos(self.end_ns),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: self.status.to_status(),
            instrumentation_scope: scope.clone(),
        }
    }
}

/// The OpenTelemetry span context of a span (or a parent) of ours.
pub(crate) fn span_context(
    trace_id: TraceId,
    span_id: SpanId,
    sampled: bool,
    remote: bool,
    trace_state: Option<&str>,
) -> SpanContext {
    SpanContext::new(
        trace_id,
        span_id,
        if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        },
        remote,
        trace_state
            .and_then(|s| TraceState::from_str(s).ok())
            .unwrap_or_default(),
    )
}

/// The W3C `traceparent` of a span.
pub(crate) fn traceparent(trace_id: TraceId, span_id: SpanId, sampled: bool) -> TraceParent {
    TraceParent::new(trace_id.to_bytes(), span_id.to_bytes(), u8::from(sampled))
        .expect("span and trace ids are never all zeros")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spans are moved whole from where they are made to the pipeline, so
    /// their size is a cost on every message: it went from 272 bytes to
    /// this, and should not grow back unnoticed.
    #[test]
    fn a_span_stays_small() {
        assert_eq!(std::mem::size_of::<RawSpan>(), 176);
    }

    #[test]
    fn ratio_sampling_follows_the_trace_id_and_children_follow_their_parent() {
        let never = Ids::new(0.0);
        let always = Ids::new(1.0);
        let half = Ids::new(0.5);
        let low = TraceId::from_bytes(
            [0; 15]
                .into_iter()
                .chain([2])
                .collect::<Vec<_>>()
                .try_into()
                .unwrap(),
        );
        let high = TraceId::from_bytes([0xff; 16]);
        assert!(!never.sampled(None, low));
        assert!(always.sampled(None, high));
        assert!(half.sampled(None, low));
        assert!(!half.sampled(None, high));
        let sampled_parent = Parent {
            trace_id: high,
            span_id: SpanId::from_bytes([1; 8]),
            sampled: true,
            remote: true,
            trace_state: Some("vendor=1".into()),
        };
        assert!(never.sampled(Some(&sampled_parent), high));
        let placed = never.place(Some(&sampled_parent));
        assert_eq!(placed.trace_id, high);
        assert_eq!(placed.parent_span_id, sampled_parent.span_id);
        assert!(placed.parent_is_remote && placed.sampled);
        assert_eq!(placed.trace_state.as_deref(), Some("vendor=1"));
    }

    #[test]
    fn new_trace_ids_are_time_ordered_and_sampled_at_the_ratio() {
        let ids = Ids::new(0.5);
        let first = ids.new_trace_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(ids.new_trace_id().to_bytes()[..6] > first.to_bytes()[..6]);
        // Laid out as a UUID v7: its version nibble, then its time in ms.
        assert_eq!(first.to_bytes()[6] >> 4, 7);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as u64;
        let mut ms = [0u8; 8];
        ms[2..].copy_from_slice(&first.to_bytes()[..6]);
        let ms = u64::from_be_bytes(ms);
        assert!(
            ms <= now_ms && now_ms - ms < 60_000,
            "{ms} ms against {now_ms}"
        );
        // Binomial(4000, 0.5): 2000 +- 32 (one standard deviation); the
        // bounds are 12 deviations out, so they only fail when sampling is
        // skewed (as it was when the right half of the id was a UUID's,
        // whose variant bits kept every trace out at 0.5).
        let n_kept = (0..4000)
            .filter(|_| ids.sampled(None, ids.new_trace_id()))
            .count();
        assert!((1600..=2400).contains(&n_kept), "{n_kept} of 4000 kept");
        let tenth = Ids::new(0.1);
        let n_kept = (0..4000)
            .filter(|_| tenth.sampled(None, tenth.new_trace_id()))
            .count();
        assert!(
            (250..=550).contains(&n_kept),
            "{n_kept} of 4000 kept at 0.1"
        );
    }
}
