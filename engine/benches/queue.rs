//! Criterion benchmarks of the queue hot path, in-process, on a real SQLite
//! file with fsync on: one 256-byte message sent, received and acked; and
//! batches of 100. The comparative benchmark against RabbitMQ, NATS and
//! PostgreSQL lives in `bench/` (`switchyard-bench all`).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchyard::{Config, Engine, Outcome, OutgoingMessage, QueueSpec, ReceiveOptions};

const PAYLOAD_BYTES: usize = 256;

fn open(runtime: &tokio::runtime::Runtime, dir: &tempfile::TempDir) -> Engine {
    runtime.block_on(async {
        let mut config = Config::default();
        config.storage.data_dir = Some(dir.path().to_path_buf());
        let engine = Engine::open(config).await.expect("open engine");
        engine
            .queues()
            .declare(QueueSpec::new("bench"))
            .await
            .expect("declare");
        engine
    })
}

fn round_trip(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir_in("/var/tmp").expect("temp dir");
    let engine = open(&runtime, &dir);
    let payload = vec![0x5a_u8; PAYLOAD_BYTES];
    let mut group = c.benchmark_group("queue");
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    group.bench_function("send_receive_ack_1x256B_fsync", |b| {
        b.to_async(&runtime).iter(|| async {
            let queues = engine.queues();
            queues
                .send(
                    "bench",
                    OutgoingMessage::bytes("application/octet-stream", payload.clone()),
                )
                .await
                .unwrap();
            let delivery = queues
                .receive(
                    "bench",
                    ReceiveOptions {
                        n_max: 1,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            queues.ack(&delivery[0].lease).await.unwrap();
        })
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("send_receive_ack_100x256B_batched_fsync", |b| {
        b.to_async(&runtime).iter(|| async {
            let queues = engine.queues();
            let batch = (0..100)
                .map(|_| OutgoingMessage::bytes("application/octet-stream", payload.clone()))
                .collect();
            queues.send_batch("bench", batch).await.unwrap();
            let deliveries = queues
                .receive(
                    "bench",
                    ReceiveOptions {
                        n_max: 100,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let outcomes = deliveries
                .into_iter()
                .map(|d| (d.lease, Outcome::Ack))
                .collect();
            for result in queues.settle_all(outcomes).await {
                result.unwrap();
            }
        })
    });
    group.finish();
    runtime.block_on(engine.shutdown());
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
