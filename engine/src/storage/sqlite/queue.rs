//! `QueueStore` on SQLite: queue rows, message rows, leases and dead letters.
//!
//! A message's delivery state lives in two columns: `state` and `visible_at`.
//! Claiming selects visible rows through the `messages_visible` index in
//! `(visible_at, seq)` order; an expired lease needs no sweeper because a
//! leased row whose `visible_at` (the lease end) has passed is simply visible
//! again.

use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::envelope::{Envelope, MessageId, Payload};
use crate::storage::sqlite::{SqliteStore, backend};
use crate::storage::{
    ClaimPolicy, ClaimResult, DeadLetterQuery, DeadLettered, DeadReason, DeathRecord, HistoryEntry,
    InsertPolicy, InsertResult, Inserted, LeaseRef, MaintenanceReport, MessageState, NewMessage,
    OverflowAction, QueueCounts, QueueId, QueueRow, QueueStore, Result, Settlement, StaleReason,
    StorageError, StoredMessage,
};

const MESSAGE_COLUMNS: &str = "seq, queue_id, id, state, visible_at, attempts, enqueued_at, expires_at, \
     content_type, payload, envelope, last_error, dead_reason, dead_origin, dead_at, dead_attempts, history";

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
        self.write(move |conn| {
            let inserted = conn
                .prepare_cached("INSERT INTO queues (name, settings, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING")
                .and_then(|mut stmt| stmt.execute(params![name, settings, now.0]))
                .map_err(|e| backend("declare a queue", e))?;
            if inserted == 0 {
                return Err(StorageError::QueueExists { name });
            }
            Ok(QueueRow { id: conn.last_insert_rowid(), name, settings, created_at: now })
        })
        .await
    }

    async fn delete_queue(&self, queue_id: QueueId) -> Result<u64> {
        self.write_atomic(move |conn| {
            let n_messages = conn
                .execute("DELETE FROM messages WHERE queue_id = ?1", [queue_id])
                .map_err(|e| backend("delete a queue's messages", e))?;
            conn.execute("DELETE FROM dedup WHERE queue_id = ?1", [queue_id])
                .map_err(|e| backend("delete a queue's dedup keys", e))?;
            conn.execute("DELETE FROM queues WHERE id = ?1", [queue_id])
                .map_err(|e| backend("delete a queue", e))?;
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
        let atomic = messages.len() > 1 || policy.length_max.is_some();
        let job = move |conn: &Connection| insert_messages(conn, queue_id, messages, &policy);
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
        self.write_atomic(move |conn| claim_messages(conn, queue_id, n_max, &policy))
            .await
    }

    async fn settle(
        &self,
        lease: LeaseRef,
        settlement: Settlement,
        now: Timestamp,
    ) -> Result<MessageId> {
        self.write(move |conn| settle_message(conn, lease, settlement, now))
            .await
    }

    async fn expire(
        &self,
        queue_id: QueueId,
        queue_name: String,
        dead_letter_to: Option<QueueId>,
        now: Timestamp,
        n_max: u32,
    ) -> Result<Vec<DeadLettered>> {
        self.write_atomic(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, id, attempts FROM messages
                     WHERE queue_id = ?1 AND expires_at <= ?2 AND state IN (0, 2) ORDER BY expires_at LIMIT ?3",
                )
                .map_err(|e| backend("find expired messages", e))?;
            let expired = stmt
                .query_map(params![queue_id, now.0, n_max], |row| {
                    Ok((row.get::<_, i64>(0)?, read_id(row, 1)?, row.get::<_, u32>(2)?))
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(|e| backend("find expired messages", e))?;
            let mut dead = Vec::with_capacity(expired.len());
            for (seq, id, attempts) in expired {
                let death = Death { reason: DeadReason::Expired, to: dead_letter_to, error: None, queue_name: &queue_name };
                dead_letter(conn, seq, &death, now)?;
                dead.push(DeadLettered { id, reason: DeadReason::Expired, to: dead_letter_to, attempts });
            }
            Ok(dead)
        })
        .await
    }

    async fn next_visible_at(
        &self,
        queue_id: QueueId,
        now: Timestamp,
    ) -> Result<Option<Timestamp>> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT MIN(visible_at) FROM messages WHERE queue_id = ?1 AND state < 3 AND visible_at > ?2")
                .and_then(|mut stmt| stmt.query_row(params![queue_id, now.0], |row| row.get::<_, Option<i64>>(0)))
                .map(|at| at.map(Timestamp))
                .map_err(|e| backend("find the next visible message", e))
        })
        .await
    }

    async fn peek(&self, queue_id: QueueId, n_max: u32) -> Result<Vec<StoredMessage>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE queue_id = ?1 AND state < 3 ORDER BY visible_at, seq LIMIT ?2"
            );
            query_messages(conn, &sql, params![queue_id, n_max], "peek messages")
        })
        .await
    }

    async fn counts(
        &self,
        queue_id: QueueId,
        queue_name: String,
        now: Timestamp,
    ) -> Result<QueueCounts> {
        self.read(move |conn| count_messages(conn, queue_id, &queue_name, now))
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
        self.write_atomic(move |conn| redrive(conn, &query, to, &to_name, action, now))
            .await
    }

    async fn purge_dead_letters(&self, query: DeadLetterQuery) -> Result<u64> {
        self.write(move |conn| {
            let (filter, args) = dead_letter_filter(&query);
            let sql = format!("DELETE FROM messages WHERE {filter}");
            conn.execute(&sql, rusqlite::params_from_iter(args))
                .map(|n| n as u64)
                .map_err(|e| backend("purge dead letters", e))
        })
        .await
    }

    async fn maintain(&self, now: Timestamp) -> Result<MaintenanceReport> {
        let in_file = self.options().path.is_some();
        let dedup_keys_removed = self
            .write(move |conn| {
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
        // transaction; the writer runs this job in one that is otherwise
        // empty, so commit it first and reopen afterwards.
        let pages_freed = self
            .write(|conn| {
                let free: i64 = conn
                    .query_row("PRAGMA freelist_count", [], |row| row.get(0))
                    .map_err(|e| backend("read the free list", e))?;
                conn.execute_batch("COMMIT")
                    .map_err(|e| backend("commit before vacuuming", e))?;
                let vacuumed = vacuum_and_checkpoint(conn);
                conn.execute_batch("BEGIN IMMEDIATE")
                    .map_err(|e| backend("reopen the batch transaction", e))?;
                vacuumed?;
                Ok(free as u64)
            })
            .await?;
        let size_bytes = self.read(file_size).await?;
        Ok(MaintenanceReport {
            dedup_keys_removed,
            pages_freed,
            size_bytes,
        })
    }
}

/// Returns free pages to the file system and truncates the WAL. Both
/// pragmas report progress as rows and do their work only while stepped, so
/// every row is read.
fn vacuum_and_checkpoint(conn: &Connection) -> Result<()> {
    for pragma in [
        "PRAGMA incremental_vacuum",
        "PRAGMA wal_checkpoint(TRUNCATE)",
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

fn file_size(conn: &Connection) -> Result<u64> {
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
    Ok((pages * page_size) as u64 + wal)
}

fn insert_messages(
    conn: &Connection,
    queue_id: QueueId,
    messages: Vec<NewMessage>,
    policy: &InsertPolicy,
) -> Result<InsertResult> {
    let mut result = InsertResult {
        inserted: Vec::with_capacity(messages.len()),
        dead_lettered: Vec::new(),
    };
    let mut n_new = 0u64;
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
        n_new += 1;
        to_store.push(message);
    }
    if let Some(length_max) = policy.length_max {
        make_room(conn, queue_id, length_max, n_new, policy, &mut result)?;
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO messages (queue_id, id, state, visible_at, enqueued_at, expires_at, content_type, payload, envelope)
             VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(|e| backend("insert a message", e))?;
    for message in &to_store {
        let envelope = serde_json::to_string(&message.envelope)
            .map_err(|e| backend("encode an envelope", e))?;
        stmt.execute(params![
            queue_id,
            message.id.0.as_bytes(),
            message.visible_at.0,
            policy.now.0,
            message.expires_at.map(|t| t.0),
            message.payload.content_type,
            message.payload.bytes,
            envelope,
        ])
        .map_err(|e| backend("insert a message", e))?;
        if let Some(key) = &message.idempotency_key {
            conn.prepare_cached("INSERT OR REPLACE INTO dedup (queue_id, key, message_id, expires_at) VALUES (?1, ?2, ?3, ?4)")
                .and_then(|mut s| s.execute(params![queue_id, key, message.id.0.as_bytes(), policy.dedup_until.0]))
                .map_err(|e| backend("record an idempotency key", e))?;
        }
    }
    Ok(result)
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

/// Enforces a queue's maximum length before `n_new` messages go in.
fn make_room(
    conn: &Connection,
    queue_id: QueueId,
    length_max: u64,
    n_new: u64,
    policy: &InsertPolicy,
    result: &mut InsertResult,
) -> Result<()> {
    let n_current: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM messages WHERE queue_id = ?1 AND state < 3")
        .and_then(|mut stmt| stmt.query_row([queue_id], |row| row.get(0)))
        .map_err(|e| backend("count a queue's messages", e))?;
    let n_over = (n_current as u64 + n_new).saturating_sub(length_max);
    if n_over == 0 {
        return Ok(());
    }
    let to = match policy.overflow {
        OverflowAction::Reject => return Err(StorageError::QueueFull { length_max }),
        OverflowAction::DeadLetterOldest { to } => to,
    };
    if n_new > length_max {
        return Err(StorageError::QueueFull { length_max });
    }
    // Oldest first, among messages not currently leased to a consumer.
    let oldest = conn
        .prepare_cached("SELECT seq, id, attempts FROM messages WHERE queue_id = ?1 AND state IN (0, 2) ORDER BY seq LIMIT ?2")
        .and_then(|mut stmt| {
            stmt.query_map(params![queue_id, n_over as i64], |row| Ok((row.get::<_, i64>(0)?, read_id(row, 1)?, row.get(2)?)))?
                .collect::<rusqlite::Result<Vec<(i64, MessageId, u32)>>>()
        })
        .map_err(|e| backend("find the oldest messages", e))?;
    if (oldest.len() as u64) < n_over {
        return Err(StorageError::QueueFull { length_max });
    }
    for (seq, id, attempts) in oldest {
        let death = Death {
            reason: DeadReason::Overflow,
            to,
            error: None,
            queue_name: &policy.queue_name,
        };
        dead_letter(conn, seq, &death, policy.now)?;
        result.dead_lettered.push(DeadLettered {
            id,
            reason: DeadReason::Overflow,
            to,
            attempts,
        });
    }
    Ok(())
}

fn claim_messages(
    conn: &Connection,
    queue_id: QueueId,
    n_max: u32,
    policy: &ClaimPolicy,
) -> Result<ClaimResult> {
    assert!(
        policy.lease_until > policy.now,
        "a lease must end in the future"
    );
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages
         WHERE queue_id = ?1 AND state < 3 AND visible_at <= ?2 ORDER BY visible_at, seq LIMIT ?3"
    );
    let candidates = query_messages(
        conn,
        &sql,
        params![queue_id, policy.now.0, n_max],
        "claim messages",
    )?;
    let mut result = ClaimResult {
        deliveries: Vec::with_capacity(candidates.len()),
        dead_lettered: Vec::new(),
    };
    let mut lease = conn
        .prepare_cached("UPDATE messages SET state = 1, attempts = attempts + 1, visible_at = ?2 WHERE seq = ?1")
        .map_err(|e| backend("lease a message", e))?;
    for mut message in candidates {
        let reason = if message.expires_at.is_some_and(|at| at <= policy.now)
            && message.state != MessageState::Leased
        {
            Some(DeadReason::Expired)
        } else if message.attempts >= policy.attempts_max {
            // Its last lease ran out: the consumer died or hung on the final attempt.
            Some(DeadReason::MaxRetries)
        } else {
            None
        };
        if let Some(reason) = reason {
            let queue_name = queue_name(conn, queue_id)?;
            let error = message.last_error.clone().or_else(|| {
                (reason == DeadReason::MaxRetries)
                    .then(|| "lease expired on the last attempt".to_owned())
            });
            let death = Death {
                reason,
                to: policy.dead_letter_to,
                error,
                queue_name: &queue_name,
            };
            dead_letter(conn, message.seq, &death, policy.now)?;
            result.dead_lettered.push(DeadLettered {
                id: message.id,
                reason,
                to: policy.dead_letter_to,
                attempts: message.attempts,
            });
            continue;
        }
        lease
            .execute(params![message.seq, policy.lease_until.0])
            .map_err(|e| backend("lease a message", e))?;
        message.state = MessageState::Leased;
        message.attempts += 1;
        message.visible_at = policy.lease_until;
        result.deliveries.push(message);
    }
    Ok(result)
}

fn settle_message(
    conn: &Connection,
    lease: LeaseRef,
    settlement: Settlement,
    now: Timestamp,
) -> Result<MessageId> {
    const HELD: &str =
        "seq = ?1 AND queue_id = ?2 AND attempts = ?3 AND state = 1 AND visible_at > ?4";
    let settled = match &settlement {
        Settlement::Ack => conn
            .prepare_cached(&format!("DELETE FROM messages WHERE {HELD} RETURNING id"))
            .and_then(|mut stmt| {
                stmt.query_row(params![lease.seq, lease.queue_id, lease.attempt, now.0], |row| read_id(row, 0)).optional()
            })
            .map_err(|e| backend("ack a message", e))?,
        Settlement::Retry { visible_at, error } => conn
            .prepare_cached(&format!(
                "UPDATE messages SET state = 2, visible_at = ?5, last_error = ?6 WHERE {HELD} RETURNING id"
            ))
            .and_then(|mut stmt| {
                stmt.query_row(params![lease.seq, lease.queue_id, lease.attempt, now.0, visible_at.0, error], |row| {
                    read_id(row, 0)
                })
                .optional()
            })
            .map_err(|e| backend("schedule a retry", e))?,
        Settlement::DeadLetter { reason, to, error, queue_name } => {
            let id = check_lease(conn, lease, now)?;
            let death = Death { reason: *reason, to: *to, error: error.clone(), queue_name };
            dead_letter(conn, lease.seq, &death, now)?;
            Some(id)
        }
    };
    match settled {
        Some(id) => Ok(id),
        None => {
            check_lease(conn, lease, now)?;
            // check_lease found the lease valid, yet nothing changed: impossible
            // inside the single writer.
            Err(StorageError::Corrupt(format!(
                "lease on message seq {} held but not settled",
                lease.seq
            )))
        }
    }
}

/// Explains why a lease is no longer valid, or returns the message id if it is.
fn check_lease(conn: &Connection, lease: LeaseRef, now: Timestamp) -> Result<MessageId> {
    let row = conn
        .prepare_cached(
            "SELECT state, attempts, visible_at, id FROM messages WHERE seq = ?1 AND queue_id = ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![lease.seq, lease.queue_id], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, u32>(1)?,
                    row.get::<_, i64>(2)?,
                    read_id(row, 3)?,
                ))
            })
            .optional()
        })
        .map_err(|e| backend("check a lease", e))?;
    let Some((state, attempts, visible_at, id)) = row else {
        return Err(StorageError::StaleLease(StaleReason::Gone));
    };
    if attempts != lease.attempt {
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

struct Death<'a> {
    reason: DeadReason,
    to: Option<QueueId>,
    error: Option<String>,
    queue_name: &'a str,
}

/// Moves one message to its dead-letter queue (ready there, attempts reset)
/// or parks it in place, recording why in its row and its history.
fn dead_letter(conn: &Connection, seq: i64, death: &Death<'_>, now: Timestamp) -> Result<()> {
    let (attempts, history): (u32, Option<String>) = conn
        .prepare_cached("SELECT attempts, history FROM messages WHERE seq = ?1")
        .and_then(|mut stmt| stmt.query_row([seq], |row| Ok((row.get(0)?, row.get(1)?))))
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
    let sql = format!(
        "UPDATE messages SET queue_id = {queue_sql}, state = ?2, visible_at = ?3, attempts = 0, expires_at = NULL,
             dead_reason = ?4, dead_origin = ?5, dead_at = ?3, dead_attempts = attempts,
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
    Ok(())
}

fn redrive(
    conn: &Connection,
    query: &DeadLetterQuery,
    to: QueueId,
    to_name: &str,
    action: &str,
    now: Timestamp,
) -> Result<Vec<MessageId>> {
    let (filter, args) = dead_letter_filter(query);
    let sql = format!(
        "SELECT seq, id, queue_id, attempts, history FROM messages WHERE {filter} ORDER BY seq"
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
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(|e| backend("select dead letters", e))?;
    let mut moved = Vec::with_capacity(rows.len());
    for (seq, id, from, attempts, history) in rows {
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
        moved.push(id);
    }
    Ok(moved)
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

fn count_messages(
    conn: &Connection,
    queue_id: QueueId,
    queue_name: &str,
    now: Timestamp,
) -> Result<QueueCounts> {
    let mut counts = QueueCounts::default();
    let mut stmt = conn
        .prepare_cached(
            "SELECT state, visible_at <= ?2, COUNT(*), MIN(enqueued_at) FROM messages WHERE queue_id = ?1 GROUP BY 1, 2",
        )
        .map_err(|e| backend("count messages", e))?;
    let groups = stmt
        .query_map(params![queue_id, now.0], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, bool>(1)?,
                row.get::<_, i64>(2)? as u64,
                row.get::<_, i64>(3)?,
            ))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| backend("count messages", e))?;
    for (state, visible, n, oldest) in groups {
        let state = MessageState::from_code(state)
            .ok_or_else(|| StorageError::Corrupt(format!("message state {state}")))?;
        match (state, visible) {
            (MessageState::Parked, _) => {
                counts.parked += n;
                continue;
            }
            // An expired lease or a due retry is deliverable again.
            (_, true) => counts.ready += n,
            (MessageState::Leased, false) => counts.in_flight += n,
            (_, false) => counts.scheduled += n,
        }
        counts.oldest_enqueued_at = Some(
            counts
                .oldest_enqueued_at
                .map_or(Timestamp(oldest), |t| t.min(Timestamp(oldest))),
        );
    }
    counts.dead_lettered = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM messages WHERE dead_origin = ?1 AND dead_reason IS NOT NULL",
        )
        .and_then(|mut stmt| stmt.query_row([queue_name], |row| row.get::<_, i64>(0)))
        .map_err(|e| backend("count dead letters", e))? as u64;
    Ok(counts)
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
    let envelope_text: String = row.get(10)?;
    let dead_reason: Option<String> = row.get(12)?;
    let history_text: Option<String> = row.get(16)?;
    let Some(state) = MessageState::from_code(state_code) else {
        return Ok(Err(StorageError::Corrupt(format!(
            "message state {state_code}"
        ))));
    };
    let envelope: Envelope = match serde_json::from_str(&envelope_text) {
        Ok(envelope) => envelope,
        Err(e) => return Ok(Err(StorageError::Corrupt(format!("message envelope: {e}")))),
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
        envelope,
        last_error: row.get(11)?,
        death,
        history,
    }))
}

fn read_id(row: &Row<'_>, idx: usize) -> rusqlite::Result<MessageId> {
    let bytes: [u8; 16] = row.get(idx)?;
    Ok(MessageId(Uuid::from_bytes(bytes)))
}
