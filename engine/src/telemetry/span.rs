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
use std::time::SystemTime;

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SpanData, SpanEvents, SpanLinks};

use super::MessageIds;
use super::attr;
use crate::envelope::TraceParent;

/// One span of the engine's. A consumer span is open (parked until its
/// delivery is settled) until `end` is set.
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
    pub(crate) kind: SpanKind,
    /// First word of the span name (`send` in `send orders`).
    pub(crate) verb: &'static str,
    /// `messaging.operation.type`.
    pub(crate) operation_type: &'static str,
    /// `messaging.operation.name`.
    pub(crate) operation: &'static str,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    pub(crate) status: Status,
    pub(crate) ids: MessageIds,
    pub(crate) attempt: Option<u32>,
    pub(crate) outcome: Option<&'static str>,
    /// Attributes beyond the ids, attempt and outcome (source, batch size,
    /// retry due time, dead-letter reason...): empty on most spans.
    pub(crate) extra: Vec<KeyValue>,
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
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&uuid::Uuid::now_v7().as_bytes()[..8]);
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
    /// A span starting (and, until told otherwise, ending) at `at`.
    pub(crate) fn new(
        placement: Placement,
        kind: SpanKind,
        (verb, operation_type, operation): (&'static str, &'static str, &'static str),
        ids: MessageIds,
        at: SystemTime,
    ) -> RawSpan {
        RawSpan {
            trace_id: placement.trace_id,
            span_id: placement.span_id,
            parent_span_id: placement.parent_span_id,
            parent_is_remote: placement.parent_is_remote,
            sampled: placement.sampled,
            trace_state: placement.trace_state,
            kind,
            verb,
            operation_type,
            operation,
            start: at,
            end: at,
            status: Status::Unset,
            ids,
            attempt: None,
            outcome: None,
            extra: Vec::new(),
        }
    }

    /// `verb queue`, the span's name.
    pub(crate) fn name(&self) -> String {
        let mut name = String::with_capacity(self.verb.len() + 1 + self.ids.queue.len());
        name.push_str(self.verb);
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
        let mut attributes = Vec::with_capacity(10 + self.extra.len());
        attributes.extend([
            KeyValue::new(attr::MESSAGING_SYSTEM, attr::SYSTEM),
            KeyValue::new(attr::DESTINATION, ids.queue.clone()),
            KeyValue::new(attr::OPERATION_TYPE, self.operation_type),
            KeyValue::new(attr::OPERATION_NAME, self.operation),
            KeyValue::new(attr::MESSAGE_ID, ids.message_id.to_string()),
            KeyValue::new(attr::CONVERSATION_ID, ids.correlation_id()),
        ]);
        if let Some(causation) = &ids.causation_id {
            attributes.push(KeyValue::new(attr::CAUSATION_ID, causation.clone()));
        }
        if let Some(attempt) = self.attempt {
            attributes.push(KeyValue::new(attr::ATTEMPT, i64::from(attempt)));
            if matches!(self.operation_type, "receive" | "process") {
                attributes.push(KeyValue::new(attr::REDELIVERED, attempt > 1));
            }
        }
        attributes.extend(self.extra.iter().cloned());
        if let Some(outcome) = self.outcome {
            attributes.push(KeyValue::new(attr::OUTCOME, outcome));
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
            span_kind: self.kind.clone(),
            name: Cow::Owned(self.name()),
            start_time: self.start,
            end_time: self.end,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: self.status.clone(),
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
