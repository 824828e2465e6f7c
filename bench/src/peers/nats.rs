//! NATS JetStream peer (through `async-nats`).
//!
//! Creates a fresh work-queue stream with file storage (one replica) on a unique subject, and a
//! durable pull consumer with explicit acks; deletes the stream at the end. The producer and the
//! consumer have their own connections. JetStream acknowledges a publish once the message is
//! written to its file store but, with the default `sync_interval` of 2 minutes, before fsync —
//! so this peer's durability is weaker than the others' and the table says so.
//!
//! - Throughput: a producer task publishes and awaits the publish acks, keeping at most
//!   [`ACK_WINDOW`] outstanding; a consumer task reads the pull consumer's message stream
//!   (pull batches of [`PULL_BATCH`], at most [`MAX_ACK_PENDING`] unacked) and acks each message.
//!   Measured from the first publish to the last ack sent.
//! - Round trip: publish one message, await its publish ack, then take it from the consumer;
//!   timed from just before the publish to the moment the consumer holds it, then acked.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::stream::{RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Message};
use futures_util::StreamExt;

use super::{Measurement, RECEIVE_TIMEOUT, Unreachable, finish, joined, micros_since, unique_name};

pub const NAME: &str = "NATS JetStream";
pub const DURABILITY: &str = "file storage, acked publish (acks before fsync: sync_interval 2 min \
     default), work-queue stream, explicit ack";

/// Publish acks outstanding at most during the throughput phase.
pub const ACK_WINDOW: usize = 1024;
/// Messages requested per pull.
pub const PULL_BATCH: usize = 1000;
/// Unacked deliveries the server allows the consumer (like RabbitMQ's prefetch).
pub const MAX_ACK_PENDING: i64 = 1000;

/// Runs both phases against the server at `url` (e.g. `nats://127.0.0.1:4222`).
pub async fn run(
    url: &str,
    n_messages: usize,
    n_rtt: usize,
    payload: &[u8],
) -> Result<Measurement> {
    let producer = jetstream::new(connect(url).await?);
    let consumer_client = connect(url).await?;
    let name = unique_name("switchyard_bench");
    create_stream(&producer, &name).await?;

    let consumer = jetstream::new(consumer_client);
    let outcome = measure(&producer, &consumer, &name, n_messages, n_rtt, payload).await;

    let deleted = producer
        .delete_stream(&name)
        .await
        .with_context(|| format!("deleting stream {name}"));
    let measurement = outcome?;
    deleted?;
    Ok(measurement)
}

async fn connect(url: &str) -> Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .name("switchyard-bench")
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .context(Unreachable)
}

async fn create_stream(js: &jetstream::Context, name: &str) -> Result<()> {
    js.create_stream(jetstream::stream::Config {
        name: name.to_owned(),
        subjects: vec![name.to_owned()],
        storage: StorageType::File,
        retention: RetentionPolicy::WorkQueue,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .with_context(|| format!("creating file-backed stream {name}"))?;
    Ok(())
}

async fn measure(
    producer: &jetstream::Context,
    consumer: &jetstream::Context,
    name: &str,
    n_messages: usize,
    n_rtt: usize,
    payload: &[u8],
) -> Result<Measurement> {
    let messages = subscribe(consumer, name).await?;
    let (messages, elapsed) = throughput(producer, messages, name, n_messages, payload).await?;
    let rtt_us = round_trips(producer, messages, name, n_rtt, payload).await?;
    Ok(Measurement::new(
        NAME, DURABILITY, n_messages, elapsed, rtt_us,
    ))
}

async fn subscribe(js: &jetstream::Context, name: &str) -> Result<pull::Stream> {
    let stream = js
        .get_stream(name)
        .await
        .with_context(|| format!("looking up stream {name}"))?;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("switchyard-bench".to_owned()),
            ack_policy: AckPolicy::Explicit,
            max_ack_pending: MAX_ACK_PENDING,
            ..Default::default()
        })
        .await
        .context("creating the pull consumer")?;
    consumer
        .stream()
        .max_messages_per_batch(PULL_BATCH)
        .messages()
        .await
        .context("starting the pull consumer's message stream")
}

/// Producer and consumer run as separate tasks; returns the message stream for the next phase.
async fn throughput(
    js: &jetstream::Context,
    messages: pull::Stream,
    subject: &str,
    n_messages: usize,
    payload: &[u8],
) -> Result<(pull::Stream, Duration)> {
    let start = Instant::now();
    let consuming = tokio::spawn(consume(messages, n_messages));
    let producing = tokio::spawn(produce(
        js.clone(),
        subject.to_owned(),
        n_messages,
        payload.to_vec(),
    ));
    let produced = joined(producing).await;
    let ((), (messages, last_ack)) = finish(produced, consuming).await?;
    Ok((messages, last_ack.duration_since(start)))
}

async fn produce(
    js: jetstream::Context,
    subject: String,
    n: usize,
    payload: Vec<u8>,
) -> Result<()> {
    let mut window: VecDeque<PublishAckFuture> = VecDeque::with_capacity(ACK_WINDOW);
    for _ in 0..n {
        if window.len() >= ACK_WINDOW {
            let oldest = window.pop_front().context("ack window is empty")?;
            acked(oldest).await?;
        }
        window.push_back(publish(&js, &subject, &payload).await?);
    }
    for pending in window {
        acked(pending).await?;
    }
    Ok(())
}

/// Receives and acks `n` messages; returns the stream and when the last ack was sent.
async fn consume(mut messages: pull::Stream, n: usize) -> Result<(pull::Stream, Instant)> {
    let mut last_ack = Instant::now();
    for _ in 0..n {
        let message = next_message(&mut messages).await?;
        ack(&message).await?;
        last_ack = Instant::now();
    }
    Ok((messages, last_ack))
}

async fn round_trips(
    js: &jetstream::Context,
    mut messages: pull::Stream,
    subject: &str,
    n_rtt: usize,
    payload: &[u8],
) -> Result<Vec<f64>> {
    let mut samples = Vec::with_capacity(n_rtt);
    for _ in 0..n_rtt {
        let start = Instant::now();
        acked(publish(js, subject, payload).await?).await?;
        let message = next_message(&mut messages).await?;
        samples.push(micros_since(start));
        ack(&message).await?;
    }
    Ok(samples)
}

async fn publish(
    js: &jetstream::Context,
    subject: &str,
    payload: &[u8],
) -> Result<PublishAckFuture> {
    js.publish(subject.to_owned(), payload.to_vec().into())
        .await
        .context("JetStream publish")
}

async fn acked(ack: PublishAckFuture) -> Result<()> {
    ack.await.context("waiting for a JetStream publish ack")?;
    Ok(())
}

async fn next_message(messages: &mut pull::Stream) -> Result<Message> {
    tokio::time::timeout(RECEIVE_TIMEOUT, messages.next())
        .await
        .context("no message within the receive timeout")?
        .context("the pull consumer's message stream ended")?
        .context("receiving a message")
}

async fn ack(message: &Message) -> Result<()> {
    message
        .ack()
        .await
        .map_err(|e| anyhow!("acking a message: {e}"))
}
