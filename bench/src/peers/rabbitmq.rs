//! RabbitMQ peer (AMQP 0-9-1 through `lapin`).
//!
//! Declares a fresh durable queue with the server's default arguments (on RabbitMQ 3.10 that is a
//! classic queue with the v1 index, which fsyncs before it confirms; `x-queue-version: 2` is
//! deliberately not set because a v2 classic queue on 3.10 confirms without fsync), and deletes
//! it at the end. The producer and the consumer have their own connections.
//!
//! - Throughput: a producer task publishes persistent messages (delivery mode 2) on a channel in
//!   confirm mode, keeping at most [`CONFIRM_WINDOW`] confirms outstanding; a consumer task with
//!   prefetch [`PREFETCH`] acks every delivery manually. Measured from the first publish to the
//!   last ack sent.
//! - Round trip: publish one message, wait for its confirm, then take it from the consumer;
//!   timed from just before the publish to the moment the consumer holds it, then acked.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, Consumer, PublisherConfirm,
};

use super::{Measurement, RECEIVE_TIMEOUT, Unreachable, finish, joined, micros_since, unique_name};

pub const NAME: &str = "RabbitMQ";
pub const DURABILITY: &str = "classic queue (server default, v1 index on 3.10), durable queue, \
     persistent, publisher confirms (fsync before confirm), manual ack";

/// Publisher confirms outstanding at most during the throughput phase.
pub const CONFIRM_WINDOW: usize = 1024;
/// Consumer prefetch (`basic.qos`).
pub const PREFETCH: u16 = 1000;
/// AMQP delivery mode for persistent messages.
const PERSISTENT: u8 = 2;

/// Runs both phases against the broker at `url` (e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`).
pub async fn run(
    url: &str,
    n_messages: usize,
    n_rtt: usize,
    payload: &[u8],
) -> Result<Measurement> {
    let producer_conn = connect(url).await?;
    let consumer_conn = connect(url).await?;
    let publisher = producer_conn
        .create_channel()
        .await
        .context("opening the publisher channel")?;
    let queue = unique_name("switchyard_bench");
    declare_queue(&publisher, &queue).await?;

    let outcome = measure(
        &publisher,
        &consumer_conn,
        &queue,
        n_messages,
        n_rtt,
        payload,
    )
    .await;

    let deleted = publisher
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .with_context(|| format!("deleting queue {queue}"));
    // Closing is best effort: the queue is already gone, and a failed close loses nothing.
    let _ = consumer_conn.close(200, "benchmark done".into()).await;
    let _ = producer_conn.close(200, "benchmark done".into()).await;
    let measurement = outcome?;
    deleted?;
    Ok(measurement)
}

async fn connect(url: &str) -> Result<Connection> {
    Connection::connect(url, ConnectionProperties::default())
        .await
        .context(Unreachable)
}

async fn declare_queue(publisher: &Channel, queue: &str) -> Result<()> {
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .context("enabling publisher confirms")?;
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    publisher
        .queue_declare(queue.into(), options, FieldTable::default())
        .await
        .with_context(|| format!("declaring durable queue {queue}"))?;
    Ok(())
}

async fn measure(
    publisher: &Channel,
    consumer_conn: &Connection,
    queue: &str,
    n_messages: usize,
    n_rtt: usize,
    payload: &[u8],
) -> Result<Measurement> {
    let consumer = subscribe(consumer_conn, queue).await?;
    let (consumer, elapsed) = throughput(publisher, consumer, queue, n_messages, payload).await?;
    let rtt_us = round_trips(publisher, consumer, queue, n_rtt, payload).await?;
    Ok(Measurement::new(
        NAME, DURABILITY, n_messages, elapsed, rtt_us,
    ))
}

async fn subscribe(conn: &Connection, queue: &str) -> Result<Consumer> {
    let channel = conn
        .create_channel()
        .await
        .context("opening the consumer channel")?;
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await
        .context("setting consumer prefetch")?;
    channel
        .basic_consume(
            queue.into(),
            "switchyard-bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("consuming from {queue}"))
}

/// Producer and consumer run as separate tasks; returns the consumer for the next phase.
async fn throughput(
    publisher: &Channel,
    consumer: Consumer,
    queue: &str,
    n_messages: usize,
    payload: &[u8],
) -> Result<(Consumer, Duration)> {
    let start = Instant::now();
    let consuming = tokio::spawn(consume(consumer, n_messages));
    let producing = tokio::spawn(produce(
        publisher.clone(),
        queue.to_owned(),
        n_messages,
        payload.to_vec(),
    ));
    let produced = joined(producing).await;
    let ((), (consumer, last_ack)) = finish(produced, consuming).await?;
    Ok((consumer, last_ack.duration_since(start)))
}

async fn produce(channel: Channel, queue: String, n: usize, payload: Vec<u8>) -> Result<()> {
    let mut window: VecDeque<PublisherConfirm> = VecDeque::with_capacity(CONFIRM_WINDOW);
    for _ in 0..n {
        if window.len() >= CONFIRM_WINDOW {
            let oldest = window.pop_front().context("confirm window is empty")?;
            confirmed(oldest).await?;
        }
        window.push_back(publish(&channel, &queue, &payload).await?);
    }
    for pending in window {
        confirmed(pending).await?;
    }
    Ok(())
}

/// Receives and acks `n` deliveries; returns the consumer and when the last ack was sent.
async fn consume(mut consumer: Consumer, n: usize) -> Result<(Consumer, Instant)> {
    let mut last_ack = Instant::now();
    for _ in 0..n {
        let delivery = next_delivery(&mut consumer).await?;
        ack(&delivery).await?;
        last_ack = Instant::now();
    }
    Ok((consumer, last_ack))
}

async fn round_trips(
    publisher: &Channel,
    mut consumer: Consumer,
    queue: &str,
    n_rtt: usize,
    payload: &[u8],
) -> Result<Vec<f64>> {
    let mut samples = Vec::with_capacity(n_rtt);
    for _ in 0..n_rtt {
        let start = Instant::now();
        confirmed(publish(publisher, queue, payload).await?).await?;
        let delivery = next_delivery(&mut consumer).await?;
        samples.push(micros_since(start));
        ack(&delivery).await?;
    }
    Ok(samples)
}

async fn publish(channel: &Channel, queue: &str, payload: &[u8]) -> Result<PublisherConfirm> {
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            payload,
            BasicProperties::default().with_delivery_mode(PERSISTENT),
        )
        .await
        .context("basic.publish")
}

async fn confirmed(confirm: PublisherConfirm) -> Result<()> {
    let confirmation = confirm.await.context("waiting for a publisher confirm")?;
    if !confirmation.is_ack() {
        bail!("the broker nacked a published message");
    }
    Ok(())
}

async fn next_delivery(consumer: &mut Consumer) -> Result<Delivery> {
    tokio::time::timeout(RECEIVE_TIMEOUT, consumer.next())
        .await
        .context("no delivery within the receive timeout")?
        .context("the broker cancelled the consumer")?
        .context("receiving a delivery")
}

async fn ack(delivery: &Delivery) -> Result<()> {
    let acked = delivery
        .ack(BasicAckOptions::default())
        .await
        .context("basic.ack")?;
    if !acked {
        bail!("basic.ack: the delivery was already acknowledged or its channel is gone");
    }
    Ok(())
}
