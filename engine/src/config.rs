//! Engine configuration: one section per subsystem, every bound with its unit
//! in the name, and the defaults documented here.
//!
//! The library never reads files, environment or arguments; the CLI builds a
//! [`Config`] and hands it to [`crate::Engine::open`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything the engine is opened with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Where and how data is kept.
    pub storage: StorageConfig,
    /// Queue limits and defaults.
    pub queue: QueueConfig,
}

/// Commit durability of the durable store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// A send, ack or nack returns only after its commit is fsynced
    /// (SQLite `synchronous=FULL`). Survives power loss.
    #[default]
    Fsync,
    /// Commits return once written to the write-ahead log and are fsynced at
    /// checkpoints (SQLite `synchronous=NORMAL`). Survives a process crash
    /// (`kill -9`); a power loss or kernel crash can lose the last commits.
    Relaxed,
}

/// Where and how data is kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// Directory of the database file (`switchyard.db`); `None` keeps
    /// everything in memory, durable queues included (tests, demos).
    pub data_dir: Option<PathBuf>,
    /// Commit durability. Default: fsync.
    pub durability: Durability,
    /// Most operations folded into one transaction. Default 4096.
    pub writer_batch_jobs_max: usize,
    /// Most operations waiting for the writer before callers wait.
    /// Default 65536.
    pub writer_queue_jobs_max: usize,
    /// Most concurrent reader connections. Default 4.
    pub readers_max: usize,
    /// Size the write-ahead log is truncated back to. Default 64 MiB.
    pub wal_bytes_max: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: None,
            durability: Durability::Fsync,
            writer_batch_jobs_max: 4096,
            writer_queue_jobs_max: 65_536,
            readers_max: 4,
            wal_bytes_max: 64 * 1024 * 1024,
        }
    }
}

/// Queue limits and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueConfig {
    /// Largest payload accepted. Default 1 MiB.
    pub payload_bytes_max: u64,
    /// Most messages in one batch send. Default 1000.
    pub batch_messages_max: usize,
    /// Most messages one receive may lease. Default 1000.
    pub receive_messages_max: u32,
    /// Lease length when the consumer gives none. Default 30 s.
    pub lease_ms_default: u64,
    /// Longest lease a consumer may ask for. Default 12 h.
    pub lease_ms_max: u64,
    /// Push consumers' default prefetch (deliveries in flight). Default 100.
    pub prefetch_default: u32,
    /// Events a slow feed listener may fall behind before it skips.
    /// Default 65536.
    pub feed_capacity_events: usize,
    /// How often TTLs are enforced and storage is maintained. Default 1 s.
    pub maintenance_interval_ms: u64,
    /// Most expired messages dead-lettered per queue per pass. Default 1000.
    pub expire_batch_max: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            payload_bytes_max: 1024 * 1024,
            batch_messages_max: 1000,
            receive_messages_max: 1000,
            lease_ms_default: 30_000,
            lease_ms_max: 12 * 60 * 60 * 1000,
            prefetch_default: 100,
            feed_capacity_events: 65_536,
            maintenance_interval_ms: 1000,
            expire_batch_max: 1000,
        }
    }
}
