//! Finished spans as the engine's store keeps them: [`SpanRecord`]s, made
//! on the exporter thread from the engine's own spans and from application
//! spans the SDK finished.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::{Key, Value};
use opentelemetry_sdk::trace::SpanData;

use super::span::{Outcome, RawSpan, SpanStatus};
use crate::hex::hex;
use crate::storage::SpanRecord;
use crate::storage::span_batch::{Entry, Name, SpanView};
use crate::telemetry::attr;

fn micros(t: SystemTime) -> i64 {
    // Seconds and microseconds apart: `as_micros` divides a u128.
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 * 1_000_000 + i64::from(d.subsec_micros()))
        .unwrap_or(0)
}

/// One finished span as the engine stores it.
pub(crate) fn to_record(span: SpanData) -> SpanRecord {
    let start_us = micros(span.start_time);
    let end_us = micros(span.end_time);
    let (status, status_message) = status(&span.status);
    let status_message = status_message.map(str::to_owned);
    let mut record = SpanRecord {
        trace_id: hex(&span.span_context.trace_id().to_bytes()),
        span_id: hex(&span.span_context.span_id().to_bytes()),
        parent_span_id: parent(span.parent_span_id),
        name: span.name.to_string(),
        kind: kind(&span.span_kind).to_owned(),
        start_us,
        duration_us: (end_us - start_us).max(0),
        status: status.to_owned(),
        status_message,
        links: span
            .links
            .iter()
            .map(|l| {
                (
                    hex(&l.span_context.trace_id().to_bytes()),
                    hex(&l.span_context.span_id().to_bytes()),
                )
            })
            .collect(),
        ..SpanRecord::default()
    };
    for kv in span.attributes {
        take_attribute(&mut record, kv.key, kv.value);
    }
    // Application spans bridged from `tracing` (a handler's own spans) carry
    // the ids as plain fields.
    if record.correlation_id.is_none()
        && let Some(serde_json::Value::String(id)) = record.attributes.get("correlation_id")
    {
        record.correlation_id = Some(id.clone());
    }
    record
}

/// One of the engine's own spans as the store encodes it: its ids as bytes
/// and its fields borrowed, without a [`SpanRecord`] (and its dozen strings)
/// in between.
pub(crate) fn raw_view(span: &RawSpan) -> SpanView<'_> {
    let start_us = (span.start_ns / 1000) as i64;
    let end_us = (span.end_ns / 1000) as i64;
    let ids = &span.ids;
    let message_id = Entry::Uuid(*ids.message_id.0.as_bytes());
    let (status, status_message) = match &span.status {
        SpanStatus::Ok => ("ok", None),
        SpanStatus::Error(description) => ("error", Some(&**description)),
        SpanStatus::Unset => ("unset", None),
    };
    SpanView {
        trace_id: Entry::Hex16(span.trace_id.to_bytes()),
        span_id: Entry::Hex8(span.span_id.to_bytes()),
        parent_span_id: (span.parent_span_id != SpanId::INVALID)
            .then(|| Entry::Hex8(span.parent_span_id.to_bytes())),
        name: Name::VerbQueue(span.operation.verb(), &ids.queue),
        kind: kind(&span.operation.kind()),
        start_us,
        duration_us: (end_us - start_us).max(0),
        status,
        status_message,
        operation: Some(span.operation.name()),
        queue: Some(&ids.queue),
        message_id: Some(message_id),
        correlation_id: Some(ids.correlation_id.as_deref().map_or(message_id, Entry::of)),
        causation_id: ids.causation_id.as_deref().map(Entry::of),
        attempt: span.attempt.map(i64::from),
        outcome: span.outcome.map(Outcome::as_str),
        attributes: (!span.extra.as_slice().is_empty()).then(|| {
            // The same mapping as an exported span's attributes get.
            let mut record = SpanRecord::default();
            for kv in span.extra.as_slice() {
                take_attribute(&mut record, kv.key.clone(), kv.value.clone());
            }
            serde_json::to_string(&record.attributes).expect("attributes serialize")
        }),
        links: Vec::new(),
    }
}

fn parent(id: SpanId) -> Option<String> {
    (id != SpanId::INVALID).then(|| hex(&id.to_bytes()))
}

fn kind(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Client => "client",
        SpanKind::Server => "server",
        SpanKind::Internal => "internal",
    }
}

fn status(status: &Status) -> (&'static str, Option<&str>) {
    match status {
        Status::Ok => ("ok", None),
        Status::Error { description } => ("error", Some(description)),
        Status::Unset => ("unset", None),
    }
}

fn take_attribute(record: &mut SpanRecord, key: Key, value: Value) {
    let text = || value.as_str().into_owned();
    match key.as_str() {
        attr::OPERATION_NAME => record.operation = Some(text()),
        attr::DESTINATION => record.queue = Some(text()),
        attr::MESSAGE_ID => record.message_id = Some(text()),
        attr::CONVERSATION_ID => record.correlation_id = Some(text()),
        attr::CAUSATION_ID => record.causation_id = Some(text()),
        attr::OUTCOME => record.outcome = Some(text()),
        attr::ATTEMPT => {
            if let Value::I64(n) = value {
                record.attempt = Some(n);
            }
        }
        // Derivable, so not stored: every span here is Switchyard's, the
        // operation type follows from the operation, a redelivery from its
        // attempt. (Exporters other than the store still get them.)
        attr::MESSAGING_SYSTEM | attr::OPERATION_TYPE | attr::REDELIVERED => {}
        _ => {
            let json = match value {
                Value::Bool(b) => serde_json::Value::Bool(b),
                Value::I64(n) => serde_json::Value::from(n),
                Value::F64(f) => serde_json::Value::from(f),
                other => serde_json::Value::String(other.as_str().into_owned()),
            };
            record.attributes.insert(key.to_string(), json);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use opentelemetry::{InstrumentationScope, KeyValue};

    use super::*;
    use crate::envelope::{Envelope, MessageId};
    use crate::storage::span_batch::{SpanBatchBuilder, decode};
    use crate::telemetry::MessageIds;
    use crate::telemetry::span::{Ids, Operation, Parent};

    /// The store encodes the engine's spans from their fields; exporters
    /// get them as the SDK's `SpanData`. Both must say the same: the
    /// stored form equals the exported span in stored form.
    #[test]
    fn an_engine_span_is_stored_as_it_is_exported() {
        let ids = Ids::new(1.0);
        let queue: Arc<str> = Arc::from("orders");
        // A message whose correlation id is its own (the default).
        let id = MessageId::new();
        let own = Envelope {
            correlation_id: id.to_string(),
            ..Envelope::default()
        };
        let own = MessageIds::new(&queue, id, &own);
        let envelope = Envelope {
            correlation_id: "order-7".to_owned(),
            causation_id: Some("0190a5b2-c3d4-7000-8000-000000000001".to_owned()),
            ..Envelope::default()
        };
        let correlated = MessageIds::new(&queue, MessageId::new(), &envelope);
        let start = UNIX_EPOCH + Duration::from_micros(1_800_000_000_123_456);
        let ns = crate::telemetry::span::unix_nanos;
        let send = RawSpan::new(ids.place(None), Operation::Send, own, ns(start));
        let mut process = RawSpan::new(
            ids.place(Some(&Parent::of(&send))),
            Operation::Process,
            correlated,
            ns(start + Duration::from_micros(250)),
        );
        process.attempt = Some(2);
        process.outcome = Some(Outcome::RetryScheduled);
        process.status = SpanStatus::error("card declined");
        process.end_at(ns(start + Duration::from_micros(900)));
        process
            .extra
            .push(KeyValue::new(attr::SOURCE, "checkout".to_owned()));
        process
            .extra
            .push(KeyValue::new(attr::RETRY_DUE_MS, 17_i64));
        let spans = [send, process];

        let mut builder = SpanBatchBuilder::with_capacity(spans.len());
        for span in &spans {
            builder.push(raw_view(span));
        }
        let stored = decode(builder.finish().unwrap().blob()).unwrap();
        let scope = InstrumentationScope::builder("test").build();
        let exported: Vec<SpanRecord> = spans
            .iter()
            .map(|span| to_record(span.to_span_data(&scope)))
            .collect();
        assert_eq!(stored, exported);
        assert_eq!(stored[0].correlation_id, stored[0].message_id);
        assert_eq!(stored[1].correlation_id.as_deref(), Some("order-7"));
        assert_eq!(stored[1].name, "process orders");
        assert_eq!(stored[1].parent_span_id, Some(stored[0].span_id.clone()));
        assert_eq!(stored[1].attributes.len(), 2, "{:?}", stored[1].attributes);
    }
}
