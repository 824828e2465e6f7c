//! Switchyard in-process, measured exactly like the peers: one producer with a
//! window of 1024 unconfirmed sends, one push consumer (prefetch 1000) that
//! acks every message; then one-at-a-time round trips from just before
//! `send` to the handler holding the message.
//!
//! The database lives in a temporary directory under `/var/tmp` (the same
//! disk the peers write to).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use switchyard::{Config, ConsumeOptions, Durability, Engine, Outcome, OutgoingMessage, QueueSpec};
use tokio::sync::mpsc;

use crate::peers::{Measurement, micros_since};

/// Most sends in flight, as for the peers' publisher confirms.
const SEND_WINDOW: usize = 1024;

/// What the engine does with its spans during a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tracing {
    /// No spans are made at all.
    Off,
    /// Every span is recorded in the engine's own store (the default).
    Store,
    /// Recorded in the store and exported over OTLP/HTTP to this base URL.
    StoreAndOtlp(String),
}

/// Measures one durability mode, with the engine's default tracing (every
/// span kept in its store).
pub async fn run(
    durability: Durability,
    n_messages: usize,
    n_rtt: usize,
    payload: &[u8],
) -> Result<Measurement> {
    run_traced(durability, Tracing::Store, n_messages, n_rtt, payload).await
}

/// Measures one durability mode with the given tracing.
pub async fn run_traced(
    durability: Durability,
    tracing: Tracing,
    n_messages: usize,
    n_rtt: usize,
    payload: &[u8],
) -> Result<Measurement> {
    let dir = tempfile::Builder::new()
        .prefix("switchyard-bench")
        .tempdir_in("/var/tmp")
        .context("temp dir")?;
    let mut config = Config::default();
    config.storage.data_dir = Some(dir.path().to_path_buf());
    config.storage.durability = durability;
    match &tracing {
        Tracing::Off => config.telemetry.keep_spans = false,
        Tracing::Store => {}
        Tracing::StoreAndOtlp(url) => config.telemetry.otlp_endpoint = Some(url.clone()),
    }
    let engine = Engine::open(config).await.context("open the engine")?;
    let elapsed = throughput(&engine, n_messages, payload).await?;
    let stats = engine.storage_stats();
    let rtt = round_trips(&engine, n_rtt, payload).await?;
    let telemetry = engine.telemetry().clone();
    engine.shutdown().await;
    // Send, process and ack: three spans per message.
    let n_spans = 3 * (n_messages + n_rtt) as u64;
    let n_kept = telemetry.n_spans_stored();
    let (name, text) = match durability {
        Durability::Fsync => (
            "Switchyard (fsync)",
            "in-process, SQLite WAL, fdatasync of the WAL before a send is confirmed (leases and the push consumer's acks: at commit)",
        ),
        Durability::Relaxed => (
            "Switchyard (relaxed)",
            "in-process, SQLite WAL synchronous=NORMAL: survives kill -9, not power loss",
        ),
    };
    let per_commit = stats.n_jobs as f64 / stats.n_transactions.max(1) as f64;
    let (name, text) = match tracing {
        Tracing::Off => (format!("{name}, tracing off"), format!("{text}; no spans")),
        Tracing::Store => (
            name.to_owned(),
            format!("{text}; {n_kept} of {n_spans} spans stored"),
        ),
        Tracing::StoreAndOtlp(_) => (
            format!("{name} + OTLP"),
            format!("{text}; spans also exported over OTLP/HTTP; {n_kept} of {n_spans} stored"),
        ),
    };
    let text = format!("{text}; {per_commit:.0} operations per commit");
    Ok(Measurement::new(&name, &text, n_messages, elapsed, rtt))
}

async fn throughput(engine: &Engine, n_messages: usize, payload: &[u8]) -> Result<Duration> {
    let queues = engine.queues().clone();
    queues.declare(QueueSpec::new("bench.throughput")).await?;
    let acked = Arc::new(AtomicUsize::new(0));
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let counter = acked.clone();
    let options = ConsumeOptions {
        prefetch: 1000,
        concurrency: 1000,
        ..ConsumeOptions::default()
    };
    let started = Instant::now();
    let consumer = queues
        .consume("bench.throughput", options, move |_delivery| {
            let counter = counter.clone();
            let done_tx = done_tx.clone();
            async move {
                if counter.fetch_add(1, Ordering::Relaxed) + 1 == n_messages {
                    let _ = done_tx.try_send(());
                }
                Outcome::Ack
            }
        })
        .await?;
    // One producer task, like the peers': it keeps at most SEND_WINDOW
    // sends in flight and takes their receipts as they come.
    let payload = payload.to_vec();
    let producer_queues = queues.clone();
    let producer = tokio::spawn(async move {
        let queues = producer_queues;
        let mut sends = FuturesUnordered::new();
        for _ in 0..n_messages {
            if sends.len() == SEND_WINDOW {
                sends.next().await.expect("a send in flight")?;
            }
            let message = OutgoingMessage::bytes("application/octet-stream", payload.clone());
            sends.push(queues.send("bench.throughput", message));
        }
        while let Some(receipt) = sends.next().await {
            receipt?;
        }
        Ok::<_, switchyard::QueueError>(())
    });
    producer.await.context("the producer task")??;
    done_rx.recv().await.context("consumer stopped early")?;
    // Every handler has returned; unsubscribe waits for the last acks to commit.
    consumer.unsubscribe().await?;
    let elapsed = started.elapsed();
    let stats = queues.stats("bench.throughput").await?;
    if stats.ready + stats.in_flight + stats.scheduled != 0 {
        bail!("messages left after the run: {stats:?}");
    }
    Ok(elapsed)
}

async fn round_trips(engine: &Engine, n_rtt: usize, payload: &[u8]) -> Result<Vec<f64>> {
    let queues = engine.queues().clone();
    queues.declare(QueueSpec::new("bench.rtt")).await?;
    let (held_tx, mut held_rx) = mpsc::unbounded_channel::<Instant>();
    let options = ConsumeOptions {
        prefetch: 10,
        concurrency: 10,
        ..ConsumeOptions::default()
    };
    let consumer = queues
        .consume("bench.rtt", options, move |_delivery| {
            let _ = held_tx.send(Instant::now());
            async { Outcome::Ack }
        })
        .await?;
    let mut samples = Vec::with_capacity(n_rtt);
    for _ in 0..n_rtt {
        let start = Instant::now();
        queues
            .send(
                "bench.rtt",
                OutgoingMessage::bytes("application/octet-stream", payload.to_vec()),
            )
            .await?;
        let sent = micros_since(start);
        let held = held_rx.recv().await.context("consumer stopped early")?;
        // The sample ends when both the send returned and the consumer held it.
        samples.push(sent.max(held.duration_since(start).as_secs_f64() * 1e6));
    }
    consumer.unsubscribe().await?;
    Ok(samples)
}
