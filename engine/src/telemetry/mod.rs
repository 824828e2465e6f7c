//! Observability: an OpenTelemetry span for every message operation, kept in
//! the engine's own store (for flow queries and the console) and optionally
//! exported over OTLP; Prometheus metrics; structured logs.
//!
//! How spans are made: the queue module calls the functions of [`Telemetry`]
//! at each step of a message's life. Each builds a [`span::RawSpan`]: the
//! OpenTelemetry span model (trace and span ids, parent, kind, times,
//! status, messaging semantic-convention attributes) as a plain struct that
//! shares the message's ids, timed by the engine's [`Clock`]. The SDK's span
//! objects cost as much as a message on this path, so they are not used
//! here; each engine has its own ids and sampler (parent-based, trace-id
//! ratio, as the SDK's). The W3C `traceparent` in each envelope carries the
//! trace across hops: a delivery's consumer span is a child of the span that
//! sent the message. A consumer span lives from hand-out to settlement; it is
//! parked in an in-memory table keyed by lease until the ack, nack or reject
//! (or lease expiry) ends it.
//!
//! Where spans go: the [`pipeline`], a bounded buffer drained by one thread
//! that writes each batch to the storage seam's [`SpanStore`] ([`record`]
//! makes the rows) and hands it, as SDK `SpanData`, to the OTLP exporter
//! and any other `SpanExporter` (tests add an in-memory one). Application
//! spans (handler code's `tracing` spans) come from an SDK tracer on the
//! engine's own provider ([`Telemetry::tracer`]) and join the same pipeline.
//!
//! A new capability adds its spans the same way: a `Telemetry` function per
//! step building `RawSpan`s, attributes from [`attr`], operation names the
//! flow graph ([`flow`]) knows.

pub mod attr;
mod context;
pub mod flow;
pub mod logging;
pub mod metrics;
mod pipeline;
mod record;
mod span;
#[cfg(test)]
mod tests;

use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider, SpanExporter};

pub(crate) use context::{Cause, current_cause, with_cause};
pub use flow::{Flow, FlowEdge, FlowNode, FlowNodeKind, FlowQuery, FlowSummary, Flows};
pub use metrics::Metrics;
use pipeline::{Finished, Pipeline};
use span::{Operation, Outcome, Parent, RawSpan, SpanStatus};

use crate::clock::{Clock, Timestamp};
use crate::config::TelemetryConfig;
use crate::envelope::{Envelope, MessageId, TraceParent};
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
    /// `None` when nothing is exported or stored: spans are not built at all.
    pipeline: Option<Pipeline>,
    /// The SDK tracer provider for application spans (handler code's
    /// `tracing` spans); they go to the same pipeline.
    provider: Option<SdkTracerProvider>,
    tracer: Option<SdkTracer>,
    ids: span::Ids,
    clock: Clock,
    /// Consumer spans waiting for their delivery to be settled.
    in_flight: Mutex<FxHashMap<LeaseKey, InFlight>>,
    metrics: Metrics,
    /// Consumer spans dropped because the in-flight table was full.
    n_untracked: AtomicU64,
}

/// One delivery: `(durable store?, sequence, lease number)`.
pub(crate) type LeaseKey = (bool, i64, i64);

/// Most consumer spans waiting for settlement; beyond it deliveries go
/// untraced (counted) rather than grow memory without bound.
const IN_FLIGHT_SPANS_MAX: usize = 1 << 20;

struct InFlight {
    span: RawSpan,
    lease_until: Timestamp,
}

/// The ids every span about one message carries. Made per send and per
/// delivery without formatting or copying ids: the span thread formats
/// them (so text is allocated and freed on one thread).
#[derive(Clone, Debug)]
pub(crate) struct MessageIds {
    pub(crate) queue: Arc<str>,
    pub(crate) message_id: MessageId,
    /// `None` when it is the message's own id (the default).
    correlation_id: Option<Arc<str>>,
    pub(crate) causation_id: Option<Arc<str>>,
}

impl MessageIds {
    pub(crate) fn new(queue: &Arc<str>, message_id: MessageId, envelope: &Envelope) -> MessageIds {
        let mut buf = uuid::Uuid::encode_buffer();
        let own = message_id.0.hyphenated().encode_lower(&mut buf);
        let correlation = envelope.correlation_id.as_str();
        MessageIds {
            queue: queue.clone(),
            message_id,
            correlation_id: (correlation != own).then(|| Arc::from(correlation)),
            causation_id: envelope.causation_id.as_deref().map(Arc::from),
        }
    }

    /// The correlation id as text.
    pub(crate) fn correlation_id(&self) -> String {
        match &self.correlation_id {
            Some(id) => id.to_string(),
            None => self.message_id.to_string(),
        }
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
    span: RawSpan,
}

/// An operator action on dead letters, as its spans and the message's
/// history name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OperatorAction {
    /// Sent back to the queue it was dead-lettered from.
    Retried,
    /// Sent to another queue.
    Moved,
    /// Deleted for good.
    Purged,
}

impl OperatorAction {
    /// The name its history entry and span carry.
    pub(crate) fn as_str(self) -> &'static str {
        self.operation().name()
    }

    fn operation(self) -> Operation {
        match self {
            OperatorAction::Retried => Operation::Retried,
            OperatorAction::Moved => Operation::Moved,
            OperatorAction::Purged => Operation::Purged,
        }
    }
}

/// Consumer spans of one claim's deliveries, parked in the in-flight table
/// together when dropped (see [`Telemetry::deliveries`]).
pub(crate) struct Deliveries<'a> {
    telemetry: &'a Telemetry,
    operation: Operation,
    /// When the deliveries started (ns since the epoch): read once, for the
    /// first.
    now: Option<u64>,
    started: Vec<(LeaseKey, InFlight)>,
}

impl Deliveries<'_> {
    /// Starts the consumer span of a delivery (a child of the span that
    /// sent the message). Returns the `traceparent` for follow-up messages.
    pub(crate) fn start(
        &mut self,
        key: LeaseKey,
        ids: MessageIds,
        envelope: &Envelope,
        attempt: u32,
        lease_until: Timestamp,
    ) -> Option<TraceParent> {
        let inner = &self.telemetry.inner;
        inner.metrics.delivered(&ids.queue);
        if !self.telemetry.enabled() {
            return None;
        }
        let parent = Parent::from_traceparent(envelope.traceparent, envelope.tracestate.as_deref());
        let now = *self.now.get_or_insert_with(|| inner.now_ns());
        let mut span = RawSpan::new(inner.ids.place(parent.as_ref()), self.operation, ids, now);
        span.attempt = Some(attempt);
        if let Some(source) = &envelope.source {
            span.extra.push(KeyValue::new(attr::SOURCE, source.clone()));
        }
        let traceparent = span.traceparent();
        self.started.push((key, InFlight { span, lease_until }));
        Some(traceparent)
    }
}

impl Drop for Deliveries<'_> {
    /// Parks the started spans until their deliveries are settled; beyond
    /// [`IN_FLIGHT_SPANS_MAX`] they end at once, `untracked`.
    fn drop(&mut self) {
        if self.started.is_empty() {
            return;
        }
        let inner = &self.telemetry.inner;
        let mut untracked = Vec::new();
        {
            let mut in_flight = inner.in_flight.lock().expect("in-flight spans lock");
            for (key, entry) in self.started.drain(..) {
                if in_flight.len() >= IN_FLIGHT_SPANS_MAX {
                    untracked.push(entry.span);
                } else {
                    in_flight.insert(key, entry);
                }
            }
        }
        if !untracked.is_empty() {
            inner
                .n_untracked
                .fetch_add(untracked.len() as u64, Ordering::Relaxed);
            let now = inner.now_ns();
            let mut finished: Vec<Finished> = untracked
                .into_iter()
                .filter(|span| span.sampled)
                .map(|mut span| {
                    span.outcome = Some(Outcome::Untracked);
                    span.end_at(now);
                    Finished::Raw(span)
                })
                .collect();
            self.telemetry.finish_all(&mut finished);
        }
    }
}

/// Whether a delivery is pulled (`receive`) or pushed to a handler (`process`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeliveryMode {
    Pull,
    Push,
}

impl Drop for Inner {
    /// The last handle gone without a shutdown (an engine dropped, a test
    /// ended): export what is queued and stop the span thread, as the SDK's
    /// providers do on drop.
    fn drop(&mut self) {
        self.end_open_spans();
        if let Some(pipeline) = &self.pipeline {
            pipeline.shutdown();
        }
    }
}

impl Inner {
    /// Now, as spans record it: nanoseconds since the epoch.
    fn now_ns(&self) -> u64 {
        span::unix_nanos(self.clock.now_system())
    }

    /// Ends the consumer spans still waiting for settlement: `unsettled`.
    fn end_open_spans(&self) {
        let open: Vec<InFlight> = {
            let mut in_flight = self.in_flight.lock().expect("in-flight spans lock");
            in_flight.drain().map(|(_, v)| v).collect()
        };
        let now = self.now_ns();
        for entry in open {
            let mut span = entry.span;
            span.outcome = Some(Outcome::Unsettled);
            span.end_at(now);
            self.finish(span);
        }
    }

    /// Hands a finished span to the pipeline (when it is sampled).
    fn finish(&self, span: RawSpan) {
        if span.sampled
            && let Some(pipeline) = &self.pipeline
        {
            pipeline.push(Finished::Raw(span));
        }
    }
}

impl Telemetry {
    /// Telemetry that builds no spans (the metrics still count).
    pub fn off(clock: Clock) -> Telemetry {
        Telemetry::new(None, None, 1.0, clock)
    }

    /// Starts span processing: spans go to the engine's store (when
    /// `config.keep_spans` and `store` is given), to OTLP (when an endpoint
    /// is configured), and to each of `extra` (tests pass an in-memory
    /// exporter).
    pub(crate) fn start(
        config: &TelemetryConfig,
        clock: Clock,
        store: Option<Store>,
        extra: Vec<Box<dyn DynSpanExporter>>,
    ) -> Result<Telemetry, TelemetryError> {
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .build();
        let mut exporters: Vec<pipeline::Exporter> = Vec::new();
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
            exporters.push(pipeline::Exporter {
                exporter: Box::new(exporter),
                owned: true,
            });
        }
        // The caller's exporters are theirs to shut down (an in-memory one
        // would forget its spans).
        exporters.extend(extra.into_iter().map(|exporter| pipeline::Exporter {
            exporter,
            owned: false,
        }));
        for exporter in &mut exporters {
            exporter.exporter.set_exporter_resource(&resource);
        }
        let store = store.filter(|_| config.keep_spans);
        if store.is_none() && exporters.is_empty() {
            return Ok(Telemetry::off(clock));
        }
        let pipeline = Pipeline::start(
            pipeline::Limits {
                queue_max: config.span_queue_max,
                batch_max: config.span_batch_max,
                flush_interval: Duration::from_millis(config.span_flush_interval_ms),
            },
            store,
            exporters,
        );
        let provider = SdkTracerProvider::builder()
            .with_id_generator(TimeOrderedIds::default())
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sample_ratio,
            ))))
            .with_resource(resource)
            .with_span_processor(pipeline.processor())
            .build();
        Ok(Telemetry::new(
            Some(pipeline),
            Some(provider),
            config.sample_ratio,
            clock,
        ))
    }

    fn new(
        pipeline: Option<Pipeline>,
        provider: Option<SdkTracerProvider>,
        sample_ratio: f64,
        clock: Clock,
    ) -> Telemetry {
        let tracer = provider.as_ref().map(|p| p.tracer(SCOPE));
        Telemetry {
            inner: Arc::new(Inner {
                pipeline,
                provider,
                tracer,
                ids: span::Ids::new(sample_ratio),
                clock,
                in_flight: Mutex::new(FxHashMap::default()),
                metrics: Metrics::new(),
                n_untracked: AtomicU64::new(0),
            }),
        }
    }

    /// Spans written to the engine's store so far. When the exporters cannot
    /// keep up, the span buffer (`span_queue_max`) drops what they cannot
    /// take ([`Telemetry::n_spans_dropped`]).
    pub fn n_spans_stored(&self) -> u64 {
        self.inner.pipeline.as_ref().map_or(0, Pipeline::n_stored)
    }

    /// Spans dropped because the span buffer was full.
    pub fn n_spans_dropped(&self) -> u64 {
        self.inner.pipeline.as_ref().map_or(0, Pipeline::n_dropped)
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

    /// Sends every finished span to the store and the exporters now.
    pub fn flush(&self) {
        // Application spans are in the pipeline as soon as they end (the
        // provider's processor forwards them synchronously).
        if let Some(pipeline) = &self.inner.pipeline {
            pipeline.flush();
        }
    }

    /// Ends the consumer spans still open, flushes, and stops the exporters.
    pub(crate) fn shutdown(&self) {
        self.inner.end_open_spans();
        if let Some(provider) = &self.inner.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(cause = %e, "could not shut down application spans");
        }
        if let Some(pipeline) = &self.inner.pipeline {
            pipeline.shutdown();
        }
    }

    fn enabled(&self) -> bool {
        self.inner.pipeline.is_some()
    }

    fn finish(&self, span: RawSpan) {
        self.inner.finish(span);
    }

    /// Hands finished spans to the pipeline under one lock.
    fn finish_all(&self, spans: &mut Vec<Finished>) {
        if let Some(pipeline) = &self.inner.pipeline {
            pipeline.push_all(spans);
        }
    }

    /// Starts the producer span of a message about to be stored. Its context
    /// becomes the message's `traceparent`. `parent` is the traceparent the
    /// sender gave (or inherited from the message being handled).
    pub(crate) fn send_started(
        &self,
        ids: MessageIds,
        source: Option<&str>,
        parent: (Option<TraceParent>, Option<&str>),
        batch_len: usize,
    ) -> Option<(SendSpan, TraceParent)> {
        if !self.enabled() {
            return None;
        }
        let parent = Parent::from_traceparent(parent.0, parent.1);
        let placement = self
            .inner
            .ids
            .place_send(parent.as_ref(), &ids.message_id.0);
        let mut span = RawSpan::new(placement, Operation::Send, ids, self.inner.now_ns());
        if let Some(source) = source {
            span.extra
                .push(KeyValue::new(attr::SOURCE, source.to_owned()));
        }
        if batch_len > 1 {
            span.extra
                .push(KeyValue::new(attr::BATCH_COUNT, batch_len as i64));
        }
        let traceparent = span.traceparent();
        Some((SendSpan { span }, traceparent))
    }

    /// Ends a producer span: `error` when the send failed.
    pub(crate) fn send_ended(&self, send: SendSpan, error: Option<&str>, duplicate: bool) {
        let mut span = send.span;
        if duplicate {
            span.outcome = Some(Outcome::Duplicate);
        }
        span.status = match error {
            Some(error) => SpanStatus::error(error),
            None => SpanStatus::Ok,
        };
        span.end_at(self.inner.now_ns());
        self.finish(span);
    }

    /// The consumer spans of one claim's `n` deliveries, started one by one
    /// ([`Deliveries::start`]) and parked for settlement together, under one
    /// lock of the in-flight table, when the batch is dropped.
    pub(crate) fn deliveries(&self, mode: DeliveryMode, n: usize) -> Deliveries<'_> {
        Deliveries {
            telemetry: self,
            operation: match mode {
                DeliveryMode::Pull => Operation::Receive,
                DeliveryMode::Push => Operation::Process,
            },
            now: None,
            started: Vec::with_capacity(if self.enabled() { n } else { 0 }),
        }
    }

    /// Ends settled deliveries: for each, a settle span (ack, nack or
    /// reject) under its consumer span, a retry or dead-letter span under
    /// that when the message goes on, and the consumer span itself with the
    /// outcome. One lock of the in-flight table and one of the span buffer
    /// for the whole batch.
    pub(crate) fn deliveries_settled(&self, settled: Vec<(LeaseKey, u32, Settled)>) {
        if settled.is_empty() || !self.enabled() {
            return;
        }
        let now = self.inner.now_ns();
        let mut finished = Vec::with_capacity(settled.len() * 2);
        {
            let mut in_flight = self.inner.in_flight.lock().expect("in-flight spans lock");
            for (key, attempt, settled) in settled {
                if let Some(entry) = in_flight.remove(&key) {
                    self.settle_spans(entry.span, attempt, &settled, now, &mut finished);
                }
            }
        }
        self.finish_all(&mut finished);
    }

    /// The spans that end one delivery, added to `finished` when sampled.
    fn settle_spans(
        &self,
        mut span: RawSpan,
        attempt: u32,
        settled: &Settled,
        now: u64,
        finished: &mut Vec<Finished>,
    ) {
        let mut keep = |span: RawSpan| {
            if span.sampled {
                finished.push(Finished::Raw(span));
            }
        };
        let (operation, outcome) = match settled {
            Settled::Acked => (Operation::Ack, Outcome::Acked),
            Settled::RetryScheduled { .. } => (Operation::Nack, Outcome::RetryScheduled),
            Settled::DeadLettered {
                reason: DeadReason::Rejected,
                ..
            } => (Operation::Reject, Outcome::DeadLettered),
            Settled::DeadLettered { .. } => (Operation::Nack, Outcome::DeadLettered),
        };
        let mut settle = RawSpan::new(
            self.inner.ids.place(Some(&Parent::of(&span))),
            operation,
            span.ids.clone(),
            now,
        );
        settle.attempt = Some(attempt);
        settle.outcome = Some(outcome);
        match settled {
            Settled::Acked => {
                span.status = SpanStatus::Ok;
            }
            Settled::RetryScheduled { due, error } => {
                let mut retry = RawSpan::new(
                    self.inner.ids.place(Some(&Parent::of(&settle))),
                    Operation::Retry,
                    span.ids.clone(),
                    now,
                );
                retry.attempt = Some(attempt);
                retry.extra.push(KeyValue::new(attr::RETRY_DUE_MS, due.0));
                keep(retry);
                span.extra
                    .push(KeyValue::new(attr::ERROR_MESSAGE, error.clone()));
                span.status = SpanStatus::error(error.as_str());
            }
            Settled::DeadLettered { reason, to, error } => {
                keep(self.dead_letter_span(
                    Some(&Parent::of(&settle)),
                    &span.ids,
                    *reason,
                    to.as_deref(),
                    Some(attempt),
                    now,
                ));
                let description = error.clone().unwrap_or_else(|| reason.as_str().to_owned());
                if let Some(error) = error {
                    span.extra
                        .push(KeyValue::new(attr::ERROR_MESSAGE, error.clone()));
                }
                span.status = SpanStatus::error(description);
            }
        }
        keep(settle);
        span.outcome = Some(outcome);
        span.end_at(now);
        keep(span);
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
        if !self.enabled() {
            return;
        }
        let parent = Parent::from_traceparent(envelope.traceparent, envelope.tracestate.as_deref());
        let span = self.dead_letter_span(
            parent.as_ref(),
            ids,
            reason,
            to,
            Some(attempts),
            self.inner.now_ns(),
        );
        self.finish(span);
    }

    fn dead_letter_span(
        &self,
        parent: Option<&Parent>,
        ids: &MessageIds,
        reason: DeadReason,
        to: Option<&str>,
        attempts: Option<u32>,
        at: u64,
    ) -> RawSpan {
        let operation = match reason {
            DeadReason::Expired => Operation::Expire,
            _ => Operation::DeadLetter,
        };
        let mut span = RawSpan::new(self.inner.ids.place(parent), operation, ids.clone(), at);
        span.attempt = attempts;
        span.extra
            .push(KeyValue::new(attr::DEAD_LETTER_REASON, reason.as_str()));
        span.extra.push(KeyValue::new(
            attr::DEAD_LETTER_QUEUE,
            to.unwrap_or(&ids.queue).to_owned(),
        ));
        span.extra.push(KeyValue::new(attr::PARKED, to.is_none()));
        span.status = SpanStatus::error(format!("dead-lettered: {}", reason.as_str()));
        span
    }

    /// An operator action on one dead letter (retry to its queue, move,
    /// purge): a span in the message's trace, so the flow shows it.
    pub(crate) fn operator_action(
        &self,
        ids: &MessageIds,
        envelope: &Envelope,
        action: OperatorAction,
        to: Option<&str>,
        parked: bool,
    ) {
        if !self.enabled() {
            return;
        }
        let parent = Parent::from_traceparent(envelope.traceparent, envelope.tracestate.as_deref());
        let mut span = RawSpan::new(
            self.inner.ids.place(parent.as_ref()),
            action.operation(),
            ids.clone(),
            self.inner.now_ns(),
        );
        span.extra.push(KeyValue::new(attr::OPERATOR, true));
        span.extra.push(KeyValue::new(attr::PARKED, parked));
        if let Some(to) = to {
            span.extra
                .push(KeyValue::new(attr::REDRIVE_TO, to.to_owned()));
        }
        span.status = SpanStatus::Ok;
        self.finish(span);
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
        let end = self.inner.now_ns();
        let n_expired = expired.len();
        for entry in expired {
            let mut span = entry.span;
            span.outcome = Some(Outcome::LeaseExpired);
            span.status = SpanStatus::error("lease expired before the delivery was settled");
            span.end_at(end);
            self.finish(span);
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
/// A delivery's trace id as hex, written only when a subscriber records it
/// (a handler span is made for every push delivery, most of them with no
/// subscriber listening).
struct TraceIdText(Option<TraceParent>);

impl std::fmt::Display for TraceIdText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(tp) => tp.trace_id().iter().try_for_each(|b| write!(f, "{b:02x}")),
            None => Ok(()),
        }
    }
}

pub(crate) fn handler_span(delivery: &crate::queue::Delivery) -> tracing::Span {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let trace_id = TraceIdText(delivery.traceparent);
    let span = tracing::info_span!(
        "handle",
        queue = %delivery.lease.queue(),
        message_id = %delivery.message.id,
        correlation_id = %delivery.message.envelope.correlation_id,
        attempt = delivery.attempt,
        trace_id = %trace_id,
    );
    if !span.is_disabled()
        && let Some(parent) = Parent::from_traceparent(delivery.traceparent, None)
    {
        let cx = Context::new().with_remote_span_context(span::span_context(
            parent.trace_id,
            parent.span_id,
            parent.sampled,
            true,
            None,
        ));
        // Fails only when no OpenTelemetry layer is installed: nothing to join.
        let _ = span.set_parent(cx);
    }
    span
}

/// The SDK's id generator for application spans: the same time-ordered
/// trace ids as the engine's own spans ([`span::Ids::new_trace_id`]).
#[derive(Debug)]
struct TimeOrderedIds(span::Ids);

impl Default for TimeOrderedIds {
    fn default() -> Self {
        TimeOrderedIds(span::Ids::new(1.0))
    }
}

impl opentelemetry_sdk::trace::IdGenerator for TimeOrderedIds {
    fn new_trace_id(&self) -> opentelemetry::trace::TraceId {
        self.0.new_trace_id()
    }

    fn new_span_id(&self) -> opentelemetry::trace::SpanId {
        self.0.new_span_id()
    }
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

    /// Flushes and stops the exporter (the engine is shutting down).
    fn shutdown_exporter(&mut self) -> opentelemetry_sdk::error::OTelSdkResult;

    /// The resource (service name) the spans come from.
    fn set_exporter_resource(&mut self, resource: &Resource);
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

    fn shutdown_exporter(&mut self) -> opentelemetry_sdk::error::OTelSdkResult {
        SpanExporter::shutdown(self)
    }

    fn set_exporter_resource(&mut self, resource: &Resource) {
        SpanExporter::set_resource(self, resource);
    }
}
