//! PostgreSQL peer: a table used as a queue (through `tokio-postgres`).
//!
//! Creates a fresh table `(id bigserial primary key, payload bytea, created_at timestamptz)` and
//! drops it at the end. Every connection runs with `synchronous_commit=on`, and every statement is
//! its own autocommit transaction, so an insert (and a claim) returns only after its WAL fsync;
//! concurrent commits share fsyncs through PostgreSQL's ordinary group commit. The consumer claims
//! rows with `DELETE … WHERE id IN (SELECT … ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 256)
//! RETURNING id, payload`, which receives and acknowledges a batch in one step.
//!
//! - Throughput: no NOTIFY — a notifying transaction holds a database-wide lock through its
//!   commit, so notifying inserts commit (and fsync) one at a time, far below what the table
//!   takes. [`PRODUCERS`] connections each pipeline up to [`PIPELINE`] single-row autocommit
//!   INSERTs (one message, one statement, one commit — no client-side batching), while one
//!   consumer connection claims in a loop and, whenever a claim finds nothing, sleeps
//!   [`POLL_INTERVAL`] before polling again. Measured from the first insert to the moment the
//!   claiming DELETE that returned the last message came back.
//! - Round trip: LISTEN/NOTIFY, one message at a time. The consumer LISTENs on a channel named
//!   after the table and, when the table is empty, waits for a notification (or
//!   [`POLL_FALLBACK`] at most) before claiming again; one producer connection inserts a row and
//!   NOTIFYs in the same statement. Timed from just before the insert until the insert has
//!   committed *and* the consumer's DELETE has returned the row.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, stream};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls, Statement};

use super::{Measurement, RECEIVE_TIMEOUT, Unreachable, finish, joined, unique_name};

pub const NAME: &str = "PostgreSQL";
pub const DURABILITY: &str = "synchronous_commit=on (fsync); throughput: pipelined single-row \
     autocommit INSERTs from 16 connections, 2 in flight each, consumer polls SKIP LOCKED DELETE \
     batches of 256 (1 ms sleep when empty); round trip: INSERT + NOTIFY, consumer LISTENs";
const DURABILITY_NO_FSYNC: &str = "NOT DURABLE: server runs with fsync=off; throughput: pipelined \
     single-row autocommit INSERTs from 16 connections, 2 in flight each, consumer polls SKIP \
     LOCKED DELETE batches of 256 (1 ms sleep when empty); round trip: INSERT + NOTIFY, consumer \
     LISTENs";

/// Producer connections in the throughput phase. A backend runs one connection's statements one
/// after another, each waiting for its own commit, so only separate connections commit
/// concurrently and share WAL fsyncs (group commit).
pub const PRODUCERS: usize = 16;
/// Inserts in flight per producer connection (the next one is queued while one commits).
pub const PIPELINE: usize = 2;
/// Rows claimed per DELETE.
pub const CLAIM_BATCH: usize = 256;
/// Throughput phase: how long the consumer sleeps after a claim that found nothing.
pub const POLL_INTERVAL: Duration = Duration::from_millis(1);
/// Round-trip phase: longest wait for a notification before the consumer claims again anyway.
pub const POLL_FALLBACK: Duration = Duration::from_millis(100);

/// Runs both phases against the server described by `conn_str`
/// (e.g. `host=127.0.0.1 user=postgres dbname=test`).
pub async fn run(
    conn_str: &str,
    n_messages: usize,
    n_rtt: usize,
    payload: &[u8],
) -> Result<Measurement> {
    let admin = connect(conn_str).await?;
    let durability = durability(&admin).await?;
    let table = unique_name("switchyard_bench");
    admin
        .batch_execute(&format!(
            "CREATE TABLE {table} (id bigserial PRIMARY KEY, payload bytea NOT NULL, \
             created_at timestamptz NOT NULL DEFAULT now())"
        ))
        .await
        .with_context(|| format!("creating table {table}"))?;

    let outcome = measure(conn_str, &table, n_messages, n_rtt, payload).await;

    let dropped = admin
        .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
        .await
        .with_context(|| format!("dropping table {table}"));
    let (elapsed, rtt_us) = outcome?;
    dropped?;
    Ok(Measurement::new(
        NAME, durability, n_messages, elapsed, rtt_us,
    ))
}

/// Opens a connection whose driver runs on its own task.
async fn connect(conn_str: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(conn_str, NoTls)
        .await
        .context(Unreachable)?;
    // A connection error ends this task; the client's next query then reports it.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
        .batch_execute("SET synchronous_commit = on")
        .await
        .context("setting synchronous_commit")?;
    Ok(client)
}

async fn durability(client: &Client) -> Result<&'static str> {
    let row = client
        .query_one("SHOW fsync", &[])
        .await
        .context("reading the server's fsync setting")?;
    let fsync: String = row.try_get(0).context("decoding SHOW fsync")?;
    Ok(if fsync == "on" {
        DURABILITY
    } else {
        DURABILITY_NO_FSYNC
    })
}

async fn measure(
    conn_str: &str,
    table: &str,
    n_messages: usize,
    n_rtt: usize,
    payload: &[u8],
) -> Result<(Duration, Vec<f64>)> {
    let mut producers = Vec::with_capacity(PRODUCERS);
    for _ in 0..PRODUCERS {
        producers.push(Arc::new(Producer::connect(conn_str, table).await?));
    }
    let consumer = Consumer::connect(conn_str, table).await?;
    let payload: Arc<[u8]> = payload.into();
    let (consumer, elapsed) = throughput(&producers, consumer, n_messages, &payload).await?;
    let first = producers.first().context("no producer connection")?;
    let rtt_us = round_trips(first, consumer, n_rtt, &payload).await?;
    Ok((elapsed, rtt_us))
}

/// A producer connection with two prepared inserts: a plain one for the throughput phase and one
/// that also NOTIFYs the consumer, in the same statement, for the round-trip phase.
struct Producer {
    client: Client,
    insert: Statement,
    insert_notify: Statement,
}

impl Producer {
    async fn connect(conn_str: &str, table: &str) -> Result<Self> {
        let client = connect(conn_str).await?;
        let insert = client
            .prepare(&format!("INSERT INTO {table} (payload) VALUES ($1)"))
            .await
            .context("preparing the insert")?;
        let insert_notify = client
            .prepare(&format!(
                "WITH ins AS (INSERT INTO {table} (payload) VALUES ($1) RETURNING id) \
                 SELECT pg_notify('{table}', '') FROM ins"
            ))
            .await
            .context("preparing the insert with NOTIFY")?;
        Ok(Self {
            client,
            insert,
            insert_notify,
        })
    }

    /// Inserts one row in its own transaction; returns once it has committed.
    async fn insert(&self, payload: &[u8]) -> Result<()> {
        self.client
            .execute(&self.insert, &[&payload])
            .await
            .context("inserting a message")?;
        Ok(())
    }

    /// Inserts one row and notifies the consumer, in one transaction.
    async fn insert_and_notify(&self, payload: &[u8]) -> Result<()> {
        self.client
            .execute(&self.insert_notify, &[&payload])
            .await
            .context("inserting and notifying a message")?;
        Ok(())
    }

    /// Inserts `n` rows without NOTIFY, keeping up to `PIPELINE` in flight on this connection.
    async fn insert_many(self: Arc<Self>, n: usize, payload: Arc<[u8]>) -> Result<()> {
        let mut inserts = stream::iter(0..n)
            .map(|_| self.insert(&payload))
            .buffer_unordered(PIPELINE);
        while let Some(inserted) = inserts.next().await {
            inserted?;
        }
        Ok(())
    }
}

/// What the consumer does when a claim finds the table empty.
#[derive(Debug, Clone, Copy)]
enum WhenEmpty {
    /// Sleep [`POLL_INTERVAL`], then claim again (throughput phase).
    Sleep,
    /// Wait for a notification, or [`POLL_FALLBACK`] at most (round-trip phase, after LISTEN).
    AwaitNotification,
}

/// A connection that claims (deletes and returns) rows in batches, and can LISTEN for inserts.
struct Consumer {
    client: Client,
    table: String,
    claim: Statement,
    notifications: mpsc::UnboundedReceiver<()>,
}

impl Consumer {
    async fn connect(conn_str: &str, table: &str) -> Result<Self> {
        let (client, mut connection) = tokio_postgres::connect(conn_str, NoTls)
            .await
            .context(Unreachable)?;
        let (tx, notifications) = mpsc::unbounded_channel();
        // Drives the connection and forwards notifications; ends when either side goes away.
        tokio::spawn(async move {
            let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if matches!(message, AsyncMessage::Notification(_)) && tx.send(()).is_err() {
                    break;
                }
            }
        });
        client
            .batch_execute("SET synchronous_commit = on")
            .await
            .context("setting synchronous_commit")?;
        let sql = format!(
            "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} ORDER BY id \
             FOR UPDATE SKIP LOCKED LIMIT {CLAIM_BATCH}) RETURNING id, payload"
        );
        let claim = client.prepare(&sql).await.context("preparing the claim")?;
        Ok(Self {
            client,
            table: table.to_owned(),
            claim,
            notifications,
        })
    }

    /// Starts listening on the table's channel (for the round-trip phase).
    async fn listen(&self) -> Result<()> {
        let table = &self.table;
        self.client
            .batch_execute(&format!("LISTEN {table}"))
            .await
            .with_context(|| format!("LISTEN {table}"))
    }

    /// Claims up to `CLAIM_BATCH` rows; returns how many.
    async fn claim(&mut self) -> Result<usize> {
        // Rows committed before this DELETE are visible to it, so their wake-ups are stale.
        while self.notifications.try_recv().is_ok() {}
        let rows = self
            .client
            .query(&self.claim, &[])
            .await
            .context("claiming messages")?;
        for row in &rows {
            let _payload: &[u8] = row.try_get(1).context("decoding a payload")?;
        }
        Ok(rows.len())
    }

    /// Waits for an insert's notification, or `POLL_FALLBACK` at most.
    async fn wait_for_notification(&mut self) -> Result<()> {
        match tokio::time::timeout(POLL_FALLBACK, self.notifications.recv()).await {
            Ok(None) => bail!("the LISTEN connection closed"),
            Ok(Some(())) | Err(_) => Ok(()),
        }
    }

    /// Claims until `n` rows have arrived, sending each row's arrival time to `receipts` if
    /// given; returns the consumer and when the claim that returned the last row came back.
    async fn consume(
        mut self,
        n: usize,
        when_empty: WhenEmpty,
        receipts: Option<mpsc::UnboundedSender<Instant>>,
    ) -> Result<(Self, Instant)> {
        let mut received = 0;
        let mut last_claim = Instant::now();
        while received < n {
            let claimed = self.claim().await?;
            if claimed == 0 {
                match when_empty {
                    WhenEmpty::Sleep => tokio::time::sleep(POLL_INTERVAL).await,
                    WhenEmpty::AwaitNotification => self.wait_for_notification().await?,
                }
                continue;
            }
            last_claim = Instant::now();
            received += claimed;
            if let Some(receipts) = &receipts {
                for _ in 0..claimed {
                    // The receiver only goes away once the producer has given up.
                    let _ = receipts.send(last_claim);
                }
            }
        }
        Ok((self, last_claim))
    }
}

/// All producers and the polling consumer run as separate tasks; returns the consumer for the
/// next phase.
async fn throughput(
    producers: &[Arc<Producer>],
    consumer: Consumer,
    n_messages: usize,
    payload: &Arc<[u8]>,
) -> Result<(Consumer, Duration)> {
    let start = Instant::now();
    let consuming = tokio::spawn(consumer.consume(n_messages, WhenEmpty::Sleep, None));
    let mut producing = Vec::with_capacity(producers.len());
    for (i, producer) in producers.iter().enumerate() {
        let share = n_messages / producers.len() + usize::from(i < n_messages % producers.len());
        producing.push(tokio::spawn(
            Arc::clone(producer).insert_many(share, Arc::clone(payload)),
        ));
    }
    let mut produced = Ok(());
    for task in producing {
        // Keep the first failure, but wait for every producer before going on.
        produced = produced.and(joined(task).await);
    }
    let ((), (consumer, last_claim)) = finish(produced, consuming).await?;
    Ok((consumer, last_claim.duration_since(start)))
}

/// The consumer LISTENs and runs as a task while this inserts and notifies one row at a time.
async fn round_trips(
    producer: &Producer,
    consumer: Consumer,
    n_rtt: usize,
    payload: &[u8],
) -> Result<Vec<f64>> {
    consumer.listen().await?;
    let (tx, mut receipts) = mpsc::unbounded_channel();
    let consuming = tokio::spawn(consumer.consume(n_rtt, WhenEmpty::AwaitNotification, Some(tx)));
    let sampled = sample_round_trips(producer, &mut receipts, n_rtt, payload).await;
    let (samples, _) = finish(sampled, consuming).await?;
    Ok(samples)
}

async fn sample_round_trips(
    producer: &Producer,
    receipts: &mut mpsc::UnboundedReceiver<Instant>,
    n_rtt: usize,
    payload: &[u8],
) -> Result<Vec<f64>> {
    let mut samples = Vec::with_capacity(n_rtt);
    for _ in 0..n_rtt {
        let start = Instant::now();
        producer.insert_and_notify(payload).await?;
        let inserted = Instant::now();
        let received = tokio::time::timeout(RECEIVE_TIMEOUT, receipts.recv())
            .await
            .context("no message within the receive timeout")?
            .context("the consumer stopped early")?;
        samples.push(received.max(inserted).duration_since(start).as_secs_f64() * 1e6);
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::{CLAIM_BATCH, DURABILITY, DURABILITY_NO_FSYNC, PIPELINE, POLL_INTERVAL, PRODUCERS};

    /// The table's durability column must describe what the constants actually make it do.
    #[test]
    fn durability_strings_match_the_constants() {
        let producers = format!("from {PRODUCERS} connections, {PIPELINE} in flight each");
        let claims = format!("DELETE batches of {CLAIM_BATCH}");
        let sleep = format!("({} ms sleep when empty)", POLL_INTERVAL.as_millis());
        for durability in [DURABILITY, DURABILITY_NO_FSYNC] {
            assert!(durability.contains(&producers), "{durability}");
            assert!(durability.contains(&claims), "{durability}");
            assert!(durability.contains(&sleep), "{durability}");
        }
    }
}
