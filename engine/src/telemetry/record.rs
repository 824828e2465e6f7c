//! The store exporter: turns finished OpenTelemetry spans into
//! [`SpanRecord`]s and writes them through the storage seam.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Key, Value};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::storage::{SpanRecord, SpanStore, Store};
use crate::telemetry::attr;

/// Writes spans to the engine's store.
#[derive(Debug)]
pub(crate) struct StoreExporter {
    store: Store,
    /// Spans written so far (shared with `Telemetry::n_spans_stored`).
    n_stored: Arc<AtomicU64>,
}

impl StoreExporter {
    pub(crate) fn new(store: Store, n_stored: Arc<AtomicU64>) -> StoreExporter {
        StoreExporter { store, n_stored }
    }
}

impl SpanExporter for StoreExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        // Runs on the batch processor's own thread: blocking is fine here.
        let n = batch.len() as u64;
        let records = batch.into_iter().map(to_record).collect();
        self.store
            .record_spans(records)
            .map_err(|e| OTelSdkError::InternalFailure(format!("{e:#}")))?;
        self.n_stored.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
}

fn micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// One finished span as the engine stores it.
pub(crate) fn to_record(span: SpanData) -> SpanRecord {
    let start_us = micros(span.start_time);
    let end_us = micros(span.end_time);
    let (status, status_message) = match &span.status {
        Status::Ok => ("ok", None),
        Status::Error { description } => ("error", Some(description.to_string())),
        Status::Unset => ("unset", None),
    };
    let mut record = SpanRecord {
        trace_id: span.span_context.trace_id().to_string(),
        span_id: span.span_context.span_id().to_string(),
        parent_span_id: (span.parent_span_id != opentelemetry::trace::SpanId::INVALID)
            .then(|| span.parent_span_id.to_string()),
        name: span.name.to_string(),
        kind: match span.span_kind {
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
            SpanKind::Client => "client",
            SpanKind::Server => "server",
            SpanKind::Internal => "internal",
        }
        .to_owned(),
        start_us,
        duration_us: (end_us - start_us).max(0),
        status: status.to_owned(),
        status_message,
        links: span
            .links
            .iter()
            .map(|l| {
                (
                    l.span_context.trace_id().to_string(),
                    l.span_context.span_id().to_string(),
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
