//! `switchyard demo`: runs [`crate::demo`] and prints each queue's counts
//! every two seconds, then the dead letters with their reasons.

use std::time::Duration;

use anyhow::Context;

use crate::config::Config;
use crate::queue::DeadLetterFilter;
use crate::{Engine, demo};

pub(super) async fn run(
    config: Config,
    duration_s: Option<u64>,
    order_interval_ms: u64,
) -> anyhow::Result<()> {
    let dir = config.storage.data_dir.clone().unwrap_or_default();
    let engine = Engine::open(config)
        .await
        .context("cannot open the engine")?;
    println!(
        "switchyard demo: orders flowing through orders -> payments -> shipping in {}",
        dir.display()
    );
    println!(
        "(Ctrl-C to stop; the data stays in the directory and the next run continues from it)\n"
    );
    let running = demo::start(&engine, Duration::from_millis(order_interval_ms)).await?;
    let deadline = duration_s.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = ticker.tick() => print_stats(&engine).await?,
            _ = tokio::signal::ctrl_c() => break,
            _ = sleep_until(deadline) => break,
        }
    }
    println!("\nstopping: waiting for in-flight orders to settle ...");
    running.stop().await?;
    print_stats(&engine).await?;
    print_dead_letters(&engine).await?;
    engine.shutdown().await;
    Ok(())
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn print_stats(engine: &Engine) -> anyhow::Result<()> {
    println!(
        "{:<14} {:>7} {:>9} {:>9} {:>13} {:>11}",
        "queue", "ready", "in flight", "retrying", "dead-lettered", "oldest (ms)"
    );
    for info in engine.queues().list() {
        let stats = engine.queues().stats(&info.spec.name).await?;
        let oldest = stats
            .oldest_age_ms
            .map(|ms| ms.to_string())
            .unwrap_or_else(|| "-".to_owned());
        println!(
            "{:<14} {:>7} {:>9} {:>9} {:>13} {:>11}",
            stats.queue, stats.ready, stats.in_flight, stats.scheduled, stats.dead_lettered, oldest
        );
    }
    println!();
    Ok(())
}

async fn print_dead_letters(engine: &Engine) -> anyhow::Result<()> {
    let filter = DeadLetterFilter {
        limit: Some(10),
        ..DeadLetterFilter::default()
    };
    let dead = engine.queues().dead_letters(&filter).await?;
    let total = engine
        .queues()
        .count_dead_letters(&DeadLetterFilter::default())
        .await?;
    println!("dead letters: {total} (first {} shown)", dead.len());
    for message in dead {
        let info = message
            .dead_letter
            .as_ref()
            .context("a dead letter without its record")?;
        println!(
            "  {} in {:<13} from {:<9} {:<12} after {} attempt(s): {}",
            message.id,
            message.queue,
            info.origin_queue,
            info.reason.as_str(),
            info.attempts,
            message.last_error.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}
