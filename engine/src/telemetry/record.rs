//! Finished spans as the engine's store keeps them: [`SpanRecord`]s, made
//! on the exporter thread from the engine's own spans and from application
//! spans the SDK finished.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::{Key, Value};
use opentelemetry_sdk::trace::SpanData;

use super::span::{RawSpan, hex};
use crate::storage::SpanRecord;
use crate::telemetry::attr;

fn micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// One finished span as the engine stores it.
pub(crate) fn to_record(span: SpanData) -> SpanRecord {
    let start_us = micros(span.start_time);
    let end_us = micros(span.end_time);
    let (status, status_message) = status(&span.status);
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

/// One of the engine's own spans as stored: the ids and typed fields
/// directly, without going through an attribute list.
pub(crate) fn raw_to_record(span: &RawSpan) -> SpanRecord {
    let start_us = micros(span.start);
    let end_us = micros(span.end);
    let (status, status_message) = status(&span.status);
    let ids = &span.ids;
    let mut record = SpanRecord {
        trace_id: hex(&span.trace_id.to_bytes()),
        span_id: hex(&span.span_id.to_bytes()),
        parent_span_id: parent(span.parent_span_id),
        name: span.name(),
        kind: kind(&span.kind).to_owned(),
        start_us,
        duration_us: (end_us - start_us).max(0),
        status: status.to_owned(),
        status_message,
        operation: Some(span.operation.to_owned()),
        queue: Some(ids.queue.to_string()),
        message_id: Some(ids.message_id.to_string()),
        correlation_id: Some(ids.correlation_id()),
        causation_id: ids.causation_id.as_deref().map(str::to_owned),
        attempt: span.attempt.map(i64::from),
        outcome: span.outcome.map(str::to_owned),
        ..SpanRecord::default()
    };
    for kv in &span.extra {
        take_attribute(&mut record, kv.key.clone(), kv.value.clone());
    }
    record
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

fn status(status: &Status) -> (&'static str, Option<String>) {
    match status {
        Status::Ok => ("ok", None),
        Status::Error { description } => ("error", Some(description.to_string())),
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
