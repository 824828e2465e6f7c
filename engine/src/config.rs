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
    /// Spans, their store and their export.
    pub telemetry: TelemetryConfig,
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

/// Spans: the engine's own store of them, and export over OTLP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetryConfig {
    /// Record every span in the engine's own store, for flow queries and the
    /// console. Default true.
    pub keep_spans: bool,
    /// Spans older than this are pruned. Default 7 days.
    pub span_retention_ms: u64,
    /// Most spans kept; the oldest go first. Default 2,000,000.
    pub spans_max: u64,
    /// OTLP/HTTP (protobuf) base endpoint, e.g. `http://127.0.0.1:4318`;
    /// traces go to `<endpoint>/v1/traces`. `None`: no export (the default).
    pub otlp_endpoint: Option<String>,
    /// Full OTLP traces URL; overrides `otlp_endpoint`.
    pub otlp_traces_endpoint: Option<String>,
    /// `service.name` of exported spans. Default `switchyard`.
    pub service_name: String,
    /// Fraction of new traces recorded, 0.0 to 1.0; a message whose producer
    /// was sampled is followed wherever it goes (parent-based). Default 1.0.
    pub sample_ratio: f64,
    /// Finished spans waiting for export before new ones are dropped (and
    /// counted). Default 65,536.
    pub span_queue_max: usize,
    /// Most spans in one export batch. Default 2048.
    pub span_batch_max: usize,
    /// Longest a finished span waits for its batch. Default 200 ms.
    pub span_flush_interval_ms: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            keep_spans: true,
            span_retention_ms: 7 * 24 * 60 * 60 * 1000,
            spans_max: 2_000_000,
            otlp_endpoint: None,
            otlp_traces_endpoint: None,
            service_name: "switchyard".to_owned(),
            sample_ratio: 1.0,
            span_queue_max: 65_536,
            span_batch_max: 2048,
            span_flush_interval_ms: 200,
        }
    }
}

impl TelemetryConfig {
    /// Applies the standard OpenTelemetry environment variables, read
    /// through `var` (the library itself never reads the environment):
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
    /// `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER` (`always_on`, `always_off`,
    /// `traceidratio`, `parentbased_*`) with `OTEL_TRACES_SAMPLER_ARG`, and
    /// `OTEL_SDK_DISABLED`.
    pub fn apply_otel_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            self.otlp_endpoint = None;
            self.otlp_traces_endpoint = None;
            return Ok(());
        }
        if let Some(endpoint) = var("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|v| !v.is_empty()) {
            self.otlp_endpoint = Some(endpoint);
        }
        if let Some(endpoint) = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").filter(|v| !v.is_empty())
        {
            self.otlp_traces_endpoint = Some(endpoint);
        }
        if let Some(name) = var("OTEL_SERVICE_NAME").filter(|v| !v.is_empty()) {
            self.service_name = name;
        }
        if let Some(sampler) = var("OTEL_TRACES_SAMPLER") {
            let arg = var("OTEL_TRACES_SAMPLER_ARG");
            self.sample_ratio = match sampler.as_str() {
                "always_on" | "parentbased_always_on" => 1.0,
                "always_off" | "parentbased_always_off" => 0.0,
                "traceidratio" | "parentbased_traceidratio" => {
                    let arg = arg.unwrap_or_else(|| "1.0".to_owned());
                    arg.parse::<f64>()
                        .ok()
                        .filter(|r| (0.0..=1.0).contains(r))
                        .ok_or_else(|| {
                            format!(
                                "OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1, not `{arg}`"
                            )
                        })?
                }
                other => {
                    return Err(format!(
                        "OTEL_TRACES_SAMPLER `{other}` is not supported (use always_on, always_off, traceidratio or their parentbased_ forms)"
                    ));
                }
            };
        }
        Ok(())
    }

    /// The URL traces are exported to, if export is on.
    pub fn otlp_traces_url(&self) -> Option<String> {
        self.otlp_traces_endpoint.clone().or_else(|| {
            self.otlp_endpoint
                .as_ref()
                .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
        })
    }
}
