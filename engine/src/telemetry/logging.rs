//! Structured logs for the `switchyard` binary (and any embedder that wants
//! the same): human-readable or JSON lines on stderr, filtered by
//! `RUST_LOG`-style directives, with the engine's tracer bridged in so that
//! application `tracing` spans join the message traces and every log line
//! inside one carries its trace id.
//!
//! The engine's own log events carry `message_id`, `correlation_id` and
//! `trace_id` fields where they concern a message.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per line, with the current spans.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "log format `{other}` is unknown (use human or json)"
            )),
        }
    }
}

/// Installs the process-wide subscriber. `filter` uses `RUST_LOG` syntax
/// (e.g. `info,switchyard=debug`). `tracer` bridges `tracing` spans into the
/// engine's traces. Fails if a subscriber is already installed.
pub fn init(
    format: LogFormat,
    filter: &str,
    tracer: Option<opentelemetry_sdk::trace::SdkTracer>,
) -> Result<(), String> {
    let filter = EnvFilter::try_new(filter).map_err(|e| format!("log filter `{filter}`: {e}"))?;
    let otel = tracer.map(|t| tracing_opentelemetry::layer().with_tracer(t));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let result = match format {
        LogFormat::Human => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    result.map_err(|e| format!("cannot install the log subscriber: {e}"))
}
