//! Switchyard over the network: `switchyard serve`'s HTTP API and WebSocket
//! consume on a loopback socket, measured with the same workload as the
//! in-process rows and the peers (durable 256-byte messages, one producer,
//! one consumer, then one-at-a-time round trips).
//!
//! The server runs in this process (`http::serve` on `127.0.0.1:0`) and the
//! clients talk to it through TCP with [`switchyard::client::Client`], so the
//! numbers include HTTP, JSON and base64 but share the machine's two cores
//! between server and clients, as the peers' servers do.
//!
//! Two rows:
//! - **HTTP batch**: the producer sends batches of [`BATCH`] (`POST
//!   /api/queues/{name}/batch`, up to [`BATCHES_IN_FLIGHT`] at once); the
//!   consumer pulls (`POST /receive`, `max` 1000, long poll) and acks each
//!   pull with one `POST /api/ack`. Round trip: `POST /messages`, then a
//!   long-polling receive holds it.
//! - **WebSocket**: the same producer; the consumer is the streaming consume
//!   (prefetch 1000), acking each delivery frame with one ack frame. Round
//!   trip: `POST /messages`, then the WebSocket consumer holds it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use switchyard::client::Client;
use switchyard::http::dto::{ConsumeStart, QueueSpec, ReceiveBody, SendBody};
use switchyard::http::{self, Auth};
use switchyard::{Config, Durability, Engine, Role};
use tokio::sync::Semaphore;

use crate::peers::{Measurement, micros_since};

/// Messages per batch send.
pub const BATCH: usize = 100;
/// Batch sends in flight (so about 1000 messages unconfirmed, like the
/// other rows' window of 1024).
pub const BATCHES_IN_FLIGHT: usize = 10;
const TOKEN: &str = "bench-token";
const PREFETCH: u32 = 1000;

/// How the consumer takes messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Pull receive + ack over HTTP.
    HttpPull,
    /// The WebSocket streaming consume.
    WebSocket,
}

/// Measures one consumer mode against a fresh server (fsync durability).
pub async fn run(
    mode: Mode,
    n_messages: usize,
    n_rtt: usize,
    payload: &[u8],
) -> Result<Measurement> {
    let dir = tempfile::Builder::new()
        .prefix("switchyard-bench-net")
        .tempdir_in("/var/tmp")
        .context("temp dir")?;
    let mut config = Config::default();
    config.storage.data_dir = Some(dir.path().to_path_buf());
    config.storage.durability = Durability::Fsync;
    let engine = Engine::open(config).await.context("open the engine")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http::serve(
        listener,
        engine.clone(),
        Auth::none().with_token(TOKEN, Role::Admin),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let client = Client::new(url, Some(TOKEN.to_owned()));
    let payload_base64 = base64::engine::general_purpose::STANDARD.encode(payload);
    let elapsed = throughput(&client, mode, n_messages, &payload_base64).await?;
    let rtt = round_trips(&client, mode, n_rtt, &payload_base64).await?;
    let _ = stop_tx.send(());
    server.await??;
    engine.shutdown().await;
    let (name, text) = match mode {
        Mode::HttpPull => (
            "Switchyard HTTP (batch send, pull+ack)",
            "server in-process over loopback HTTP; fsync before sends and acks are answered (receives at commit); batches of 100",
        ),
        Mode::WebSocket => (
            "Switchyard WebSocket consume",
            "server in-process over loopback; HTTP batch sends, WebSocket prefetch 1000; fsync",
        ),
    };
    Ok(Measurement::new(name, text, n_messages, elapsed, rtt))
}

fn message(payload_base64: &str) -> SendBody {
    SendBody {
        payload_base64: Some(payload_base64.to_owned()),
        content_type: Some("application/octet-stream".to_owned()),
        ..SendBody::default()
    }
}

async fn throughput(
    client: &Client,
    mode: Mode,
    n_messages: usize,
    payload: &str,
) -> Result<Duration> {
    let queue = "bench.net.throughput";
    client.declare(queue, &QueueSpec::default()).await?;
    let started = Instant::now();
    let consumer = {
        let client = client.clone();
        tokio::spawn(async move { consume(&client, mode, queue, n_messages).await })
    };
    let window = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    let mut sends = tokio::task::JoinSet::new();
    let mut left = n_messages;
    while left > 0 {
        let n = left.min(BATCH);
        left -= n;
        let permit = window.clone().acquire_owned().await?;
        let client = client.clone();
        let batch: Vec<SendBody> = (0..n).map(|_| message(payload)).collect();
        sends.spawn(async move {
            let sent = client.send_batch(queue, batch).await;
            drop(permit);
            sent
        });
        while let Some(done) = sends.try_join_next() {
            done??;
        }
    }
    while let Some(done) = sends.join_next().await {
        done??;
    }
    consumer.await??;
    let elapsed = started.elapsed();
    let stats = client.queue(queue).await?.stats;
    if stats.ready + stats.in_flight + stats.scheduled != 0 {
        bail!("messages left after the run: {stats:?}");
    }
    Ok(elapsed)
}

/// Consumes and acks `n_messages`, returning once every ack is confirmed.
async fn consume(client: &Client, mode: Mode, queue: &str, n_messages: usize) -> Result<()> {
    let mut acked = 0;
    match mode {
        Mode::HttpPull => {
            while acked < n_messages {
                let body = ReceiveBody {
                    max: PREFETCH,
                    wait_ms: 1000,
                    ..ReceiveBody::default()
                };
                let got = client.receive(queue, &body).await?.deliveries;
                if got.is_empty() {
                    continue;
                }
                let results = client
                    .ack(got.into_iter().map(|d| d.lease).collect())
                    .await?;
                if let Some(failed) = results.results.iter().find(|r| !r.ok) {
                    bail!("ack failed: {failed:?}");
                }
                acked += results.results.len();
            }
        }
        Mode::WebSocket => {
            let mut ws = client
                .consume(
                    queue,
                    &ConsumeStart {
                        prefetch: PREFETCH,
                        ..ConsumeStart::default()
                    },
                )
                .await?;
            while acked < n_messages {
                let frame = ws.next().await?.context("server closed the consumer")?;
                if let Some(error) = frame.error {
                    bail!("consumer failed: {}", error.message);
                }
                if !frame.failed.is_empty() {
                    bail!("ack failed: {:?}", frame.failed[0]);
                }
                acked += frame.settled.len();
                if !frame.deliveries.is_empty() {
                    ws.ack(frame.deliveries.into_iter().map(|d| d.lease).collect())
                        .await?;
                }
            }
            ws.close().await?;
        }
    }
    Ok(())
}

async fn round_trips(client: &Client, mode: Mode, n_rtt: usize, payload: &str) -> Result<Vec<f64>> {
    let queue = "bench.net.rtt";
    client.declare(queue, &QueueSpec::default()).await?;
    let mut samples = Vec::with_capacity(n_rtt);
    match mode {
        Mode::HttpPull => {
            for _ in 0..n_rtt {
                let start = Instant::now();
                client.send(queue, &message(payload)).await?;
                let body = ReceiveBody {
                    max: 1,
                    wait_ms: 5000,
                    ..ReceiveBody::default()
                };
                let got = client.receive(queue, &body).await?.deliveries;
                samples.push(micros_since(start));
                let lease = got.into_iter().next().context("no delivery")?.lease;
                client.ack(vec![lease]).await?;
            }
        }
        Mode::WebSocket => {
            let mut ws = client
                .consume(
                    queue,
                    &ConsumeStart {
                        prefetch: 10,
                        ..ConsumeStart::default()
                    },
                )
                .await?;
            for _ in 0..n_rtt {
                let start = Instant::now();
                let sender = {
                    let client = client.clone();
                    let body = message(payload);
                    tokio::spawn(
                        async move { client.send(queue, &body).await.map(|_| Instant::now()) },
                    )
                };
                let lease = loop {
                    let frame = ws.next().await?.context("server closed the consumer")?;
                    if let Some(d) = frame.deliveries.into_iter().next() {
                        break d.lease;
                    }
                };
                let held = Instant::now();
                let sent = sender.await??;
                // The sample ends when both the send returned and the consumer held it.
                samples.push(held.max(sent).duration_since(start).as_secs_f64() * 1e6);
                ws.ack(vec![lease]).await?;
            }
            ws.close().await?;
        }
    }
    Ok(samples)
}
