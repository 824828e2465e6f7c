//! `switchyard-bench`: comparative queue benchmark on this machine.
//!
//! `switchyard-bench peers` measures the peer queues (RabbitMQ, NATS JetStream, PostgreSQL) with
//! the same workload — durable messages, one producer and one consumer, throughput and
//! one-at-a-time round trips — and prints one table row per peer it could reach, each with the
//! durability that peer actually gave. See [`peers`] for how each is measured.
//!
//! Every measurement is a [`peers::Measurement`]; [`print_table`] can show each row relative to a
//! named baseline row, so further rows (Switchyard's own) slot into the same table.

pub mod inprocess;
pub mod network;
/// glibc's allocator serializes on arena locks when the writer thread frees
/// what async tasks allocated; mimalloc does not. Without transparent huge
/// pages (`no_thp`): with them, each page mimalloc gives back and takes again
/// is a 2 MiB page the kernel zeroes, which perf showed as 15% of a run's CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod peers;

use std::fmt;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use peers::{Measurement, Unreachable};

#[derive(Debug, Parser)]
#[command(name = "switchyard-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure Switchyard (fsync and relaxed) and every reachable peer, in one
    /// run, as one table with ratios to Switchyard (fsync).
    All(PeerArgs),
    /// Measure Switchyard only.
    Switchyard(PeerArgs),
    /// Measure the peer queues (RabbitMQ, NATS JetStream, PostgreSQL) that are reachable.
    Peers(PeerArgs),
    /// Measure what tracing costs: Switchyard (fsync) with tracing off, with
    /// every span recorded in its own store (the default), and with OTLP
    /// export on top (to a receiver in this process that decodes nothing).
    Tracing(PeerArgs),
}

#[derive(Debug, Args)]
struct PeerArgs {
    /// Runs of each Switchyard mode; the row shown is the run with the
    /// median throughput, and the spread of all runs is printed. The machine
    /// is noisy: use 3 or 5 to judge a change.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Messages sent in the throughput phase.
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    /// One-at-a-time round trips in the latency phase.
    #[arg(long, default_value_t = 2000)]
    rtt: usize,
    /// Size of every message's payload.
    #[arg(long, default_value_t = 256)]
    payload_bytes: usize,
    /// AMQP URL of the RabbitMQ broker.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    rabbitmq_url: String,
    /// URL of the NATS server (JetStream enabled).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// tokio-postgres connection string of the PostgreSQL database.
    #[arg(long, default_value = "host=127.0.0.1 user=postgres dbname=test")]
    postgres_url: String,
    /// Leave out Switchyard over the network (HTTP and WebSocket rows).
    #[arg(long)]
    no_network: bool,
    /// Run only these peers (comma-separated); all of them by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Peer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Peer {
    Rabbitmq,
    Nats,
    Postgres,
}

impl Peer {
    const ALL: [Peer; 3] = [Peer::Rabbitmq, Peer::Nats, Peer::Postgres];

    fn url(self, args: &PeerArgs) -> &str {
        match self {
            Peer::Rabbitmq => &args.rabbitmq_url,
            Peer::Nats => &args.nats_url,
            Peer::Postgres => &args.postgres_url,
        }
    }

    async fn run(self, args: &PeerArgs, payload: &[u8]) -> Result<Measurement> {
        let url = self.url(args);
        match self {
            Peer::Rabbitmq => peers::rabbitmq::run(url, args.messages, args.rtt, payload).await,
            Peer::Nats => peers::nats::run(url, args.messages, args.rtt, payload).await,
            Peer::Postgres => peers::postgres::run(url, args.messages, args.rtt, payload).await,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Peer::Rabbitmq => "rabbitmq",
            Peer::Nats => "nats",
            Peer::Postgres => "postgres",
        })
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::All(args) => all_command(&args, true).await,
        Command::Switchyard(args) => all_command(&args, false).await,
        Command::Peers(args) => peers_command(&args).await,
        Command::Tracing(args) => tracing_command(&args).await,
    }
}

async fn all_command(args: &PeerArgs, with_peers: bool) -> Result<()> {
    println!(
        "{} messages for throughput, {} round trips, {}-byte payloads, {} cores",
        args.messages,
        args.rtt,
        args.payload_bytes,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let payload = vec![0x5a_u8; args.payload_bytes];
    let mut rows = Vec::new();
    for durability in [
        ::switchyard::Durability::Fsync,
        ::switchyard::Durability::Relaxed,
    ] {
        let mut runs = Vec::with_capacity(args.repeat.max(1));
        for run in 1..=args.repeat.max(1) {
            println!(
                "running switchyard ({durability:?}) {run}/{} ...",
                args.repeat.max(1)
            );
            runs.push(crate::inprocess::run(durability, args.messages, args.rtt, &payload).await?);
        }
        rows.push(median_run(runs));
    }
    if !args.no_network {
        for mode in [
            crate::network::Mode::HttpPull,
            crate::network::Mode::WebSocket,
        ] {
            println!("running switchyard over the network ({mode:?}) ...");
            rows.push(crate::network::run(mode, args.messages, args.rtt, &payload).await?);
        }
    }
    let mut failed = Vec::new();
    if with_peers {
        let (peer_rows, peer_failed) = run_peers(args, &payload).await;
        rows.extend(peer_rows);
        failed = peer_failed;
    }
    println!();
    print_table(&rows, Some("Switchyard (fsync)"));
    if !failed.is_empty() {
        bail!("peer(s) failed: {}", failed.join(", "));
    }
    Ok(())
}

async fn tracing_command(args: &PeerArgs) -> Result<()> {
    use crate::inprocess::Tracing;
    let payload = vec![0x5a_u8; args.payload_bytes];
    let otlp = otlp_sink::start().await?;
    // `SWITCHYARD_BENCH_TRACING=off` (or `store`, `otlp`) runs one mode only,
    // e.g. to profile it alone.
    let only = std::env::var("SWITCHYARD_BENCH_TRACING").ok();
    let modes: Vec<Tracing> = [
        ("off", Tracing::Off),
        ("store", Tracing::Store),
        ("otlp", Tracing::StoreAndOtlp(otlp.clone())),
    ]
    .into_iter()
    .filter(|(name, _)| only.as_deref().is_none_or(|only| only == *name))
    .map(|(_, mode)| mode)
    .collect();
    let mut rows = Vec::new();
    // Modes take turns (off, store, otlp, off, ...) so that a machine that
    // gets busier or quieter during the run skews every mode alike.
    let n_runs = args.repeat.max(1);
    let mut runs: Vec<Vec<_>> = modes.iter().map(|_| Vec::new()).collect();
    for run in 1..=n_runs {
        for (mode, runs) in modes.iter().zip(&mut runs) {
            println!("running switchyard (fsync, {mode:?}) {run}/{n_runs} ...");
            runs.push(
                crate::inprocess::run_traced(
                    ::switchyard::Durability::Fsync,
                    mode.clone(),
                    args.messages,
                    args.rtt,
                    &payload,
                )
                .await?,
            );
        }
    }
    rows.extend(runs.into_iter().map(median_run));
    println!();
    print_table(&rows, Some("Switchyard (fsync), tracing off"));
    Ok(())
}

/// The run with the median throughput; prints every run's throughput first
/// when there was more than one.
fn median_run(mut runs: Vec<Measurement>) -> Measurement {
    runs.sort_by(|a, b| a.throughput_msgs_per_s.total_cmp(&b.throughput_msgs_per_s));
    if runs.len() > 1 {
        let all: Vec<String> = runs
            .iter()
            .map(|r| format!("{:.0}", r.throughput_msgs_per_s))
            .collect();
        println!(
            "  throughput of each run (msgs/s, sorted): {}",
            all.join(", ")
        );
    }
    runs.swap_remove(runs.len() / 2)
}

/// A stand-in OTLP/HTTP collector: answers every request with 200 and
/// throws the body away, so the bench measures the exporter, not a collector.
mod otlp_sink {
    use anyhow::Result;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    pub(crate) async fn start() -> Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    loop {
                        let mut line = String::new();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut length = 0usize;
                        loop {
                            let mut header = String::new();
                            if stream.read_line(&mut header).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let header = header.trim_end();
                            if header.is_empty() {
                                break;
                            }
                            if let Some((name, value)) = header.split_once(':')
                                && name.eq_ignore_ascii_case("content-length")
                            {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; length];
                        if stream.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let reply = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if stream.get_mut().write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Ok(url)
    }
}

async fn peers_command(args: &PeerArgs) -> Result<()> {
    println!(
        "{} messages for throughput, {} round trips, {}-byte payloads",
        args.messages, args.rtt, args.payload_bytes
    );
    let payload = vec![0x5a_u8; args.payload_bytes];
    let (rows, failed) = run_peers(args, &payload).await;
    println!();
    print_table(&rows, None);
    if !failed.is_empty() {
        bail!("peer(s) failed: {}", failed.join(", "));
    }
    Ok(())
}

/// Runs the selected peers one after the other. Unreachable peers are reported and skipped;
/// returns the measurements and the names of peers that failed while being measured.
async fn run_peers(args: &PeerArgs, payload: &[u8]) -> (Vec<Measurement>, Vec<String>) {
    let selected = if args.only.is_empty() {
        Peer::ALL.to_vec()
    } else {
        args.only.clone()
    };
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for peer in selected {
        let url = peer.url(args);
        println!("running {peer} at {url} ...");
        match peer.run(args, payload).await {
            Ok(measurement) => rows.push(measurement),
            Err(error) if error.downcast_ref::<Unreachable>().is_some() => {
                println!(
                    "skipped: {peer} unreachable at {url}: {}",
                    unreachable_cause(&error)
                );
            }
            Err(error) => {
                println!("failed: {peer} at {url}: {error:#}");
                failed.push(peer.to_string());
            }
        }
    }
    (rows, failed)
}

/// The error chain below the [`Unreachable`] marker, joined with ": ". A cause whose text
/// already ends the line (errors that print their source themselves) is not repeated.
fn unreachable_cause(error: &anyhow::Error) -> String {
    let marker = Unreachable.to_string();
    let mut line = String::new();
    for cause in error
        .chain()
        .map(ToString::to_string)
        .skip_while(|cause| *cause != marker)
        .skip(1)
    {
        if line.ends_with(&cause) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&cause);
    }
    line
}

/// Prints the measurements as a table. With `baseline` naming one of the rows, three more
/// columns give each row's throughput, p50 and p99 divided by that row's.
fn print_table(rows: &[Measurement], baseline: Option<&str>) {
    if rows.is_empty() {
        println!("no measurements");
        return;
    }
    let base = baseline.and_then(|name| rows.iter().find(|row| row.name == name));
    if let (Some(name), None) = (baseline, base) {
        println!("(no row named {name:?}: ratios left out)");
    }
    let width = rows
        .iter()
        .map(|row| row.name.chars().count())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut header = format!(
        "{:<width$}  {:>9}  {:>10}  {:>8}  {:>8}",
        "name", "messages", "msgs/s", "p50 µs", "p99 µs"
    );
    if let Some(base) = base {
        let ratios = format!("  {:>8}  {:>8}  {:>8}", "msgs/s ×", "p50 ×", "p99 ×");
        header.push_str(&ratios);
        println!("ratios are relative to {}", base.name);
    }
    println!("{header}  durability");
    for row in rows {
        println!("{}", table_line(row, base, width));
    }
}

fn table_line(row: &Measurement, base: Option<&Measurement>, width: usize) -> String {
    let mut line = format!(
        "{:<width$}  {:>9}  {:>10.0}  {:>8.0}  {:>8.0}",
        row.name, row.n_messages, row.throughput_msgs_per_s, row.rtt_p50_us, row.rtt_p99_us
    );
    if let Some(base) = base {
        line.push_str(&format!(
            "  {:>8.2}  {:>8.2}  {:>8.2}",
            row.throughput_msgs_per_s / base.throughput_msgs_per_s,
            row.rtt_p50_us / base.rtt_p50_us,
            row.rtt_p99_us / base.rtt_p99_us
        ));
    }
    line.push_str("  ");
    line.push_str(&row.durability);
    line
}

#[cfg(test)]
mod tests {
    use super::{Measurement, table_line};

    fn row(name: &str, throughput: f64, p50: f64, p99: f64) -> Measurement {
        Measurement {
            name: name.to_owned(),
            durability: "d".to_owned(),
            throughput_msgs_per_s: throughput,
            rtt_p50_us: p50,
            rtt_p99_us: p99,
            n_messages: 10,
        }
    }

    #[test]
    fn ratios_are_relative_to_the_baseline_row() {
        let base = row("Switchyard", 1000.0, 100.0, 400.0);
        let peer = row("Peer", 500.0, 300.0, 200.0);
        let line = table_line(&peer, Some(&base), 10);
        assert!(line.contains("0.50"), "{line}");
        assert!(line.contains("3.00"), "{line}");
        assert!(line.ends_with("d"), "{line}");
        assert!(!table_line(&peer, None, 10).contains("0.50"));
    }
}
