//! Peer queues that Switchyard is compared against: RabbitMQ, NATS JetStream and PostgreSQL.
//!
//! Every peer is driven the same way and reports a [`Measurement`]:
//! - **throughput**: one producer and one consumer run concurrently; the producer sends
//!   `n_messages` durable messages with a bounded window of unconfirmed sends, the consumer
//!   acknowledges (or deletes) each one; throughput is `n_messages` divided by the time from the
//!   first send to the last acknowledgement the consumer sent;
//! - **round trip**: `n_rtt` messages one at a time, each timed from just before it is sent until
//!   the broker has confirmed it *and* the consumer holds it.
//!
//! Each peer works on a freshly created queue, stream or table with a unique name and removes it
//! afterwards, whether the measurement succeeded or not.

pub mod nats;
pub mod postgres;
pub mod rabbitmq;

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use tokio::task::JoinHandle;

/// How long a consumer waits for the next message before the run is declared stuck.
pub const RECEIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// One row of the comparison table.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub name: String,
    pub durability: String,
    pub throughput_msgs_per_s: f64,
    pub rtt_p50_us: f64,
    pub rtt_p99_us: f64,
    pub n_messages: usize,
}

impl Measurement {
    /// Builds a measurement from the throughput phase's duration and the round-trip samples.
    pub fn new(
        name: &str,
        durability: &str,
        n_messages: usize,
        throughput_elapsed: Duration,
        mut rtt_us: Vec<f64>,
    ) -> Self {
        rtt_us.sort_by(f64::total_cmp);
        let secs = throughput_elapsed.as_secs_f64();
        Self {
            name: name.to_owned(),
            durability: durability.to_owned(),
            throughput_msgs_per_s: if secs > 0.0 {
                n_messages as f64 / secs
            } else {
                f64::NAN
            },
            rtt_p50_us: percentile(&rtt_us, 50.0),
            rtt_p99_us: percentile(&rtt_us, 99.0),
            n_messages,
        }
    }
}

/// Nearest-rank percentile of an ascending slice; `p` is in percent (0–100).
/// Returns NaN for an empty slice.
pub fn percentile(sorted_us: &[f64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = (p.clamp(0.0, 100.0) / 100.0 * sorted_us.len() as f64).ceil() as usize;
    sorted_us[rank.saturating_sub(1).min(sorted_us.len() - 1)]
}

/// Microseconds elapsed since `start`, as a latency sample.
pub fn micros_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e6
}

/// A name no other run uses: `prefix_<pid>_<nanoseconds since the epoch>`.
/// Only `[a-z0-9_]`, so it is valid as a queue, stream, subject, table and channel name.
pub fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// Awaits a spawned task, turning a panic into an error.
pub async fn joined<T>(task: JoinHandle<Result<T>>) -> Result<T> {
    task.await.context("benchmark task panicked")?
}

/// Pairs the producer side's outcome with the consumer task's. If the producer side failed, a
/// consumer that has already failed explains it best; a consumer still running is aborted instead
/// of being left waiting for messages that will never come.
pub async fn finish<P, C>(produced: Result<P>, consuming: JoinHandle<Result<C>>) -> Result<(P, C)> {
    let error = match produced {
        Ok(produced) => return Ok((produced, joined(consuming).await?)),
        Err(error) => error,
    };
    if consuming.is_finished() {
        joined(consuming).await?;
    } else {
        consuming.abort();
    }
    Err(error)
}

/// Context attached to connection errors, so the caller can tell "this peer is not running here"
/// (skip it) from "the peer failed during the benchmark" (report it).
#[derive(Debug, Clone, Copy)]
pub struct Unreachable;

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("peer unreachable")
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
