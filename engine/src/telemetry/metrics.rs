//! Metrics operators expect, in Prometheus' text format: per-queue depth
//! gauges (read from storage at scrape time), counters of every message state
//! change (counted as the feed publishes them, so nothing is missed when a
//! feed listener lags), and latency histograms.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rustc_hash::FxHashMap;

use crate::feed::FeedKind;
use crate::queue::QueueStats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeadLabels {
    queue: String,
    reason: String,
}

type HistogramFamily = Family<QueueLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs to about 54 min.
    Histogram::new(exponential_buckets(0.0001, 2.0, 25))
}

/// Counters of one queue, looked up once and kept (a lookup per message
/// would hash and allocate a label set each time).
#[derive(Clone)]
struct QueueCounters {
    sent: Counter,
    delivered: Counter,
    acked: Counter,
    nacked: Counter,
    redriven: Counter,
    purged: Counter,
    handler_seconds: Histogram,
    /// All reasons together, for [`Metrics::totals`] (not exported: the
    /// exported family is split by reason).
    dead_lettered: Counter,
}

/// The engine's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

struct Inner {
    registry: Registry,
    sent: Family<QueueLabel, Counter>,
    delivered: Family<QueueLabel, Counter>,
    acked: Family<QueueLabel, Counter>,
    nacked: Family<QueueLabel, Counter>,
    dead_lettered: Family<DeadLabels, Counter>,
    redriven: Family<QueueLabel, Counter>,
    purged: Family<QueueLabel, Counter>,
    handler_seconds: HistogramFamily,
    ready: Family<QueueLabel, Gauge>,
    in_flight: Family<QueueLabel, Gauge>,
    scheduled: Family<QueueLabel, Gauge>,
    dead_lettered_now: Family<QueueLabel, Gauge>,
    oldest_age_seconds: Family<QueueLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    consumers: Family<QueueLabel, Gauge>,
    by_queue: RwLock<FxHashMap<Arc<str>, Arc<QueueCounters>>>,
}

/// Totals across queues, for rates in the console.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Messages stored.
    pub sent: u64,
    /// Deliveries handed out.
    pub delivered: u64,
    /// Deliveries acked.
    pub acked: u64,
    /// Deliveries failed and scheduled for a retry.
    pub nacked: u64,
    /// Messages dead-lettered (any reason).
    pub dead_lettered: u64,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::default();
        let sent = Family::default();
        let delivered = Family::default();
        let acked = Family::default();
        let nacked = Family::default();
        let dead_lettered = Family::default();
        let redriven = Family::default();
        let purged = Family::default();
        let handler_seconds: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let ready = Family::default();
        let in_flight = Family::default();
        let scheduled = Family::default();
        let dead_lettered_now = Family::default();
        let oldest_age_seconds = Family::default();
        let consumers = Family::default();
        let r = &mut registry;
        r.register(
            "switchyard_messages_sent",
            "Messages stored in a queue",
            sent.clone(),
        );
        r.register(
            "switchyard_messages_delivered",
            "Deliveries handed to consumers",
            delivered.clone(),
        );
        r.register(
            "switchyard_messages_acked",
            "Deliveries acknowledged",
            acked.clone(),
        );
        r.register(
            "switchyard_messages_nacked",
            "Deliveries failed and scheduled for a retry",
            nacked.clone(),
        );
        r.register(
            "switchyard_messages_dead_lettered",
            "Messages dead-lettered, by reason",
            dead_lettered.clone(),
        );
        r.register(
            "switchyard_messages_redriven",
            "Dead letters put back by an operator",
            redriven.clone(),
        );
        r.register(
            "switchyard_messages_purged",
            "Dead letters deleted by an operator",
            purged.clone(),
        );
        r.register(
            "switchyard_handler_duration_seconds",
            "Push-consumer handler run time",
            handler_seconds.clone(),
        );
        r.register(
            "switchyard_queue_ready",
            "Messages deliverable now",
            ready.clone(),
        );
        r.register(
            "switchyard_queue_in_flight",
            "Messages leased to consumers",
            in_flight.clone(),
        );
        r.register(
            "switchyard_queue_scheduled",
            "Messages waiting for a retry or a delayed delivery",
            scheduled.clone(),
        );
        r.register(
            "switchyard_queue_dead_lettered",
            "Dead letters from the queue still kept",
            dead_lettered_now.clone(),
        );
        r.register(
            "switchyard_queue_oldest_message_age_seconds",
            "Age of the oldest message not yet acked",
            oldest_age_seconds.clone(),
        );
        r.register(
            "switchyard_queue_consumers",
            "Push consumers attached",
            consumers.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                sent,
                delivered,
                acked,
                nacked,
                dead_lettered,
                redriven,
                purged,
                handler_seconds,
                ready,
                in_flight,
                scheduled,
                dead_lettered_now,
                oldest_age_seconds,
                consumers,
                by_queue: RwLock::new(FxHashMap::default()),
            }),
        }
    }

    /// Runs `f` on a queue's metrics under the read lock (no reference
    /// count to bump: three of these a message, from every thread), making
    /// them on first use.
    fn with_counters<R>(&self, queue: &Arc<str>, f: impl FnOnce(&QueueCounters) -> R) -> R {
        if let Some(c) = self.inner.by_queue.read().expect("metrics lock").get(queue) {
            return f(c);
        }
        let label = QueueLabel {
            queue: queue.to_string(),
        };
        let counters = Arc::new(QueueCounters {
            sent: self.inner.sent.get_or_create(&label).clone(),
            delivered: self.inner.delivered.get_or_create(&label).clone(),
            acked: self.inner.acked.get_or_create(&label).clone(),
            nacked: self.inner.nacked.get_or_create(&label).clone(),
            redriven: self.inner.redriven.get_or_create(&label).clone(),
            purged: self.inner.purged.get_or_create(&label).clone(),
            handler_seconds: self.inner.handler_seconds.get_or_create(&label).clone(),
            dead_lettered: Counter::default(),
        });
        self.inner
            .by_queue
            .write()
            .expect("metrics lock")
            .insert(queue.clone(), counters.clone());
        f(&counters)
    }

    /// Counts one state change (delivery is counted by the span code, which
    /// sees every hand-out).
    pub(crate) fn count(&self, queue: &Arc<str>, kind: &FeedKind) {
        self.with_counters(queue, |counters| match kind {
            FeedKind::Sent => counters.sent.inc(),
            FeedKind::Delivered { .. } => 0,
            FeedKind::Acked => counters.acked.inc(),
            FeedKind::RetryScheduled { .. } => counters.nacked.inc(),
            FeedKind::DeadLettered { reason, .. } => {
                counters.dead_lettered.inc();
                self.inner
                    .dead_lettered
                    .get_or_create(&DeadLabels {
                        queue: queue.to_string(),
                        reason: reason.as_str().to_owned(),
                    })
                    .inc()
            }
            FeedKind::Redriven { .. } => counters.redriven.inc(),
            FeedKind::Purged => counters.purged.inc(),
        });
    }

    pub(crate) fn delivered(&self, queue: &Arc<str>) {
        self.with_counters(queue, |c| c.delivered.inc());
    }

    /// Records how long a push handler ran.
    pub(crate) fn handler_ran(&self, queue: &Arc<str>, elapsed: Duration) {
        self.with_counters(queue, |c| c.handler_seconds.observe(elapsed.as_secs_f64()));
    }

    /// Sums of the counters over every queue.
    pub fn totals(&self) -> Totals {
        let by_queue = self.inner.by_queue.read().expect("metrics lock");
        let mut totals = Totals::default();
        for c in by_queue.values() {
            totals.sent += c.sent.get();
            totals.delivered += c.delivered.get();
            totals.acked += c.acked.get();
            totals.nacked += c.nacked.get();
            totals.dead_lettered += c.dead_lettered.get();
        }
        totals
    }

    /// The metrics in Prometheus' text exposition format, with the queue
    /// gauges set from `stats`.
    pub fn render(&self, stats: &[QueueStats]) -> String {
        let i = &self.inner;
        for family in [
            &i.ready,
            &i.in_flight,
            &i.scheduled,
            &i.dead_lettered_now,
            &i.consumers,
        ] {
            family.clear();
        }
        i.oldest_age_seconds.clear();
        for s in stats {
            let label = QueueLabel {
                queue: s.queue.clone(),
            };
            i.ready.get_or_create(&label).set(s.ready as i64);
            i.in_flight.get_or_create(&label).set(s.in_flight as i64);
            i.scheduled.get_or_create(&label).set(s.scheduled as i64);
            i.dead_lettered_now
                .get_or_create(&label)
                .set(s.dead_lettered as i64);
            i.consumers.get_or_create(&label).set(s.n_consumers as i64);
            i.oldest_age_seconds
                .get_or_create(&label)
                .set(s.oldest_age_ms.unwrap_or(0) as f64 / 1000.0);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &i.registry)
            .expect("writing to a String cannot fail");
        text
    }
}
