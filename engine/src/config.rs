//! Engine configuration: one section per subsystem, every bound with its unit
//! in the name, and the defaults documented here.
//!
//! The library never reads files, environment or arguments; the CLI builds a
//! [`Config`] and hands it to [`crate::Engine::open`].

use std::net::SocketAddr;
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
    /// The HTTP server (`switchyard serve`): address, limits, console assets.
    pub http: HttpConfig,
    /// Who may call the HTTP API.
    pub auth: AuthConfig,
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
    /// Most of the write-ahead log kept for reuse: when the log restarts
    /// after a checkpoint it is cut back to this size, and commits overwrite
    /// what is kept (cheaper to fsync than an append). The writer restarts
    /// the log once it holds half of this, so under steady load the file
    /// stays near that size. Default 64 MiB.
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

/// The HTTP server's address, limits and console assets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// Address to listen on; port 0 picks a free port. Default
    /// `127.0.0.1:7600`.
    pub listen: SocketAddr,
    /// Largest request body, except batch sends. Default 1 MiB of payload
    /// plus room for base64 and the envelope (1.5 MiB).
    pub body_bytes_max: usize,
    /// Largest batch-send request body. Default 16 MiB.
    pub batch_body_bytes_max: usize,
    /// Largest total size of a request's headers. Default 16 KiB.
    pub header_bytes_max: usize,
    /// Longest a request may take before it is answered `timeout` (long-lived
    /// streams are exempt once they start). Default 30 s.
    pub request_timeout_ms: u64,
    /// Longest a pull receive may wait for messages. Default 20 s.
    pub receive_wait_ms_max: u64,
    /// On shutdown, longest to wait for in-flight requests and streams.
    /// Default 10 s.
    pub shutdown_deadline_ms: u64,
    /// Most deliveries a WebSocket consumer may hold unsettled. Default 10000.
    pub prefetch_max: u32,
    /// Origins allowed by CORS; empty (the default) turns CORS off.
    pub cors_origins: Vec<String>,
    /// Directory of the console's built assets; `None` serves the built-in
    /// empty-state page.
    pub ui_dir: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7600)),
            body_bytes_max: 1024 * 1024 * 3 / 2,
            batch_body_bytes_max: 16 * 1024 * 1024,
            header_bytes_max: 16 * 1024,
            request_timeout_ms: 30_000,
            receive_wait_ms_max: 20_000,
            shutdown_deadline_ms: 10_000,
            prefetch_max: 10_000,
            cors_origins: Vec::new(),
            ui_dir: None,
        }
    }
}

/// A caller's role; each includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads queues, messages, dead letters, statistics and streams.
    Viewer,
    /// Also sends, consumes, and retries, purges or moves dead letters.
    Operator,
    /// Also declares and deletes queues and reads the configuration.
    Admin,
}

impl Role {
    /// Stable text form (`viewer`, `operator`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// Bearer tokens of the HTTP API. There are no default credentials: with no
/// token configured, `switchyard serve` generates an admin token on first
/// start and keeps only its SHA-256 in the data directory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// An admin token (also `SWITCHYARD_ADMIN_TOKEN`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// More tokens, each with a role.
    pub tokens: Vec<TokenConfig>,
}

/// One configured token: the token itself or its SHA-256 (hex), and a role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenConfig {
    /// The token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// SHA-256 of the token in lowercase hex, for files that should not hold
    /// the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// What it may do.
    pub role: Role,
}

impl AuthConfig {
    /// `true` when at least one token is configured (a generated token does
    /// not count).
    pub fn is_configured(&self) -> bool {
        self.admin_token.is_some() || !self.tokens.is_empty()
    }

    /// The same configuration with secrets replaced by `<redacted>`, for
    /// printing.
    pub fn redacted(&self) -> AuthConfig {
        let hide = |t: &Option<String>| t.as_ref().map(|_| "<redacted>".to_owned());
        AuthConfig {
            admin_token: hide(&self.admin_token),
            tokens: self
                .tokens
                .iter()
                .map(|t| TokenConfig {
                    token: hide(&t.token),
                    ..t.clone()
                })
                .collect(),
        }
    }
}

impl Config {
    /// The configuration with every secret replaced by `<redacted>`.
    pub fn redacted(&self) -> Config {
        Config {
            auth: self.auth.redacted(),
            ..self.clone()
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
