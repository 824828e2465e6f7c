//! Where finished spans go: a bounded buffer that the hot path appends to,
//! drained by one exporter thread that writes each batch to the engine's
//! span store and hands it to every OTLP (or test) exporter.
//!
//! A span costs its producer a lock and a push; the thread is woken only
//! when a batch is full, on its flush interval, or by a flush. When the
//! buffer is full (the exporters cannot keep up), new spans are dropped
//! and counted, never queued without bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use super::record;
use super::span::RawSpan;
use super::{DynSpanExporter, SCOPE};
use crate::storage::span_batch::{SpanBatchBuilder, SpanView};
use crate::storage::{SpanBatch, SpanRecord, SpanStore, Store};

/// A finished span: the engine's own, or one of the application's from the
/// SDK (handler code's `tracing` spans, bridged by tracing-opentelemetry).
#[derive(Debug)]
// Nearly every span is the engine's own: boxing those would cost an
// allocation each.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Finished {
    Raw(RawSpan),
    /// Boxed: an SDK span is twice the size of the engine's own, and every
    /// slot of the buffer is as large as its largest variant.
    Sdk(Box<SpanData>),
}

/// Sizes and pace of the pipeline.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) queue_max: usize,
    pub(crate) batch_max: usize,
    pub(crate) flush_interval: Duration,
}

/// The span buffer and its exporter thread. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Pipeline {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the exporter thread.
    work: Condvar,
    /// Wakes callers of `flush`.
    flushed: Condvar,
    limits: Limits,
    n_stored: AtomicU64,
    n_dropped: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct State {
    spans: Vec<Finished>,
    /// Flush requests made, and the newest one whose spans are exported.
    n_flush_asked: u64,
    n_flush_done: u64,
    stopping: bool,
    stopped: bool,
}

/// What the exporter thread writes to.
struct Sinks {
    store: Option<Store>,
    exporters: Vec<Exporter>,
    scope: InstrumentationScope,
}

/// A span exporter and whether the engine shuts it down with itself (the
/// OTLP exporter it built) or leaves that to whoever passed it in.
pub(crate) struct Exporter {
    pub(crate) exporter: Box<dyn DynSpanExporter>,
    pub(crate) owned: bool,
}

impl Pipeline {
    /// Starts the exporter thread.
    pub(crate) fn start(
        limits: Limits,
        store: Option<Store>,
        exporters: Vec<Exporter>,
    ) -> Pipeline {
        let limits = Limits {
            batch_max: limits.batch_max.max(1),
            queue_max: limits.queue_max.max(1),
            ..limits
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                spans: Vec::with_capacity(limits.batch_max),
                ..State::default()
            }),
            work: Condvar::new(),
            flushed: Condvar::new(),
            limits,
            n_stored: AtomicU64::new(0),
            n_dropped: AtomicU64::new(0),
            thread: Mutex::new(None),
        });
        let sinks = Sinks {
            store,
            exporters,
            scope: InstrumentationScope::builder(SCOPE).build(),
        };
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("switchyard-spans".to_owned())
                .spawn(move || {
                    // However the thread ends (a panicking exporter
                    // included), nobody waits for it any more.
                    let _stopped = StoppedOnExit(&shared);
                    shared.run(sinks);
                })
                .expect("spawn the span exporter thread")
        };
        *shared.thread.lock().expect("span thread lock") = Some(thread);
        Pipeline { shared }
    }

    /// Queues a finished span; drops it (counted) when the buffer is full.
    pub(crate) fn push(&self, span: Finished) {
        let shared = &self.shared;
        let mut state = shared.state.lock().expect("span buffer lock");
        if state.stopped || state.spans.len() >= shared.limits.queue_max {
            drop(state);
            shared.n_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        state.spans.push(span);
        if state.spans.len() == shared.limits.batch_max {
            shared.work.notify_one();
        }
    }

    /// Queues finished spans under one lock (and in one copy when they
    /// fit); drops (and counts) those that do not. Leaves `spans` empty.
    pub(crate) fn push_all(&self, spans: &mut Vec<Finished>) {
        let shared = &self.shared;
        let mut state = shared.state.lock().expect("span buffer lock");
        let room = if state.stopped {
            0
        } else {
            shared.limits.queue_max.saturating_sub(state.spans.len())
        };
        let n_dropped = spans.len().saturating_sub(room);
        spans.truncate(room);
        let was_short = state.spans.len() < shared.limits.batch_max;
        state.spans.append(spans);
        if was_short && state.spans.len() >= shared.limits.batch_max {
            shared.work.notify_one();
        }
        drop(state);
        if n_dropped > 0 {
            shared
                .n_dropped
                .fetch_add(n_dropped as u64, Ordering::Relaxed);
        }
    }

    /// Returns once every span queued before the call has been exported (or
    /// after 30 s when an exporter hangs).
    pub(crate) fn flush(&self) {
        let shared = &self.shared;
        let mut state = shared.state.lock().expect("span buffer lock");
        if state.stopped {
            return;
        }
        state.n_flush_asked += 1;
        let mine = state.n_flush_asked;
        shared.work.notify_one();
        let deadline = Instant::now() + Duration::from_secs(30);
        while state.n_flush_done < mine && !state.stopped {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!("span flush timed out after 30 s");
                return;
            }
            state = shared
                .flushed
                .wait_timeout(state, left)
                .expect("span buffer lock")
                .0;
        }
    }

    /// Exports what is queued, stops the thread and shuts the exporters
    /// down. Spans pushed afterwards are dropped.
    pub(crate) fn shutdown(&self) {
        {
            let mut state = self.shared.state.lock().expect("span buffer lock");
            state.stopping = true;
            self.shared.work.notify_one();
        }
        let thread = self.shared.thread.lock().expect("span thread lock").take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::warn!("the span exporter thread panicked");
        }
    }

    /// Spans written to the engine's store.
    pub(crate) fn n_stored(&self) -> u64 {
        self.shared.n_stored.load(Ordering::Relaxed)
    }

    /// Spans dropped because the buffer was full.
    pub(crate) fn n_dropped(&self) -> u64 {
        self.shared.n_dropped.load(Ordering::Relaxed)
    }

    /// A span processor for the SDK tracer that application spans use:
    /// finished spans join the engine's own in this pipeline.
    pub(crate) fn processor(&self) -> ForwardToPipeline {
        ForwardToPipeline(self.clone())
    }
}

impl Shared {
    fn run(&self, mut sinks: Sinks) {
        // Two buffers take turns: producers fill one while this thread
        // exports the other, and each keeps its capacity, so a push never
        // reallocates (nor touches fresh pages) in the steady state.
        let mut taken: Vec<Finished> = Vec::with_capacity(self.limits.batch_max);
        loop {
            let (flush_upto, stop) = {
                let mut state = self.state.lock().expect("span buffer lock");
                // `None`: an interval too long to add means "only when full
                // or asked".
                let deadline = Instant::now().checked_add(self.limits.flush_interval);
                while state.spans.len() < self.limits.batch_max
                    && state.n_flush_asked == state.n_flush_done
                    && !state.stopping
                {
                    state = match deadline {
                        Some(deadline) => {
                            let left = deadline.saturating_duration_since(Instant::now());
                            if left.is_zero() {
                                break;
                            }
                            self.work
                                .wait_timeout(state, left)
                                .expect("span buffer lock")
                                .0
                        }
                        None => self.work.wait(state).expect("span buffer lock"),
                    };
                }
                std::mem::swap(&mut state.spans, &mut taken);
                (state.n_flush_asked, state.stopping)
            };
            while !taken.is_empty() {
                let n = taken.len().min(self.limits.batch_max);
                // Spans are moved out only as an exporter takes them.
                self.export(&mut sinks, taken.drain(..n));
            }
            // After a burst, give the extra room back.
            taken.shrink_to(self.limits.batch_max * 2);
            let mut state = self.state.lock().expect("span buffer lock");
            state.n_flush_done = flush_upto;
            if stop && state.spans.is_empty() {
                drop(state);
                for exporter in sinks.exporters.iter_mut().filter(|e| e.owned) {
                    if let Err(e) = exporter.exporter.shutdown_exporter() {
                        tracing::warn!(cause = %e, "could not shut down a span exporter");
                    }
                }
                return;
            }
            self.flushed.notify_all();
        }
    }

    fn export(&self, sinks: &mut Sinks, spans: std::vec::Drain<'_, Finished>) {
        if let Some(store) = &sinks.store
            && let Some(batch) = encode(spans.as_slice())
        {
            match store.record_spans(&batch) {
                Ok(()) => {
                    self.n_stored.fetch_add(batch.n_spans(), Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(cause = %format!("{e:#}"), "could not store spans"),
            }
        }
        if sinks.exporters.is_empty() {
            return;
        }
        let data: Vec<SpanData> = spans
            .map(|span| match span {
                Finished::Raw(raw) => raw.to_span_data(&sinks.scope),
                Finished::Sdk(data) => *data,
            })
            .collect();
        let n_exporters = sinks.exporters.len();
        let mut data = Some(data);
        for (i, exporter) in sinks.exporters.iter().enumerate() {
            let batch = if i + 1 == n_exporters {
                data.take().expect("the last exporter takes the batch")
            } else {
                data.clone().expect("batch still here")
            };
            if let Err(e) = futures_executor::block_on(exporter.exporter.export_batch(batch)) {
                tracing::warn!(cause = %e, "could not export spans");
            }
        }
    }
}

/// The batch the store keeps: the engine's spans encoded straight from
/// their fields, application spans through their stored form. `None` when
/// no span belongs to a flow.
fn encode(spans: &[Finished]) -> Option<SpanBatch> {
    let records: Vec<SpanRecord> = spans
        .iter()
        .filter_map(|span| match span {
            Finished::Raw(_) => None,
            Finished::Sdk(data) => Some(record::to_record((**data).clone())),
        })
        .collect();
    let mut records = records.iter();
    let mut builder = SpanBatchBuilder::with_capacity(spans.len());
    for span in spans {
        builder.push(match span {
            Finished::Raw(raw) => record::raw_view(raw),
            Finished::Sdk(_) => {
                SpanView::of_record(records.next().expect("one record per SDK span"))
            }
        });
    }
    builder.finish()
}

/// Marks the pipeline stopped and wakes every waiter when the exporter
/// thread ends, normally or by a panic.
struct StoppedOnExit<'a>(&'a Shared);

impl Drop for StoppedOnExit<'_> {
    fn drop(&mut self) {
        let mut state = match self.0.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.stopped = true;
        state.spans.clear();
        self.0.flushed.notify_all();
    }
}

/// The SDK span processor that hands application spans to the pipeline.
#[derive(Debug)]
pub(crate) struct ForwardToPipeline(Pipeline);

impl SpanProcessor for ForwardToPipeline {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.0.push(Finished::Sdk(Box::new(span)));
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        // `on_end` already handed every finished span to the pipeline;
        // `Telemetry::flush` flushes the pipeline itself.
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        // The engine shuts the pipeline down itself, after its own spans.
        Ok(())
    }
}
