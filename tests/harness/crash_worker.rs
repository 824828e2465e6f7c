//! A process for the crash test to kill: it sends and consumes under load on
//! a Switchyard data directory and reports, one flushed line per event, what
//! the engine acknowledged to it.
//!
//! Usage: `switchyard-crash-worker DATA_DIR load|drain fsync|relaxed RUN`
//!
//! Lines: `ready`, `sent ID`, `recv ID ATTEMPT REDELIVERED`, `acked ID`,
//! `drained`. A line is written only after the engine call it reports has
//! returned, so whatever the parent reads was acknowledged by the engine.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use switchyard::{Config, Durability, Engine, OutgoingMessage, QueueSpec, ReceiveOptions};

/// The queue every run uses.
const QUEUE: &str = "crash";
/// Short, so a killed consumer's leases lapse quickly for the next run.
const LEASE_MS: u64 = 300;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, mode, durability, run] = args.as_slice() else {
        eprintln!("usage: switchyard-crash-worker DATA_DIR load|drain fsync|relaxed RUN");
        return ExitCode::from(2);
    };
    let durability = if durability == "relaxed" {
        Durability::Relaxed
    } else {
        Durability::Fsync
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(work(
        PathBuf::from(dir),
        mode == "drain",
        durability,
        run.clone(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crash worker: {e}");
            ExitCode::FAILURE
        }
    }
}

type Out = Arc<Mutex<std::io::Stdout>>;

fn report(out: &Out, line: String) {
    let mut out = out.lock().expect("stdout lock");
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn work(
    dir: PathBuf,
    drain: bool,
    durability: Durability,
    run: String,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::default();
    config.storage.data_dir = Some(dir);
    config.storage.durability = durability;
    // A small WAL, so that the writer restarts it every few commits and
    // the kills also land in its checkpoints and restarts.
    config.storage.wal_bytes_max = 256 * 1024;
    let engine = Engine::open(config).await?;
    engine
        .queues()
        .declare(QueueSpec::new(QUEUE).max_retries(100_000))
        .await?;
    let out: Out = Arc::new(Mutex::new(std::io::stdout()));
    report(&out, "ready".to_owned());
    if drain {
        consume(&engine, &out, true).await?;
        report(&out, "drained".to_owned());
        engine.shutdown().await;
        return Ok(());
    }
    for producer in 0..4 {
        let (engine, out, run) = (engine.clone(), out.clone(), run.clone());
        tokio::spawn(async move {
            for i in 0u64.. {
                let body = format!("{run}-{producer}-{i}");
                match engine
                    .queues()
                    .send(QUEUE, OutgoingMessage::json(&body))
                    .await
                {
                    Ok(receipt) => report(&out, format!("sent {}", receipt.id)),
                    Err(e) => report(&out, format!("error send {e}")),
                }
            }
        });
    }
    consume(&engine, &out, false).await?;
    Ok(())
}

/// Receives, reports and acks until killed (load) or until the queue is
/// empty (drain).
async fn consume(
    engine: &Engine,
    out: &Out,
    drain: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let queues = engine.queues();
    loop {
        // The drain run is never killed: a long lease keeps a loaded
        // machine from lapsing it between receive and ack.
        let options = ReceiveOptions {
            n_max: 16,
            lease_ms: Some(if drain { 30_000 } else { LEASE_MS }),
            owner: None,
        };
        let deliveries = queues.receive(QUEUE, options).await?;
        if deliveries.is_empty() {
            let stats = queues.stats(QUEUE).await?;
            if drain && stats.ready + stats.in_flight + stats.scheduled == 0 {
                return Ok(());
            }
            // Leases of the killed run lapse on the wall clock.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        }
        for delivery in deliveries {
            let id = delivery.message.id;
            report(
                out,
                format!("recv {id} {} {}", delivery.attempt, delivery.redelivered),
            );
            match queues.ack(&delivery.lease).await {
                Ok(()) => report(out, format!("acked {id}")),
                // The lease lapsed before the ack (a slow machine): not
                // acked, so the message comes back, marked redelivered.
                Err(switchyard::QueueError::StaleLease { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}
