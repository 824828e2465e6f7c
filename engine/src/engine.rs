//! The [`Engine`] handle: opens storage, wires the subsystems together, runs
//! background maintenance, and shuts everything down. Wiring only: the
//! behaviour lives in the subsystem modules.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::{Config, Durability};
use crate::error::Error;
use crate::feed::{Feed, FeedEvent};
use crate::queue::Queues;
use crate::storage::sqlite::{SqliteOptions, SqliteStore};
use crate::storage::{MaintenanceReport, QueueStore, SpanStore, Store};
use crate::telemetry::{DynSpanExporter, Flows, Telemetry};

/// Name of the database file inside the data directory.
pub const DATABASE_FILE: &str = "switchyard.db";

/// A running engine. Cheap to clone; every clone is the same engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    clock: Clock,
    feed: Feed,
    durable: Store,
    transient: Store,
    queues: Queues,
    telemetry: Telemetry,
    flows: Flows,
    /// Tells the maintenance task to stop.
    stop: watch::Sender<bool>,
    maintenance: Mutex<Option<JoinHandle<()>>>,
}

/// How to open an engine beyond its [`Config`]: things that are not
/// settings.
#[derive(Debug, Default)]
pub struct OpenOptions {
    /// The clock; the system clock by default (tests inject a manual one).
    pub clock: Clock,
    /// Extra span exporters beside the engine's store and OTLP (tests pass
    /// `opentelemetry_sdk`'s in-memory exporter).
    pub span_exporters: Vec<Box<dyn DynSpanExporter>>,
}

impl Engine {
    /// Opens the engine on the system clock.
    pub async fn open(config: Config) -> Result<Engine, Error> {
        Engine::open_with(config, OpenOptions::default()).await
    }

    /// Opens the engine with an injected clock (tests use a manual one).
    pub async fn open_with_clock(config: Config, clock: Clock) -> Result<Engine, Error> {
        let options = OpenOptions {
            clock,
            ..OpenOptions::default()
        };
        Engine::open_with(config, options).await
    }

    /// Opens the engine with [`OpenOptions`].
    pub async fn open_with(config: Config, options: OpenOptions) -> Result<Engine, Error> {
        let clock = options.clock;
        let durable = open_durable(&config)?;
        let transient = open_store(
            SqliteOptions {
                path: None,
                fsync_on_commit: false,
                ..sqlite_options(&config)
            },
            None,
        )?;
        let span_store = config.telemetry.keep_spans.then(|| durable.clone());
        let telemetry = Telemetry::start(
            &config.telemetry,
            clock.clone(),
            span_store.clone(),
            options.span_exporters,
        )
        .map_err(Error::Telemetry)?;
        let flows = Flows::new(span_store);
        let feed = Feed::new(
            config.queue.feed_capacity_events,
            telemetry.metrics().clone(),
        );
        let queues = Queues::open(
            durable.clone(),
            transient.clone(),
            clock.clone(),
            feed.clone(),
            telemetry.clone(),
            config.queue.clone(),
        )
        .await
        .map_err(Error::Queues)?;
        let (stop, stop_rx) = watch::channel(false);
        let engine = Engine {
            inner: Arc::new(Inner {
                config,
                clock,
                feed,
                durable,
                transient,
                queues,
                telemetry,
                flows,
                stop,
                maintenance: Mutex::new(None),
            }),
        };
        let task = tokio::spawn(run_maintenance(engine.clone_weak(), stop_rx));
        *engine.inner.maintenance.lock().expect("maintenance lock") = Some(task);
        Ok(engine)
    }

    /// The queues.
    pub fn queues(&self) -> &Queues {
        &self.inner.queues
    }

    /// Flow queries over the engine's own spans.
    pub fn flows(&self) -> &Flows {
        &self.inner.flows
    }

    /// The engine's tracing and metrics.
    pub fn telemetry(&self) -> &Telemetry {
        &self.inner.telemetry
    }

    /// Every metric in Prometheus' text exposition format.
    pub async fn metrics_text(&self) -> String {
        let mut stats = Vec::new();
        for info in self.inner.queues.list() {
            if let Ok(s) = self.inner.queues.stats(&info.spec.name).await {
                stats.push(s);
            }
        }
        self.inner.telemetry.metrics().render(&stats)
    }

    /// The engine's clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The configuration the engine was opened with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Listens to every message state change from now on.
    pub fn feed(&self) -> broadcast::Receiver<FeedEvent> {
        self.inner.feed.subscribe()
    }

    /// Transactions and operations committed by the durable store so far:
    /// `n_jobs / n_transactions` is how many operations share one commit.
    pub fn storage_stats(&self) -> crate::storage::sqlite::WriterStats {
        self.inner.durable.writer_stats()
    }

    /// One maintenance pass: dead-letters expired messages, forgets old
    /// idempotency keys, checkpoints the log and returns free pages to the
    /// file system. Runs every `maintenance_interval_ms` by itself.
    pub async fn maintain(&self) -> Result<MaintenanceReport, Error> {
        self.inner
            .queues
            .expire_due()
            .await
            .map_err(Error::Queues)?;
        let now = self.inner.clock.now();
        self.inner.telemetry.expire_leases(now);
        let telemetry = &self.inner.config.telemetry;
        if telemetry.keep_spans {
            let retention = Duration::from_millis(telemetry.span_retention_ms);
            let before_us = (now.0 - retention.as_millis() as i64).saturating_mul(1000);
            self.inner
                .durable
                .prune_spans(before_us, telemetry.spans_max)
                .await
                .map_err(Error::Maintenance)?;
        }
        self.inner
            .transient
            .maintain(now)
            .await
            .map_err(Error::Maintenance)?;
        self.inner
            .durable
            .maintain(now)
            .await
            .map_err(Error::Maintenance)
    }

    /// Stops background work and closes storage after the writes already
    /// submitted have committed.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        let task = self
            .inner
            .maintenance
            .lock()
            .expect("maintenance lock")
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
        // Spans first: the store exporter writes through the durable store.
        let telemetry = self.inner.telemetry.clone();
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
        self.inner.durable.close().await;
        self.inner.transient.close().await;
    }

    fn clone_weak(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.inner)
    }
}

fn sqlite_options(config: &Config) -> SqliteOptions {
    let storage = &config.storage;
    SqliteOptions {
        path: None,
        fsync_on_commit: storage.durability == Durability::Fsync,
        writer_batch_jobs_max: storage.writer_batch_jobs_max,
        writer_queue_jobs_max: storage.writer_queue_jobs_max,
        readers_max: storage.readers_max,
        wal_bytes_max: storage.wal_bytes_max,
        keep_spans: false,
    }
}

fn open_durable(config: &Config) -> Result<Store, Error> {
    let Some(dir) = &config.storage.data_dir else {
        let options = SqliteOptions {
            keep_spans: config.telemetry.keep_spans,
            ..sqlite_options(config)
        };
        return open_store(options, None);
    };
    std::fs::create_dir_all(dir).map_err(|source| Error::DataDir {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join(DATABASE_FILE);
    open_store(
        SqliteOptions {
            path: Some(path.clone()),
            keep_spans: config.telemetry.keep_spans,
            ..sqlite_options(config)
        },
        Some(path),
    )
}

fn open_store(options: SqliteOptions, path: Option<PathBuf>) -> Result<Store, Error> {
    SqliteStore::open(options)
        .map(Store::Sqlite)
        .map_err(|source| Error::Storage {
            path: path.unwrap_or_else(|| PathBuf::from(":memory:")),
            source,
        })
}

/// Runs maintenance passes until told to stop or the engine is dropped.
/// Holds only a weak reference so a forgotten engine still shuts down.
async fn run_maintenance(engine: std::sync::Weak<Inner>, mut stop: watch::Receiver<bool>) {
    loop {
        let Some(inner) = engine.upgrade() else {
            return;
        };
        let clock = inner.clock.clone();
        let deadline = clock.now().plus(Duration::from_millis(
            inner.config.queue.maintenance_interval_ms,
        ));
        drop(inner);
        tokio::select! {
            _ = clock.sleep_until(deadline) => {},
            _ = stop.changed() => return,
        }
        let Some(inner) = engine.upgrade() else {
            return;
        };
        let engine = Engine { inner };
        if let Err(e) = engine.maintain().await {
            tracing::error!(cause = %e, "maintenance pass failed");
        }
    }
}
