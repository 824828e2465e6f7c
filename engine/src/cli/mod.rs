//! The `switchyard` command line: parses arguments, builds a [`Config`], and
//! runs a command. The only part of the crate that reads the environment and
//! arguments, and the only one that uses `anyhow`.
//!
//! Commands: `serve` (the HTTP server), `config dump`, `demo`, and the client
//! commands `queues` and `dead-letters` that talk to a running server.
//!
//! Errors print like ripgrep's: the whole chain on one line, exit code 2.

mod config;
mod demo;
mod remote;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Durability};

/// Switchyard: durable queues, events, topics and sagas in one engine.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server: API, live streams, metrics and the web console.
    Serve(serve::ServeArgs),
    /// Show the configuration.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Manage queues on a running server.
    Queues(remote::QueuesArgs),
    /// Inspect and redrive dead letters on a running server.
    DeadLetters(remote::DeadLettersArgs),
    /// Follow a message flow (correlation, message or trace id) on a running
    /// server.
    Flows(remote::FlowsArgs),
    /// Run the order-processing demo on an embedded database and print live
    /// queue statistics.
    Demo(DemoArgs),
}

#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// Directory of the database (created if missing).
    #[arg(long, env = "SWITCHYARD_DATA_DIR", default_value = "switchyard-data")]
    data_dir: PathBuf,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    duration_s: Option<u64>,
    /// Milliseconds between new orders.
    #[arg(long, default_value_t = 100)]
    order_interval_ms: u64,
    /// Acknowledge commits before they are fsynced (survives a crash of the
    /// process, not of the machine).
    #[arg(long)]
    relaxed: bool,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve::run(args)),
        Command::Config(command) => config::run(command),
        Command::Queues(args) => runtime.block_on(remote::queues(args)),
        Command::DeadLetters(args) => runtime.block_on(remote::dead_letters(args)),
        Command::Flows(args) => runtime.block_on(remote::flows(args)),
        Command::Demo(args) => runtime.block_on(demo::run(
            demo_config(&args),
            args.duration_s,
            args.order_interval_ms,
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn demo_config(args: &DemoArgs) -> Config {
    let mut config = Config::default();
    config.storage.data_dir = Some(args.data_dir.clone());
    if args.relaxed {
        config.storage.durability = Durability::Relaxed;
    }
    config
}

/// Logs on stderr: `SWITCHYARD_LOG` filters (`RUST_LOG` syntax, default
/// `warn`), `SWITCHYARD_LOG_FORMAT=json` gives JSON lines. Lines logged inside
/// a push handler carry its queue, message, correlation and trace ids.
fn init_logging() {
    use crate::telemetry::logging::{self, LogFormat};
    let filter = std::env::var("SWITCHYARD_LOG").unwrap_or_else(|_| "warn".to_owned());
    let format = match std::env::var("SWITCHYARD_LOG_FORMAT") {
        Ok(text) => text.parse().unwrap_or_else(|e| {
            eprintln!("switchyard: {e}; logging as human");
            LogFormat::Human
        }),
        Err(_) => LogFormat::Human,
    };
    if let Err(e) = logging::init(format, &filter, None) {
        eprintln!("switchyard: {e}");
    }
}

fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("switchyard: {error:#}");
    ExitCode::from(2)
}
