//! `QueueStore` on SQLite: queue rows, message rows, leases and dead letters.
//!
//! A message's delivery state lives in its columns `state`, `visible_at`,
//! `attempts`, `lease_gen` and `expires_at`, mirrored by the writer's
//! in-memory [`Index`], which decides the delivery order and lets claims and
//! acks decide without reading rows (they write runs of consecutive seqs
//! with one statement each). An expired lease needs no sweeper: a leased
//! message whose `visible_at` (the lease end) has passed is simply visible
//! again.
//!
//! Every job changes the index only after its last fallible database
//! operation (collecting [`IndexMove`]s and applying them at the end), so a
//! job rolled back to its savepoint leaves the index as it was.

use rusqlite::{Connection, OptionalExtension, Row, params};
use rustc_hash::FxHashMap;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::envelope::{MessageId, Payload, TraceParent};
use crate::storage::sqlite::index::{Body, Entry, Index, NEVER_LEASED};
use crate::storage::sqlite::{SqliteStore, Writer, backend};
use crate::storage::{
    Answered, ClaimOrWait, ClaimPolicy, ClaimResult, DeadLetterQuery, DeadLettered, DeadReason,
    DeathRecord, HistoryEntry, InsertPolicy, InsertResult, Inserted, LeaseRef, MaintenanceReport,
    MessageState, NewMessage, OverflowAction, QueueCounts, QueueId, QueueRow, QueueStore, Result,
    Settlement, StaleReason, StorageError, StoredMessage, WaitTicket,
};

/// The columns `read_message` decodes, in order. A macro so that hot
/// statements are built with `concat!` at compile time, not per call.
macro_rules! message_columns {
    () => {
        "seq, queue_id, id, state, visible_at, attempts, enqueued_at, expires_at, content_type, payload, \
         envelope, last_error, dead_reason, dead_origin, dead_at, dead_attempts, history, lease_gen, traceparent"
    };
}
const MESSAGE_COLUMNS: &str = message_columns!();
/// The lease still holds: same attempt, still leased, not expired.
macro_rules! lease_held {
    () => {
        "seq = ?1 AND queue_id = ?2 AND lease_gen = ?3 AND state = 1 AND visible_at > ?4"
    };
}

/// A change to the index, applied once the job's database work succeeded.
#[derive(Clone, Copy, Debug)]
enum IndexMove {
    /// The message is now in `queue_id` at `visible_at`, as `entry` says.
    Put {
        queue_id: QueueId,
        seq: i64,
        visible_at: i64,
        entry: Entry,
    },
    /// The message moved within its queue; a `lease_gen` is a new lease
    /// (which counts an attempt).
    Update {
        queue_id: QueueId,
        seq: i64,
        visible_at: i64,
        state: MessageState,
        lease_gen: Option<i64>,
    },
    /// The message left `queue_id` (acked, parked, purged, moved away).
    Remove { queue_id: QueueId, seq: i64 },
}

fn apply(index: &mut Index, moves: impl IntoIterator<Item = IndexMove>) {
    for change in moves {
        match change {
            IndexMove::Put {
                queue_id,
                seq,
                visible_at,
                entry,
            } => index.put(queue_id, seq, visible_at, entry),
            IndexMove::Update {
                queue_id,
                seq,
                visible_at,
                state,
                lease_gen,
            } => index.update(queue_id, seq, visible_at, state, lease_gen),
            IndexMove::Remove { queue_id, seq } => index.remove(queue_id, seq),
        }
    }
}

impl QueueStore for SqliteStore {
    async fn queues(&self) -> Result<Vec<QueueRow>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT id, name, settings, created_at FROM queues ORDER BY name")
                .map_err(|e| backend("list queues", e))?;
            let rows = stmt
                .query_map([], |row| {
                    Ok(QueueRow {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        settings: row.get(2)?,
                        created_at: Timestamp(row.get(3)?),
                    })
                })
                .map_err(|e| backend("list queues", e))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| backend("list queues", e))
        })
        .await
    }

    async fn create_queue(
        &self,
        name: String,
        settings: String,
        now: Timestamp,
    ) -> Result<QueueRow> {
        self.write(move |conn, index| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO queues (name, settings, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
                )
                .and_then(|mut stmt| stmt.execute(params![name, settings, now.0]))
                .map_err(|e| backend("declare a queue", e))?;
            if inserted == 0 {
                return Err(StorageError::QueueExists { name });
            }
            let id = conn.last_insert_rowid();
            index.queue_mut(id);
            Ok(QueueRow { id, name, settings, created_at: now })
        })
        .await
    }

    async fn delete_queue(&self, queue_id: QueueId) -> Result<u64> {
        self.write_atomic(move |conn, index| {
            let n_messages = conn
                .execute("DELETE FROM messages WHERE queue_id = ?1", [queue_id])
                .map_err(|e| backend("delete a queue's messages", e))?;
            conn.execute("DELETE FROM dedup WHERE queue_id = ?1", [queue_id])
                .map_err(|e| backend("delete a queue's dedup keys", e))?;
            conn.execute("DELETE FROM queues WHERE id = ?1", [queue_id])
                .map_err(|e| backend("delete a queue", e))?;
            index.remove_queue(queue_id);
            Ok(n_messages as u64)
        })
        .await
    }

    async fn insert(
        &self,
        queue_id: QueueId,
        messages: Vec<NewMessage>,
        policy: InsertPolicy,
    ) -> Result<InsertResult> {
        // A single message without limits cannot half-succeed: skip the savepoint.
        // A message with an idempotency key writes two rows; limits may
        // dead-letter others first: only a single plain message is one
        // statement that cannot half-succeed.
        let atomic = messages.len() > 1
            || policy.length_max.is_some()
            || messages.iter().any(|m| m.idempotency_key.is_some());
        let job = move |conn: &Writer<'_>, index: &mut Index| {
            insert_messages(conn, index, queue_id, messages, &policy)
        };
        if atomic {
            self.write_atomic(job).await
        } else {
            self.write(job).await
        }
    }

    async fn claim(
        &self,
        queue_id: QueueId,
        n_max: u32,
        policy: ClaimPolicy,
    ) -> Result<ClaimResult> {
        // Leases are answered at commit, not after the fsync: see
        // `Answered::AtCommit` (a power cut can lose a lease, never a message).
        self.write_at_commit(move |conn, index| {
            claim_messages(conn, index, queue_id, n_max, &policy)
        })
        .await
    }

    async fn claim_or_wait(
        &self,
        queue_id: QueueId,
        n_max: u32,
        policy: ClaimPolicy,
    ) -> Result<ClaimOrWait> {
        self.write_at_commit(move |conn, index| {
            let claimed = claim_messages(conn, index, queue_id, n_max, &policy)?;
            if !claimed.deliveries.is_empty() || !claimed.dead_lettered.is_empty() {
                return Ok(ClaimOrWait::Claimed(claimed));
            }
            let (reply, deliveries) = oneshot::channel();
            let lease_ms = policy.lease_until.0 - policy.now.0;
            let id = index.add_waiter(queue_id, n_max, lease_ms, reply);
            let next_visible_at = index
                .queue(queue_id)
                .and_then(|q| q.next_visible_after(policy.now.0))
                .map(Timestamp);
            Ok(ClaimOrWait::Waiting(WaitTicket {
                id,
                next_visible_at,
                deliveries,
            }))
        })
        .await
    }

    async fn cancel_wait(&self, queue_id: QueueId, waiter_id: u64) -> Result<bool> {
        self.write(move |_, index| Ok(index.remove_waiter(queue_id, waiter_id)))
            .await
    }

    async fn settle(
        &self,
        lease: LeaseRef,
        settlement: Settlement,
        now: Timestamp,
    ) -> Result<MessageId> {
        let mut results = self
            .settle_many(vec![(lease, settlement)], now, Answered::WhenDurable)
            .await?;
        results.pop().expect("one result per settlement")
    }

    async fn settle_many(
        &self,
        settlements: Vec<(LeaseRef, Settlement)>,
        now: Timestamp,
        answered: Answered,
    ) -> Result<Vec<Result<MessageId>>> {
        // Each settlement is one independent change that either happens whole
        // or not at all; a stale one does not stop the others.
        let job = move |conn: &Writer<'_>, index: &mut Index| {
            let mut results: Vec<Option<Result<MessageId>>> = std::iter::repeat_with(|| None)
                .take(settlements.len())
                .collect();
            // Acks whose leases hold, deleted together by runs of seqs.
            let mut acks: Vec<PendingAck> = Vec::new();
            for (at, (lease, settlement)) in settlements.into_iter().enumerate() {
                if conn.is_autocommit() {
                    // The batch was rolled back (see `delete_acked`): nothing
                    // more may be written outside it.
                    results[at] = Some(Err(batch_rolled_back()));
                    continue;
                }
                if matches!(settlement, Settlement::Ack) && index.lease_holds(lease, now.0) {
                    acks.push(PendingAck { lease, at });
                    continue;
                }
                // A stale ack, a retry or a dead-lettering: on its own, after
                // the acks before it (it may name one of them).
                delete_acked(conn, index, &mut acks, &mut results);
                let settled =
                    settle_message(conn, index, lease, settlement, now).map(|(id, change)| {
                        apply(index, change);
                        id
                    });
                results[at] = Some(settled);
            }
            delete_acked(conn, index, &mut acks, &mut results);
            Ok(results
                .into_iter()
                .map(|result| result.unwrap_or(Err(StorageError::Closed)))
                .collect())
        };
        self.submit(job, false, answered).await
    }

    async fn expire(
        &self,
        queue_id: QueueId,
        queue_name: String,
        dead_letter_to: Option<QueueId>,
        now: Timestamp,
        n_max: u32,
    ) -> Result<Vec<DeadLettered>> {
        self.write_atomic(move |conn, index| {
            let expired = conn
                .prepare_cached(
                    "SELECT seq, id, attempts FROM messages
                     WHERE queue_id = ?1 AND expires_at <= ?2 AND state IN (0, 2) ORDER BY expires_at LIMIT ?3",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![queue_id, now.0, n_max], |row| {
                        Ok((row.get::<_, i64>(0)?, read_id(row, 1)?, row.get::<_, u32>(2)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(|e| backend("find expired messages", e))?;
            let mut dead = Vec::with_capacity(expired.len());
            let mut moves = Vec::with_capacity(expired.len() * 2);
            for (seq, id, attempts) in expired {
                let death = Death { reason: DeadReason::Expired, to: dead_letter_to, error: None, queue_name: &queue_name };
                let (record, index_moves) = dead_letter(conn, queue_id, seq, &death, now)?;
                debug_assert_eq!((record.id, record.attempts), (id, attempts));
                moves.extend(index_moves);
                dead.push(record);
            }
            apply(index, moves);
            Ok(dead)
        })
        .await
    }

    async fn next_visible_at(
        &self,
        queue_id: QueueId,
        now: Timestamp,
    ) -> Result<Option<Timestamp>> {
        self.write(move |_, index| {
            Ok(index
                .queue(queue_id)
                .and_then(|queue| queue.next_visible_after(now.0))
                .map(Timestamp))
        })
        .await
    }

    async fn peek(&self, queue_id: QueueId, n_max: u32) -> Result<Vec<StoredMessage>> {
        self.write(move |conn, index| {
            let seqs = index
                .queue(queue_id)
                .map(|queue| queue.first(n_max as usize))
                .unwrap_or_default();
            seqs.into_iter()
                .map(|seq| message_by_seq(conn, seq))
                .collect()
        })
        .await
    }

    async fn counts(
        &self,
        queue_id: QueueId,
        queue_name: String,
        now: Timestamp,
    ) -> Result<QueueCounts> {
        self.write(move |conn, index| {
            let (ready, in_flight, scheduled, oldest) = index
                .queue(queue_id)
                .map(|queue| queue.counts(now.0))
                .unwrap_or_default();
            let (dead_lettered, parked) = count_dead(conn, queue_id, &queue_name)?;
            Ok(QueueCounts {
                ready,
                in_flight,
                scheduled,
                dead_lettered,
                parked,
                oldest_enqueued_at: oldest.map(Timestamp),
            })
        })
        .await
    }

    async fn dead_letters(&self, query: DeadLetterQuery) -> Result<Vec<StoredMessage>> {
        self.read(move |conn| {
            let (filter, args) = dead_letter_filter(&query);
            let limit = query
                .limit
                .map(|n| format!(" LIMIT {n}"))
                .unwrap_or_default();
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE {filter} ORDER BY seq{limit}"
            );
            query_messages(
                conn,
                &sql,
                rusqlite::params_from_iter(args),
                "list dead letters",
            )
        })
        .await
    }

    async fn count_dead_letters(&self, query: DeadLetterQuery) -> Result<u64> {
        self.read(move |conn| {
            let (filter, args) = dead_letter_filter(&query);
            let sql = format!("SELECT COUNT(*) FROM messages WHERE {filter}");
            conn.query_row(&sql, rusqlite::params_from_iter(args), |row| {
                row.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|e| backend("count dead letters", e))
        })
        .await
    }

    async fn redrive_dead_letters(
        &self,
        query: DeadLetterQuery,
        to: QueueId,
        to_name: String,
        action: &'static str,
        now: Timestamp,
    ) -> Result<Vec<MessageId>> {
        self.write_atomic(move |conn, index| {
            let (ids, moves) = redrive(conn, &query, to, &to_name, action, now)?;
            apply(index, moves);
            Ok(ids)
        })
        .await
    }

    async fn purge_dead_letters(&self, query: DeadLetterQuery) -> Result<u64> {
        self.write(move |conn, index| {
            let (filter, args) = dead_letter_filter(&query);
            let sql = format!("DELETE FROM messages WHERE {filter} RETURNING queue_id, seq");
            let removed = conn
                .prepare(&sql)
                .and_then(|mut stmt| {
                    stmt.query_map(rusqlite::params_from_iter(args), |row| {
                        Ok(IndexMove::Remove {
                            queue_id: row.get(0)?,
                            seq: row.get(1)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(|e| backend("purge dead letters", e))?;
            let n = removed.len() as u64;
            apply(index, removed);
            Ok(n)
        })
        .await
    }

    async fn maintain(&self, now: Timestamp) -> Result<MaintenanceReport> {
        let in_file = self.options().path.is_some();
        let dedup_keys_removed = self
            .write(move |conn, _| {
                conn.execute("DELETE FROM dedup WHERE expires_at <= ?1", [now.0])
                    .map(|n| n as u64)
                    .map_err(|e| backend("forget expired dedup keys", e))
            })
            .await?;
        if !in_file {
            return Ok(MaintenanceReport {
                dedup_keys_removed,
                ..MaintenanceReport::default()
            });
        }
        // Vacuuming and checkpointing cannot run inside the batch
        // transaction: this job commits what the batch did so far, does its
        // work outside any transaction, and opens the next one.
        let pages_freed = self
            .write(|conn, _| {
                let free: i64 = conn
                    .query_row("PRAGMA freelist_count", [], |row| row.get(0))
                    .map_err(|e| backend("read the free list", e))?;
                conn.execute_batch("COMMIT")
                    .map_err(|e| backend("commit before vacuuming", e))?;
                // The writer may run with synchronous=OFF (its commits are
                // fsynced by the fsync threads). A checkpoint must sync the
                // WAL before copying it and the database before truncating
                // it, or a power cut could lose acknowledged commits: sync
                // for real while vacuuming and checkpointing.
                let synchronous: i64 = conn
                    .query_row("PRAGMA synchronous", [], |row| row.get(0))
                    .map_err(|e| backend("read the sync mode", e))?;
                conn.execute_batch("PRAGMA synchronous = FULL")
                    .map_err(|e| backend("sync for the checkpoint", e))?;
                let vacuumed = vacuum_and_checkpoint(conn);
                conn.execute_batch(&format!("PRAGMA synchronous = {synchronous}"))
                    .map_err(|e| backend("restore the sync mode", e))?;
                conn.execute_batch("BEGIN IMMEDIATE")
                    .map_err(|e| backend("reopen the batch transaction", e))?;
                vacuumed?;
                Ok(free as u64)
            })
            .await?;
        let (size_bytes, wal_bytes) = self.read(file_sizes).await?;
        Ok(MaintenanceReport {
            dedup_keys_removed,
            pages_freed,
            size_bytes,
            wal_bytes,
        })
    }
}

/// A waiting consumer's remaining room in this insert.
struct Room {
    waiter_id: u64,
    n_free: u32,
    lease_ms: i64,
    served: Vec<StoredMessage>,
}

/// The statement that stores a new message ([`Writer::insert_message`]).
pub(super) const INSERT_MESSAGE: &str = "INSERT INTO messages (queue_id, id, state, visible_at, attempts, enqueued_at, expires_at, content_type, payload, envelope, lease_gen, traceparent, seq)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

fn insert_messages(
    conn: &Writer<'_>,
    index: &mut Index,
    queue_id: QueueId,
    messages: Vec<NewMessage>,
    policy: &InsertPolicy,
) -> Result<InsertResult> {
    let mut result = InsertResult {
        inserted: Vec::with_capacity(messages.len()),
        dead_lettered: Vec::new(),
    };
    let mut to_store = Vec::with_capacity(messages.len());
    for message in messages {
        if let Some(key) = &message.idempotency_key
            && let Some(first) = find_dedup(conn, queue_id, key, policy.now)?
        {
            result.inserted.push(Inserted {
                id: first,
                duplicate: true,
            });
            continue;
        }
        result.inserted.push(Inserted {
            id: message.id,
            duplicate: false,
        });
        to_store.push(message);
    }
    let mut moves = Vec::with_capacity(to_store.len() + 1);
    if let Some(length_max) = policy.length_max {
        moves.extend(make_room(
            conn,
            index,
            queue_id,
            length_max,
            to_store.len() as u64,
            policy,
            &mut result,
        )?);
    }
    // Consumers waiting on an empty queue get new messages straight from
    // the insert, already leased (attempt 1), if nothing older is waiting.
    let backlog = index
        .queue(queue_id)
        .is_some_and(|q| !q.visible(policy.now.0, 1).is_empty());
    let mut rooms: Vec<Room> = if backlog {
        Vec::new()
    } else {
        index
            .waiters(queue_id)
            .iter()
            .map(|w| Room {
                waiter_id: w.id,
                n_free: w.n_max,
                lease_ms: w.lease_ms,
                served: Vec::new(),
            })
            .collect()
    };
    let mut stmt = conn.insert_message()?;
    let mut kept = Vec::with_capacity(to_store.len());
    for message in to_store {
        let deliverable =
            message.visible_at <= policy.now && message.expires_at.is_none_or(|at| at > policy.now);
        let room = if deliverable {
            rooms.iter_mut().find(|r| r.n_free > 0)
        } else {
            None
        };
        let (state, visible_at, attempts, lease_gen) = match &room {
            Some(room) => (
                MessageState::Leased,
                policy.now.0 + room.lease_ms,
                1,
                index.next_lease_gen(),
            ),
            None => (MessageState::Ready, message.visible_at.0, 0, NEVER_LEASED),
        };
        let seq = index.next_seq();
        // Bound one by one with their types known (no `dyn ToSql` per
        // parameter): every parameter of the statement is bound here.
        (|| {
            stmt.raw_bind_parameter(1, queue_id)?;
            stmt.raw_bind_parameter(2, message.id.0.as_bytes())?;
            stmt.raw_bind_parameter(3, state.code())?;
            stmt.raw_bind_parameter(4, visible_at)?;
            stmt.raw_bind_parameter(5, attempts)?;
            stmt.raw_bind_parameter(6, policy.now.0)?;
            stmt.raw_bind_parameter(7, message.expires_at.map(|t| t.0))?;
            stmt.raw_bind_parameter(8, &message.payload.content_type)?;
            stmt.raw_bind_parameter(9, &message.payload.bytes)?;
            stmt.raw_bind_parameter(10, &message.envelope)?;
            stmt.raw_bind_parameter(11, lease_gen)?;
            stmt.raw_bind_parameter(12, message.traceparent.map(|tp| tp.to_bytes()))?;
            stmt.raw_bind_parameter(13, seq)?;
            stmt.raw_execute()
        })()
        .map_err(|e| backend("insert a message", e))?;
        if let Some(key) = &message.idempotency_key {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO dedup (queue_id, key, message_id, expires_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![queue_id, key, message.id.0.as_bytes(), policy.dedup_until.0]))
            .map_err(|e| backend("record an idempotency key", e))?;
        }
        moves.push(IndexMove::Put {
            queue_id,
            seq,
            visible_at,
            entry: Entry {
                id: message.id,
                state,
                enqueued_at: policy.now.0,
                attempts,
                lease_gen,
                expires_at: message.expires_at.map(|t| t.0),
            },
        });
        match room {
            Some(room) => {
                room.n_free -= 1;
                let mut leased = stored(
                    seq, queue_id, message, state, attempts, visible_at, policy.now,
                );
                leased.lease_gen = lease_gen;
                room.served.push(leased);
            }
            // Kept for the claim that will deliver it (soon, if consumers keep up).
            None if deliverable => kept.push((
                seq,
                Body {
                    payload: message.payload,
                    envelope: message.envelope,
                    traceparent: message.traceparent,
                },
            )),
            None => {}
        }
    }
    apply(index, moves);
    for (seq, body) in kept {
        index.keep_body(seq, body);
    }
    for room in rooms.into_iter().filter(|room| !room.served.is_empty()) {
        let served = ClaimResult {
            deliveries: room.served,
            dead_lettered: Vec::new(),
        };
        index.serve_waiter(queue_id, room.waiter_id, served);
    }
    Ok(result)
}

/// The stored form of a message just inserted.
fn stored(
    seq: i64,
    queue_id: QueueId,
    message: NewMessage,
    state: MessageState,
    attempts: u32,
    visible_at: i64,
    now: Timestamp,
) -> StoredMessage {
    StoredMessage {
        seq,
        queue_id,
        id: message.id,
        payload: message.payload,
        envelope: message.envelope,
        traceparent: message.traceparent,
        state,
        attempts,
        enqueued_at: now,
        visible_at: Timestamp(visible_at),
        expires_at: message.expires_at,
        last_error: None,
        death: None,
        history: Vec::new(),
        lease_gen: NEVER_LEASED,
    }
}

/// Enforces a queue's maximum length before `n_new` messages go in.
fn make_room(
    conn: &Connection,
    index: &Index,
    queue_id: QueueId,
    length_max: u64,
    n_new: u64,
    policy: &InsertPolicy,
    result: &mut InsertResult,
) -> Result<Vec<IndexMove>> {
    let queue = index.queue(queue_id);
    let n_current = queue.map_or(0, |q| q.len()) as u64;
    let n_over = (n_current + n_new).saturating_sub(length_max);
    if n_over == 0 {
        return Ok(Vec::new());
    }
    let to = match policy.overflow {
        OverflowAction::Reject => return Err(StorageError::QueueFull { length_max }),
        OverflowAction::DeadLetterOldest { to } => to,
    };
    // Oldest first, among messages not currently leased to a consumer.
    let oldest = queue
        .map(|q| q.oldest_unleased(n_over as usize))
        .unwrap_or_default();
    if n_new > length_max || (oldest.len() as u64) < n_over {
        return Err(StorageError::QueueFull { length_max });
    }
    let mut moves = Vec::new();
    for seq in oldest {
        let death = Death {
            reason: DeadReason::Overflow,
            to,
            error: None,
            queue_name: &policy.queue_name,
        };
        let (dead, change) = dead_letter(conn, queue_id, seq, &death, policy.now)?;
        moves.extend(change);
        result.dead_lettered.push(dead);
    }
    Ok(moves)
}

/// Leases the next visible messages, dead-lettering on the way those out of
/// attempts or expired.
///
/// Without a savepoint: SQLite copies every page first written inside one
/// to a journal, to undo it, and that was 5% of the writer's time. A claim
/// can fail only on an I/O error, which makes SQLite roll the transaction
/// back itself, or on a corrupt index; so on any error the claim rolls the
/// whole batch back, its callers are answered with the error, and the
/// writer reloads the index.
fn claim_messages(
    conn: &Connection,
    index: &mut Index,
    queue_id: QueueId,
    n_max: u32,
    policy: &ClaimPolicy,
) -> Result<ClaimResult> {
    lease_messages(conn, index, queue_id, n_max, policy).inspect_err(|_| {
        let _ = conn.execute_batch("ROLLBACK");
    })
}

fn lease_messages(
    conn: &Connection,
    index: &mut Index,
    queue_id: QueueId,
    n_max: u32,
    policy: &ClaimPolicy,
) -> Result<ClaimResult> {
    assert!(
        policy.lease_until > policy.now,
        "a lease must end in the future"
    );
    let candidates = index
        .queue(queue_id)
        .map(|q| q.visible(policy.now.0, n_max as usize))
        .unwrap_or_default();
    let mut result = ClaimResult {
        deliveries: Vec::with_capacity(candidates.len()),
        dead_lettered: Vec::new(),
    };
    let mut moves = Vec::with_capacity(candidates.len());
    let mut queue_name_cache: Option<String> = None;
    // (seq, entry before the lease), in delivery order.
    let mut to_lease = Vec::with_capacity(candidates.len());
    for seq in candidates {
        let entry = index.entry(queue_id, seq).ok_or_else(|| {
            StorageError::Corrupt(format!("indexed message seq {seq} has no entry"))
        })?;
        let reason = if entry.expires_at.is_some_and(|at| at <= policy.now.0)
            && entry.state != MessageState::Leased
        {
            Some(DeadReason::Expired)
        } else if entry.attempts >= policy.attempts_max {
            // Its last lease ran out: the consumer died or hung on the final attempt.
            Some(DeadReason::MaxRetries)
        } else {
            None
        };
        let Some(reason) = reason else {
            to_lease.push((seq, entry));
            continue;
        };
        if queue_name_cache.is_none() {
            queue_name_cache = Some(queue_name(conn, queue_id)?);
        }
        let last_error = message_by_seq(conn, seq)?.last_error;
        let error = last_error.or_else(|| {
            (reason == DeadReason::MaxRetries)
                .then(|| "lease expired on the last attempt".to_owned())
        });
        let queue_name = queue_name_cache.as_deref().unwrap_or_default();
        let death = Death {
            reason,
            to: policy.dead_letter_to,
            error,
            queue_name,
        };
        let (dead, change) = dead_letter(conn, queue_id, seq, &death, policy.now)?;
        moves.extend(change);
        result.dead_lettered.push(dead);
    }
    // One UPDATE per run of consecutive seqs (usually the whole claim), with
    // lease numbers consecutive along the run. `OR FAIL`: under the default
    // `OR ABORT` a statement that may change several rows and break a
    // constraint (the NOT NULLs) keeps a journal of every page it touches,
    // to undo itself halfway. No constraint can fail here: every value set
    // is a number.
    let mut by_seq: Vec<i64> = to_lease.iter().map(|(seq, _)| *seq).collect();
    by_seq.sort_unstable();
    let mut first_lease_gen = Vec::new();
    for run in runs(&by_seq) {
        let lease_gen = index.next_lease_gens(run.len());
        let n_changed = conn
            .prepare_cached(
                "UPDATE OR FAIL messages SET state = 1, attempts = attempts + 1, visible_at = ?3, lease_gen = ?4 + (seq - ?1)
                 WHERE seq BETWEEN ?1 AND ?2 AND queue_id = ?5",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    run[0],
                    run[run.len() - 1],
                    policy.lease_until.0,
                    lease_gen,
                    queue_id
                ])
            })
            .map_err(|e| backend("lease messages", e))?;
        if n_changed != run.len() {
            return Err(StorageError::Corrupt(format!(
                "leased {n_changed} rows of the {} indexed from seq {}",
                run.len(),
                run[0]
            )));
        }
        first_lease_gen.push((run[0], lease_gen));
    }
    let lease_gen_of = |seq: i64| -> i64 {
        let at = first_lease_gen.partition_point(|&(first, _)| first <= seq);
        let (first, lease_gen) = first_lease_gen[at - 1];
        lease_gen + (seq - first)
    };
    // Rows whose bodies are not kept are read back, already leased, by run.
    let uncached: Vec<i64> = by_seq
        .iter()
        .copied()
        .filter(|&seq| !index.has_body(seq))
        .collect();
    let mut read: FxHashMap<i64, StoredMessage> = FxHashMap::default();
    for run in runs(&uncached) {
        const SQL: &str = concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq"
        );
        let rows = query_messages(conn, SQL, [run[0], run[run.len() - 1]], "read messages")?;
        if rows.len() != run.len() {
            return Err(StorageError::Corrupt(format!(
                "read {} rows of the {} leased from seq {}",
                rows.len(),
                run.len(),
                run[0]
            )));
        }
        read.extend(rows.into_iter().map(|m| (m.seq, m)));
    }
    // Every fallible step is done: the index changes from here on.
    for &(seq, entry) in &to_lease {
        let lease_gen = lease_gen_of(seq);
        let message = match index.take_body(seq) {
            Some(body) => StoredMessage {
                seq,
                queue_id,
                id: entry.id,
                payload: body.payload,
                envelope: body.envelope,
                traceparent: body.traceparent,
                state: MessageState::Leased,
                attempts: entry.attempts + 1,
                enqueued_at: Timestamp(entry.enqueued_at),
                visible_at: policy.lease_until,
                expires_at: entry.expires_at.map(Timestamp),
                last_error: None,
                death: None,
                history: Vec::new(),
                lease_gen,
            },
            None => read.remove(&seq).ok_or_else(|| {
                StorageError::Corrupt(format!("leased message seq {seq} was not read"))
            })?,
        };
        debug_assert_eq!(
            (message.lease_gen, message.attempts),
            (lease_gen, entry.attempts + 1)
        );
        moves.push(IndexMove::Update {
            queue_id,
            seq,
            visible_at: policy.lease_until.0,
            state: MessageState::Leased,
            lease_gen: Some(lease_gen),
        });
        result.deliveries.push(message);
    }
    apply(index, moves);
    Ok(result)
}

/// Splits ascending seqs into runs of consecutive ones.
fn runs(seqs: &[i64]) -> impl Iterator<Item = &[i64]> {
    seqs.chunk_by(|a, b| *b == *a + 1)
}

/// An ack whose lease the index found holding, at `at` in its batch.
struct PendingAck {
    lease: LeaseRef,
    at: usize,
}

/// Deletes the rows of `acks` (leases the index found holding), one
/// statement per run of consecutive seqs, and answers them in `results`.
/// The same lease twice: the first ack settles it, the next finds it gone.
fn delete_acked(
    conn: &Connection,
    index: &mut Index,
    acks: &mut Vec<PendingAck>,
    results: &mut [Option<Result<MessageId>>],
) {
    if acks.is_empty() {
        return;
    }
    acks.sort_unstable_by_key(|ack| (ack.lease.queue_id, ack.lease.seq, ack.at));
    let mut acks = std::mem::take(acks);
    acks.dedup_by(|later, first| {
        let twice = later.lease.seq == first.lease.seq;
        if twice {
            results[later.at] = Some(Err(StorageError::StaleLease(StaleReason::Gone)));
        }
        twice
    });
    let consecutive = |a: &PendingAck, b: &PendingAck| {
        a.lease.queue_id == b.lease.queue_id && b.lease.seq == a.lease.seq + 1
    };
    for run in acks.chunk_by(consecutive) {
        if conn.is_autocommit() {
            // An earlier run rolled the batch back (below, or SQLite on its
            // own): a DELETE now would commit by itself, outside the batch.
            for ack in run {
                results[ack.at] = Some(Err(batch_rolled_back()));
            }
            continue;
        }
        let (first, last) = (run[0].lease, run[run.len() - 1].lease);
        let deleted = conn
            .prepare_cached("DELETE FROM messages WHERE seq BETWEEN ?1 AND ?2 AND queue_id = ?3")
            .and_then(|mut stmt| stmt.execute(params![first.seq, last.seq, first.queue_id]));
        match deleted {
            Ok(n) if n == run.len() => {
                for ack in run {
                    let (queue_id, seq) = (ack.lease.queue_id, ack.lease.seq);
                    let id = index.entry(queue_id, seq).map(|entry| entry.id);
                    index.remove(queue_id, seq);
                    results[ack.at] = Some(id.ok_or_else(|| {
                        StorageError::Corrupt(format!("acked message seq {seq} was not indexed"))
                    }));
                }
            }
            Ok(n) => {
                // The index said these leases hold and the table disagrees:
                // undo the whole batch, so that its commit fails and the
                // index is reloaded from the table.
                let _ = conn.execute_batch("ROLLBACK");
                let cause = format!(
                    "acked {n} rows of the {} indexed from seq {}",
                    run.len(),
                    first.seq
                );
                tracing::error!(%cause, "the writer's index disagrees with the table; rolling the batch back and reloading the index");
                for ack in run {
                    results[ack.at] = Some(Err(StorageError::Corrupt(cause.clone())));
                }
            }
            Err(e) => {
                // SQLite undid the statement; the others of the batch stand
                // (unless it rolled the whole batch back: the next run checks).
                let cause = e.to_string();
                for ack in run {
                    results[ack.at] = Some(Err(backend("ack a message", cause.clone())));
                }
            }
        }
    }
}

/// A settlement refused because its batch's transaction was rolled back.
fn batch_rolled_back() -> StorageError {
    backend("settle", "the batch transaction was rolled back")
}

fn settle_message(
    conn: &Connection,
    index: &Index,
    lease: LeaseRef,
    settlement: Settlement,
    now: Timestamp,
) -> Result<(MessageId, Vec<IndexMove>)> {
    let (queue_id, seq) = (lease.queue_id, lease.seq);
    // The index holds the id, so the statements need no RETURNING (which
    // costs SQLite an ephemeral table per statement).
    let id = index.entry(queue_id, seq).map(|entry| entry.id);
    let changed = match &settlement {
        Settlement::Ack => conn
            .prepare_cached(concat!("DELETE FROM messages WHERE ", lease_held!()))
            .and_then(|mut stmt| stmt.execute(params![seq, queue_id, lease.lease_gen, now.0]))
            .map_err(|e| backend("ack a message", e))?,
        Settlement::Retry { visible_at, error } => conn
            .prepare_cached(concat!(
                "UPDATE messages SET state = 2, visible_at = ?5, last_error = ?6 WHERE ",
                lease_held!()
            ))
            .and_then(|mut stmt| {
                stmt.execute(params![
                    seq,
                    queue_id,
                    lease.lease_gen,
                    now.0,
                    visible_at.0,
                    error
                ])
            })
            .map_err(|e| backend("schedule a retry", e))?,
        Settlement::DeadLetter {
            reason,
            to,
            error,
            queue_name,
        } => {
            let id = check_lease(conn, lease, now)?;
            let death = Death {
                reason: *reason,
                to: *to,
                error: error.clone(),
                queue_name,
            };
            let (_, change) = dead_letter(conn, queue_id, seq, &death, now)?;
            return Ok((id, change));
        }
    };
    if changed == 0 {
        check_lease(conn, lease, now)?;
        // check_lease found the lease valid, yet nothing changed: impossible
        // inside the single writer.
        return Err(StorageError::Corrupt(format!(
            "lease on message seq {seq} held but not settled"
        )));
    }
    let id = id.ok_or_else(|| {
        StorageError::Corrupt(format!("settled message seq {seq} was not indexed"))
    })?;
    let change = match settlement {
        Settlement::Retry { visible_at, .. } => IndexMove::Update {
            queue_id,
            seq,
            visible_at: visible_at.0,
            state: MessageState::Scheduled,
            lease_gen: None,
        },
        _ => IndexMove::Remove { queue_id, seq },
    };
    Ok((id, vec![change]))
}

struct Death<'a> {
    reason: DeadReason,
    to: Option<QueueId>,
    error: Option<String>,
    queue_name: &'a str,
}

/// Moves one message of `queue_id` to its dead-letter queue (ready there,
/// attempts reset) or parks it in place, recording why in its row and its
/// history. Returns what happened and the index changes to apply.
fn dead_letter(
    conn: &Connection,
    queue_id: QueueId,
    seq: i64,
    death: &Death<'_>,
    now: Timestamp,
) -> Result<(DeadLettered, Vec<IndexMove>)> {
    type Row = (
        MessageId,
        u32,
        Option<String>,
        String,
        i64,
        Option<TraceParent>,
    );
    let (id, attempts, history, envelope, lease_gen, traceparent): Row = conn
        .prepare_cached(
            "SELECT id, attempts, history, envelope, lease_gen, traceparent FROM messages WHERE seq = ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row([seq], |row| {
                Ok((
                    read_id(row, 0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    read_traceparent(row, 5)?,
                ))
            })
        })
        .map_err(|e| backend("read a message to dead-letter", e))?;
    let to_name = match death.to {
        Some(to) => Some(queue_name(conn, to)?),
        None => None,
    };
    let entry = HistoryEntry {
        at: now,
        action: "dead-lettered".to_owned(),
        from_queue: death.queue_name.to_owned(),
        to_queue: to_name,
        detail: Some(death.reason.as_str().to_owned()),
        attempts,
    };
    let history = append_history(history.as_deref(), entry)?;
    let (state, queue_sql) = match death.to {
        Some(_) => (MessageState::Ready.code(), "?7"),
        None => (MessageState::Parked.code(), "queue_id"),
    };
    // SQLite evaluates every right-hand side on the old row, so
    // `dead_attempts = attempts` keeps the count before the reset. A dead
    // letter is enqueued in its new queue now (as the index records it).
    let sql = format!(
        "UPDATE messages SET queue_id = {queue_sql}, state = ?2, visible_at = ?3, attempts = 0, expires_at = NULL,
                          dead_reason = ?4, dead_origin = ?5, dead_at = ?3, dead_attempts = attempts, enqueued_at = ?3,
             last_error = COALESCE(?6, last_error), history = ?8
         WHERE seq = ?1"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.execute(params![
                seq,
                state,
                now.0,
                death.reason.as_str(),
                death.queue_name,
                death.error,
                death.to.unwrap_or(0),
                history
            ])
        })
        .map_err(|e| backend("dead-letter a message", e))?;
    let moves = match death.to {
        Some(to) => requeued(id, (queue_id, to), seq, lease_gen, now).to_vec(),
        None => vec![IndexMove::Remove { queue_id, seq }],
    };
    Ok((
        DeadLettered {
            id,
            reason: death.reason,
            to: death.to,
            attempts,
            envelope,
            traceparent,
        },
        moves,
    ))
}

/// The index changes of a message leaving queue `from` for queue `to`, where
/// it is ready now (dead-lettering into a DLQ, redrive, move).
/// (Its attempts start again from 0, it has no TTL, and it keeps its last
/// lease number.)
fn requeued(
    id: MessageId,
    (from, to): (QueueId, QueueId),
    seq: i64,
    lease_gen: i64,
    now: Timestamp,
) -> [IndexMove; 2] {
    [
        IndexMove::Remove {
            queue_id: from,
            seq,
        },
        IndexMove::Put {
            queue_id: to,
            seq,
            visible_at: now.0,
            entry: Entry {
                id,
                state: MessageState::Ready,
                enqueued_at: now.0,
                attempts: 0,
                lease_gen,
                expires_at: None,
            },
        },
    ]
}

type Redriven = (Vec<MessageId>, Vec<IndexMove>);

fn redrive(
    conn: &Connection,
    query: &DeadLetterQuery,
    to: QueueId,
    to_name: &str,
    action: &str,
    now: Timestamp,
) -> Result<Redriven> {
    let (filter, args) = dead_letter_filter(query);
    let sql = format!(
        "SELECT seq, id, queue_id, attempts, history, lease_gen FROM messages WHERE {filter} ORDER BY seq"
    );
    let rows = conn
        .prepare(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(rusqlite::params_from_iter(args), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    read_id(row, 1)?,
                    row.get::<_, QueueId>(2)?,
                    row.get::<_, u32>(3)?,
                    row.get::<_, Option<String>>(4)?,
                    row.get::<_, i64>(5)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(|e| backend("select dead letters", e))?;
    let mut ids = Vec::with_capacity(rows.len());
    let mut moves = Vec::with_capacity(rows.len() * 2);
    for (seq, id, from, attempts, history, lease_gen) in rows {
        let entry = HistoryEntry {
            at: now,
            action: action.to_owned(),
            from_queue: queue_name(conn, from)?,
            to_queue: Some(to_name.to_owned()),
            detail: None,
            attempts,
        };
        let history = append_history(history.as_deref(), entry)?;
        conn.prepare_cached(
            "UPDATE messages SET queue_id = ?2, state = 0, visible_at = ?3, attempts = 0, enqueued_at = ?3,
                 dead_reason = NULL, dead_origin = NULL, dead_at = NULL, dead_attempts = NULL, history = ?4
             WHERE seq = ?1",
        )
        .and_then(|mut stmt| stmt.execute(params![seq, to, now.0, history]))
        .map_err(|e| backend("redrive a dead letter", e))?;
        ids.push(id);
        moves.extend(requeued(id, (from, to), seq, lease_gen, now));
    }
    Ok((ids, moves))
}

fn message_by_seq(conn: &Connection, seq: i64) -> Result<StoredMessage> {
    const SQL: &str = concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages WHERE seq = ?1"
    );
    let mut messages = query_messages(conn, SQL, [seq], "read a message")?;
    messages
        .pop()
        .ok_or_else(|| StorageError::Corrupt(format!("indexed message seq {seq} has no row")))
}

/// `(dead-lettered from this queue, parked in it)`.
fn count_dead(conn: &Connection, queue_id: QueueId, queue_name: &str) -> Result<(u64, u64)> {
    let dead: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM messages WHERE dead_origin = ?1 AND dead_reason IS NOT NULL",
        )
        .and_then(|mut stmt| stmt.query_row([queue_name], |row| row.get(0)))
        .map_err(|e| backend("count dead letters", e))?;
    let parked: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM messages WHERE queue_id = ?1 AND dead_reason IS NOT NULL AND state = 3")
        .and_then(|mut stmt| stmt.query_row([queue_id], |row| row.get(0)))
        .map_err(|e| backend("count parked messages", e))?;
    Ok((dead as u64, parked as u64))
}

fn append_history(history: Option<&str>, entry: HistoryEntry) -> Result<String> {
    let mut entries: Vec<HistoryEntry> = match history {
        Some(text) => serde_json::from_str(text)
            .map_err(|e| StorageError::Corrupt(format!("message history: {e}")))?,
        None => Vec::new(),
    };
    entries.push(entry);
    serde_json::to_string(&entries).map_err(|e| backend("encode a message history", e))
}

fn queue_name(conn: &Connection, queue_id: QueueId) -> Result<String> {
    conn.prepare_cached("SELECT name FROM queues WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([queue_id], |row| row.get(0)))
        .map_err(|e| backend("read a queue name", e))
}

fn dead_letter_filter(query: &DeadLetterQuery) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut filter = String::from("dead_reason IS NOT NULL");
    let mut args: Vec<Value> = Vec::new();
    if let Some(queue_id) = query.queue_id {
        args.push(Value::Integer(queue_id));
        filter.push_str(&format!(" AND queue_id = ?{}", args.len()));
    }
    if let Some(origin) = &query.origin_queue {
        args.push(Value::Text(origin.clone()));
        filter.push_str(&format!(" AND dead_origin = ?{}", args.len()));
    }
    if let Some(reason) = query.reason {
        args.push(Value::Text(reason.as_str().to_owned()));
        filter.push_str(&format!(" AND dead_reason = ?{}", args.len()));
    }
    if let Some(after) = query.after_seq {
        args.push(Value::Integer(after));
        filter.push_str(&format!(" AND seq > ?{}", args.len()));
    }
    if let Some(ids) = &query.ids {
        let mut placeholders = Vec::with_capacity(ids.len());
        for id in ids {
            args.push(Value::Blob(id.0.as_bytes().to_vec()));
            placeholders.push(format!("?{}", args.len()));
        }
        if placeholders.is_empty() {
            filter.push_str(" AND 0");
        } else {
            filter.push_str(&format!(" AND id IN ({})", placeholders.join(", ")));
        }
    }
    (filter, args)
}

fn query_messages(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    op: &'static str,
) -> Result<Vec<StoredMessage>> {
    let mut stmt = conn.prepare_cached(sql).map_err(|e| backend(op, e))?;
    let rows = stmt
        .query_map(params, read_message)
        .map_err(|e| backend(op, e))?;
    let mut messages = Vec::new();
    for row in rows {
        messages.push(row.map_err(|e| backend(op, e))??);
    }
    Ok(messages)
}

/// Reads a message row; the outer error is the driver's, the inner one a
/// row that does not decode (reported, not skipped).
fn read_message(row: &Row<'_>) -> rusqlite::Result<Result<StoredMessage>> {
    let state_code: i64 = row.get(3)?;

    let dead_reason: Option<String> = row.get(12)?;
    let history_text: Option<String> = row.get(16)?;
    let Some(state) = MessageState::from_code(state_code) else {
        return Ok(Err(StorageError::Corrupt(format!(
            "message state {state_code}"
        ))));
    };

    let history: Vec<HistoryEntry> = match history_text
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
    {
        Ok(history) => history.unwrap_or_default(),
        Err(e) => return Ok(Err(StorageError::Corrupt(format!("message history: {e}")))),
    };
    let death = match dead_reason {
        None => None,
        Some(reason) => {
            let Some(reason) = DeadReason::parse(&reason) else {
                return Ok(Err(StorageError::Corrupt(format!(
                    "dead-letter reason `{reason}`"
                ))));
            };
            Some(DeathRecord {
                reason,
                origin_queue: row.get::<_, Option<String>>(13)?.unwrap_or_default(),
                at: Timestamp(row.get::<_, Option<i64>>(14)?.unwrap_or_default()),
                attempts: row.get::<_, Option<u32>>(15)?.unwrap_or_default(),
            })
        }
    };
    Ok(Ok(StoredMessage {
        seq: row.get(0)?,
        queue_id: row.get(1)?,
        id: read_id(row, 2)?,
        state,
        visible_at: Timestamp(row.get(4)?),
        attempts: row.get(5)?,
        enqueued_at: Timestamp(row.get(6)?),
        expires_at: row.get::<_, Option<i64>>(7)?.map(Timestamp),
        payload: Payload {
            content_type: row.get(8)?,
            bytes: row.get(9)?,
        },
        envelope: row.get(10)?,
        traceparent: read_traceparent(row, 18)?,
        last_error: row.get(11)?,
        death,
        history,
        lease_gen: row.get(17)?,
    }))
}

fn read_id(row: &Row<'_>, idx: usize) -> rusqlite::Result<MessageId> {
    let bytes: [u8; 16] = row.get(idx)?;
    Ok(MessageId(Uuid::from_bytes(bytes)))
}

/// A `traceparent` column: NULL, or the 25 bytes of [`TraceParent::to_bytes`].
pub(super) fn read_traceparent(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<TraceParent>> {
    let Some(bytes) = row.get::<_, Option<[u8; TraceParent::LEN_BYTES]>>(idx)? else {
        return Ok(None);
    };
    TraceParent::from_bytes(&bytes).map(Some).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Blob,
            "a traceparent with an all-zeros id".into(),
        )
    })
}
/// Returns free pages to the file system and checkpoints the whole WAL so
/// that the next commit starts it over from its first frame. Both pragmas
/// report progress as rows and do their work only while stepped, so every
/// row is read.
///
/// `RESTART`, not `TRUNCATE`: the WAL file keeps its blocks (up to
/// `journal_size_limit`, which SQLite applies when the log restarts) and
/// later commits overwrite them. A commit that grows the file makes its
/// fdatasync also commit the file system's journal (the new size is
/// metadata); an overwrite does not. On this machine's disk, a 4 KiB
/// overwrite + fdatasync took about half as long as an append, and the
/// queue bench gained 17-25% throughput with lower round trips (measured
/// in docs/benchmarks.md). PostgreSQL recycles its WAL segments for the
/// same reason.
fn vacuum_and_checkpoint(conn: &Connection) -> Result<()> {
    for pragma in [
        "PRAGMA incremental_vacuum",
        "PRAGMA wal_checkpoint(RESTART)",
    ] {
        let mut stmt = conn
            .prepare(pragma)
            .map_err(|e| backend("vacuum and checkpoint", e))?;
        let mut rows = stmt
            .query([])
            .map_err(|e| backend("vacuum and checkpoint", e))?;
        while rows
            .next()
            .map_err(|e| backend("vacuum and checkpoint", e))?
            .is_some()
        {}
    }
    Ok(())
}

/// `(database pages, WAL file)` in bytes.
fn file_sizes(conn: &Connection) -> Result<(u64, u64)> {
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |row| row.get(0))
        .map_err(|e| backend("read the size", e))?;
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .map_err(|e| backend("read the size", e))?;
    let path: String = conn
        .query_row(
            "SELECT file FROM pragma_database_list WHERE name = 'main'",
            [],
            |row| row.get(0),
        )
        .map_err(|e| backend("read the path", e))?;
    let wal = std::fs::metadata(format!("{path}-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    Ok(((pages * page_size) as u64, wal))
}

fn find_dedup(
    conn: &Connection,
    queue_id: QueueId,
    key: &str,
    now: Timestamp,
) -> Result<Option<MessageId>> {
    conn.prepare_cached(
        "SELECT message_id FROM dedup WHERE queue_id = ?1 AND key = ?2 AND expires_at > ?3",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![queue_id, key, now.0], |row| read_id(row, 0))
            .optional()
    })
    .map_err(|e| backend("look up an idempotency key", e))
}

/// Explains why a lease is no longer valid, or returns the message id if it is.
fn check_lease(conn: &Connection, lease: LeaseRef, now: Timestamp) -> Result<MessageId> {
    let row = conn
        .prepare_cached(
            "SELECT state, attempts, visible_at, id, lease_gen FROM messages WHERE seq = ?1 AND queue_id = ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![lease.seq, lease.queue_id], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, u32>(1)?,
                    row.get::<_, i64>(2)?,
                    read_id(row, 3)?,
                    row.get::<_, i64>(4)?,
                ))
            })
            .optional()
        })
        .map_err(|e| backend("check a lease", e))?;
    let Some((state, attempts, visible_at, id, lease_gen)) = row else {
        return Err(StorageError::StaleLease(StaleReason::Gone));
    };
    if lease_gen != lease.lease_gen {
        return Err(StorageError::StaleLease(StaleReason::Superseded {
            current_attempt: attempts,
        }));
    }
    if state != MessageState::Leased.code() {
        return Err(StorageError::StaleLease(StaleReason::NotLeased));
    }
    if visible_at <= now.0 {
        return Err(StorageError::StaleLease(StaleReason::Expired {
            at: Timestamp(visible_at),
        }));
    }
    Ok(id)
}
