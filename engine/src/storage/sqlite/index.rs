//! The writer's in-memory index of deliverable messages.
//!
//! SQLite is opened by one process and written by one thread, so the writer
//! can keep the delivery order of every queue in memory instead of in a
//! B-tree index on disk: a send, a lease and an ack then each touch one row
//! and no index pages, which is where most of the WAL traffic went. The
//! index is rebuilt from the table when the store opens, and again whenever
//! a commit fails, so it never disagrees with what is on disk.
//!
//! Entries are ordered by `(visible_at, seq)`: ready and scheduled messages by
//! when they become deliverable, leased ones by when their lease ends (an
//! expired lease is simply visible again), and found by `seq` in a hash map.
//! Parked dead letters are not here.
//!
//! The index also holds the other side of delivery: push consumers waiting
//! for messages ([`Waiter`]). A send into a queue with a waiting consumer
//! inserts the message already leased to it, in the send's own transaction,
//! and the consumer gets it as soon as that transaction commits: one row
//! write saved per message, and no second commit between send and delivery.

use std::collections::BTreeSet;

use rusqlite::Connection;
use rustc_hash::FxHashMap;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::envelope::{MessageId, Payload, TraceParent};
use crate::storage::sqlite::backend;
use crate::storage::{ClaimResult, LeaseRef, MessageState, QueueId, Result, StorageError};

/// Every queue's deliverable messages.
#[derive(Debug, Default)]
pub(super) struct Index {
    queues: FxHashMap<QueueId, QueueIndex>,
    /// Push consumers waiting for messages, per queue, oldest first.
    waiters: FxHashMap<QueueId, Vec<Waiter>>,
    /// Bodies of messages sent and not yet delivered, by seq.
    bodies: Bodies,
    /// Deliveries made to waiters in the current transaction, sent once it
    /// commits (or failed if it does not).
    replies: Vec<WaiterReply>,
    next_waiter_id: u64,
    /// Last lease number handed out; continues from the table's highest.
    last_lease_gen: i64,
    /// Last message seq handed out, and the last one written to the
    /// `counters` table (`save_last_seq`), which keeps seqs from being
    /// reused after the newest message is gone.
    last_seq: i64,
    saved_seq: i64,
}

/// A served waiter and what it gets.
pub(super) type WaiterReply = (oneshot::Sender<Result<ClaimResult>>, ClaimResult);

/// Answers served waiters: with their deliveries, or the commit's error.
pub(super) fn answer(replies: Vec<WaiterReply>, commit_error: Option<&str>) {
    for (reply, result) in replies {
        let outcome = match commit_error {
            None => Ok(result),
            Some(message) => Err(backend("commit", message.to_owned())),
        };
        if let Err(Ok(lost)) = reply.send(outcome) {
            // The consumer went away (its task ended) after being served:
            // the messages stay leased to nobody until their leases run out,
            // then are redelivered with the attempt counted, as after a crash.
            tracing::warn!(
                n_deliveries = lost.deliveries.len(),
                "a served consumer was gone; its deliveries wait for their leases to expire"
            );
        }
    }
}

/// A push consumer waiting for up to `n_max` messages of a queue.
#[derive(Debug)]
pub(super) struct Waiter {
    pub(super) id: u64,
    pub(super) n_max: u32,
    pub(super) lease_ms: i64,
    pub(super) reply: oneshot::Sender<Result<ClaimResult>>,
}

/// What the index keeps of one message: the columns a lease, a claim and
/// an ack decide on, equal to the row's at every commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) id: MessageId,
    pub(super) state: MessageState,
    pub(super) enqueued_at: i64,
    /// Deliveries handed out in this queue.
    pub(super) attempts: u32,
    /// Number of the current (or last) lease; [`NEVER_LEASED`] before the first.
    pub(super) lease_gen: i64,
    pub(super) expires_at: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct QueueIndex {
    /// `(visible_at, seq)` of every message, in delivery order. Keys only:
    /// the entries live in `entries`, so that a lease or an ack finds its
    /// message with one hash lookup, and the tree's nodes stay small.
    by_visibility: BTreeSet<(i64, i64)>,
    /// `seq` -> its visibility and the rest of its entry.
    entries: FxHashMap<i64, (i64, Entry)>,
}

/// A message's body as sent, kept from its insert to its first delivery.
#[derive(Debug)]
pub(super) struct Body {
    pub(super) payload: Payload,
    pub(super) envelope: String,
    pub(super) traceparent: Option<TraceParent>,
}

impl Body {
    /// What the cache counts for it.
    fn n_bytes(&self) -> usize {
        // The map entry and the three allocations' headers, roughly.
        96 + self.payload.bytes.len() + self.payload.content_type.len() + self.envelope.len()
    }
}

/// Most bytes of bodies kept for claims (see [`Bodies`]).
pub(super) const BODIES_BYTES_MAX: usize = 32 << 20;

/// Bodies of messages just sent, so that a claim soon after does not read
/// its rows back: a claim then only updates them. Bounded by
/// [`BODIES_BYTES_MAX`]: past it (a long backlog) claims read rows as
/// before. Only messages new in their queue are kept (no last error,
/// death or history), and any change to a message but its claim drops its
/// body, so a kept body is always what its row holds.
#[derive(Debug, Default)]
struct Bodies {
    by_seq: FxHashMap<i64, Body>,
    n_bytes: usize,
}

/// Lease numbers start above this one, and a row that was never leased
/// holds it: every stored lease number then has the same width (a 6-byte
/// SQLite integer), so a lease's UPDATE does not grow the row. A grown row
/// is deleted and re-inserted, often after SQLite defragments its page (a
/// ~4 KiB copy); with 256-byte messages, gdb counted such copies in the
/// claim path on about every delivery before, one in four after. (SQLite
/// rewrites a same-size row in place only when it is small, under
/// auto-vacuum: the rest still move.)
pub(super) const NEVER_LEASED: i64 = 1 << 40;

impl Index {
    /// Reads the index from the table.
    pub(super) fn load(conn: &Connection) -> Result<Index> {
        let last_lease_gen = conn
            .query_row(
                "SELECT COALESCE(MAX(lease_gen), 0) FROM messages",
                [],
                |row| row.get(0),
            )
            .map_err(|e| backend("load the lease counter", e))?;
        let last_seq = conn
            .query_row(
                "SELECT MAX(
                    COALESCE((SELECT value FROM counters WHERE name = 'message_seq'), 0),
                    COALESCE((SELECT MAX(seq) FROM messages), 0))",
                [],
                |row| row.get(0),
            )
            .map_err(|e| backend("load the message counter", e))?;
        let mut index = Index {
            last_lease_gen: i64::max(last_lease_gen, NEVER_LEASED),
            last_seq,
            saved_seq: last_seq,
            ..Index::default()
        };
        let mut stmt = conn
            .prepare("SELECT id FROM queues")
            .map_err(|e| backend("load queues", e))?;
        let ids = stmt
            .query_map([], |row| row.get::<_, QueueId>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| backend("load queues", e))?;
        for id in ids {
            index.queues.insert(id, QueueIndex::default());
        }
        let mut stmt = conn
            .prepare(
                "SELECT queue_id, seq, visible_at, state, enqueued_at, id, attempts, lease_gen, expires_at
                 FROM messages WHERE state < 3",
            )
            .map_err(|e| backend("load the message index", e))?;
        let mut rows = stmt
            .query([])
            .map_err(|e| backend("load the message index", e))?;
        while let Some(row) = rows
            .next()
            .map_err(|e| backend("load the message index", e))?
        {
            let (queue_id, seq, visible_at, entry) =
                read_entry(row).map_err(|e| backend("load the message index", e))??;
            index.queue_mut(queue_id).insert(seq, visible_at, entry);
        }
        Ok(index)
    }

    /// Panics unless the index is what [`Index::load`] reads from the table
    /// now, and every kept body is its row's: the invariant tests check
    /// after every commit.
    #[cfg(test)]
    pub(super) fn assert_matches(&self, conn: &Connection) {
        let loaded = Index::load(conn).expect("load the index to compare");
        let non_empty = |index: &Index| -> std::collections::BTreeMap<QueueId, QueueIndex> {
            index
                .queues
                .iter()
                .filter(|(_, queue)| queue.len() > 0)
                .map(|(&id, queue)| (id, queue.clone()))
                .collect()
        };
        assert_eq!(
            non_empty(self),
            non_empty(&loaded),
            "the writer's index differs from the table"
        );
        assert!(self.last_lease_gen >= loaded.last_lease_gen);
        assert_eq!(self.saved_seq, loaded.last_seq, "the saved message counter");
        for (seq, body) in &self.bodies.by_seq {
            type Row = (
                String,
                Vec<u8>,
                String,
                Option<TraceParent>,
                Option<String>,
                Option<String>,
            );
            let (content_type, payload, envelope, traceparent, history, last_error): Row = conn
                .query_row(
                    "SELECT content_type, payload, envelope, traceparent, history, last_error FROM messages WHERE seq = ?1",
                    [seq],
                    |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            super::queue::read_traceparent(row, 3)?,
                            row.get(4)?,
                            row.get(5)?,
                        ))
                    },
                )
                .expect("a kept body has its row");
            assert_eq!(
                (
                    &body.payload.content_type,
                    &body.payload.bytes,
                    &body.envelope,
                    &body.traceparent
                ),
                (&content_type, &payload, &envelope, &traceparent),
                "kept body of seq {seq} differs from its row"
            );
            assert_eq!((history, last_error), (None, None), "seq {seq} is not new");
            let indexed = self.queues.values().any(|q| q.entry(*seq).is_some());
            assert!(indexed, "kept body of seq {seq} is not indexed");
        }
        let n_bytes: usize = self.bodies.by_seq.values().map(Body::n_bytes).sum();
        assert_eq!(n_bytes, self.bodies.n_bytes, "kept body bytes are counted");
    }

    pub(super) fn queue(&self, queue_id: QueueId) -> Option<&QueueIndex> {
        self.queues.get(&queue_id)
    }

    pub(super) fn queue_mut(&mut self, queue_id: QueueId) -> &mut QueueIndex {
        self.queues.entry(queue_id).or_default()
    }

    pub(super) fn remove_queue(&mut self, queue_id: QueueId) {
        if let Some(queue) = self.queues.remove(&queue_id) {
            for seq in queue.entries.keys() {
                self.bodies.remove(*seq);
            }
        }
        self.waiters.remove(&queue_id);
    }

    /// A new lease number, never handed out before.
    pub(super) fn next_lease_gen(&mut self) -> i64 {
        self.next_lease_gens(1)
    }

    /// A new message seq, never handed out before.
    pub(super) fn next_seq(&mut self) -> i64 {
        self.last_seq += 1;
        self.last_seq
    }

    /// Writes the last seq handed out, once per transaction that made any:
    /// the writer calls it before each commit.
    pub(super) fn save_last_seq(&mut self, conn: &Connection) -> Result<()> {
        if self.saved_seq == self.last_seq {
            return Ok(());
        }
        conn.prepare_cached("UPDATE counters SET value = ?1 WHERE name = 'message_seq'")
            .and_then(|mut stmt| stmt.execute([self.last_seq]))
            .map_err(|e| backend("save the message counter", e))?;
        self.saved_seq = self.last_seq;
        Ok(())
    }

    /// The first of `n` new consecutive lease numbers.
    pub(super) fn next_lease_gens(&mut self, n: usize) -> i64 {
        let first = self.last_lease_gen + 1;
        self.last_lease_gen += n as i64;
        first
    }

    /// Keeps the body of a message just inserted, unless the cache is full.
    pub(super) fn keep_body(&mut self, seq: i64, body: Body) {
        let n_bytes = body.n_bytes();
        if self.bodies.n_bytes + n_bytes > BODIES_BYTES_MAX {
            return;
        }
        self.bodies.n_bytes += n_bytes;
        if let Some(old) = self.bodies.by_seq.insert(seq, body) {
            self.bodies.n_bytes -= old.n_bytes();
        }
    }

    /// Whether the body of `seq` is kept.
    pub(super) fn has_body(&self, seq: i64) -> bool {
        self.bodies.by_seq.contains_key(&seq)
    }

    /// Takes the kept body of `seq`, if any.
    pub(super) fn take_body(&mut self, seq: i64) -> Option<Body> {
        self.bodies.remove(seq)
    }

    /// Registers a waiting consumer; returns its id.
    pub(super) fn add_waiter(
        &mut self,
        queue_id: QueueId,
        n_max: u32,
        lease_ms: i64,
        reply: oneshot::Sender<Result<ClaimResult>>,
    ) -> u64 {
        self.next_waiter_id += 1;
        let id = self.next_waiter_id;
        self.waiters.entry(queue_id).or_default().push(Waiter {
            id,
            n_max,
            lease_ms,
            reply,
        });
        id
    }

    /// Removes a waiter; `false` when it was already served or gone.
    pub(super) fn remove_waiter(&mut self, queue_id: QueueId, waiter_id: u64) -> bool {
        let Some(waiters) = self.waiters.get_mut(&queue_id) else {
            return false;
        };
        let before = waiters.len();
        waiters.retain(|w| w.id != waiter_id);
        before != waiters.len()
    }

    /// The live waiters of a queue, oldest first (gone ones are dropped).
    pub(super) fn waiters(&mut self, queue_id: QueueId) -> &[Waiter] {
        match self.waiters.get_mut(&queue_id) {
            Some(waiters) => {
                waiters.retain(|w| !w.reply.is_closed());
                waiters
            }
            None => &[],
        }
    }

    /// Hands a waiter its deliveries: it leaves the waiting list and is
    /// answered when the transaction commits.
    pub(super) fn serve_waiter(&mut self, queue_id: QueueId, waiter_id: u64, result: ClaimResult) {
        let Some(waiters) = self.waiters.get_mut(&queue_id) else {
            return;
        };
        if let Some(pos) = waiters.iter().position(|w| w.id == waiter_id) {
            let waiter = waiters.remove(pos);
            self.replies.push((waiter.reply, result));
        }
    }

    /// The waiters served in the transaction that just ended, to be answered
    /// with [`answer`] once it is durable.
    pub(super) fn take_replies(&mut self) -> Vec<WaiterReply> {
        std::mem::take(&mut self.replies)
    }

    /// Whether `lease` is the current lease of its message and has not
    /// ended at `now`: exactly when the row says so.
    pub(super) fn lease_holds(&self, lease: LeaseRef, now: i64) -> bool {
        self.queues
            .get(&lease.queue_id)
            .and_then(|queue| queue.get(lease.seq))
            .is_some_and(|(visible_at, entry)| {
                entry.state == MessageState::Leased
                    && entry.lease_gen == lease.lease_gen
                    && visible_at > now
            })
    }

    /// The index entry of a message.
    pub(super) fn entry(&self, queue_id: QueueId, seq: i64) -> Option<Entry> {
        self.queues
            .get(&queue_id)
            .and_then(|queue| queue.entry(seq))
    }

    /// Keeps the waiters and pending replies of `self` in a freshly loaded index.
    pub(super) fn take_waiters_from(&mut self, old: &mut Index) {
        self.waiters = std::mem::take(&mut old.waiters);
        self.next_waiter_id = old.next_waiter_id;
        // Numbers handed out in the failed batch were never committed, but
        // skipping them costs nothing and keeps them unique.
        self.last_lease_gen = self.last_lease_gen.max(old.last_lease_gen);
        self.last_seq = self.last_seq.max(old.last_seq);
    }

    /// Removes a message wherever it is.
    pub(super) fn remove(&mut self, queue_id: QueueId, seq: i64) {
        if let Some(queue) = self.queues.get_mut(&queue_id) {
            queue.remove(seq);
        }
        self.bodies.remove(seq);
    }

    /// Moves a message within its queue (see [`QueueIndex::update`]); its
    /// kept body, if any, is dropped.
    pub(super) fn update(
        &mut self,
        queue_id: QueueId,
        seq: i64,
        visible_at: i64,
        state: MessageState,
        lease_gen: Option<i64>,
    ) {
        self.queue_mut(queue_id)
            .update(seq, visible_at, state, lease_gen);
        self.bodies.remove(seq);
    }

    /// Puts a message in a queue, replacing what was indexed of it; its
    /// kept body, if any, is dropped.
    pub(super) fn put(&mut self, queue_id: QueueId, seq: i64, visible_at: i64, entry: Entry) {
        self.queue_mut(queue_id).insert(seq, visible_at, entry);
        self.bodies.remove(seq);
    }
}

impl Bodies {
    fn remove(&mut self, seq: i64) -> Option<Body> {
        let body = self.by_seq.remove(&seq)?;
        self.n_bytes -= body.n_bytes();
        Some(body)
    }
}

/// One row of the index query.
type LoadedEntry = (QueueId, i64, i64, Entry);

fn read_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<LoadedEntry>> {
    let state: i64 = row.get(3)?;
    let Some(state) = MessageState::from_code(state) else {
        return Ok(Err(StorageError::Corrupt(format!("message state {state}"))));
    };
    let id: [u8; 16] = row.get(5)?;
    let entry = Entry {
        id: MessageId(Uuid::from_bytes(id)),
        state,
        enqueued_at: row.get(4)?,
        attempts: row.get(6)?,
        lease_gen: row.get(7)?,
        expires_at: row.get(8)?,
    };
    Ok(Ok((row.get(0)?, row.get(1)?, row.get(2)?, entry)))
}

impl QueueIndex {
    fn insert(&mut self, seq: i64, visible_at: i64, entry: Entry) {
        assert!(
            entry.state != MessageState::Parked,
            "parked messages are not indexed"
        );
        if let Some((old, _)) = self.entries.insert(seq, (visible_at, entry)) {
            self.by_visibility.remove(&(old, seq));
        }
        self.by_visibility.insert((visible_at, seq));
    }

    /// Moves a message to a new visibility and state, keeping the rest; a
    /// `lease_gen` is a new lease, which counts an attempt.
    fn update(&mut self, seq: i64, visible_at: i64, state: MessageState, lease_gen: Option<i64>) {
        let Some((old_visible_at, entry)) = self.entries.get_mut(&seq) else {
            return;
        };
        entry.state = state;
        if let Some(lease_gen) = lease_gen {
            entry.attempts += 1;
            entry.lease_gen = lease_gen;
        }
        let old_visible_at = std::mem::replace(old_visible_at, visible_at);
        if old_visible_at != visible_at {
            self.by_visibility.remove(&(old_visible_at, seq));
            self.by_visibility.insert((visible_at, seq));
        }
    }

    pub(super) fn remove(&mut self, seq: i64) {
        if let Some((old, _)) = self.entries.remove(&seq) {
            self.by_visibility.remove(&(old, seq));
        }
    }

    pub(super) fn entry(&self, seq: i64) -> Option<Entry> {
        self.get(seq).map(|(_, entry)| entry)
    }

    /// A message's visibility (its lease end, when leased) and entry.
    fn get(&self, seq: i64) -> Option<(i64, Entry)> {
        self.entries.get(&seq).copied()
    }

    /// Up to `n_max` messages visible at `now`, in delivery order.
    pub(super) fn visible(&self, now: i64, n_max: usize) -> Vec<i64> {
        self.by_visibility
            .range(..=(now, i64::MAX))
            .take(n_max)
            .map(|&(_, seq)| seq)
            .collect()
    }

    /// Up to `n_max` messages in delivery order, whatever their visibility.
    pub(super) fn first(&self, n_max: usize) -> Vec<i64> {
        self.by_visibility
            .iter()
            .take(n_max)
            .map(|&(_, seq)| seq)
            .collect()
    }

    /// The oldest `n_max` messages not leased to a consumer.
    pub(super) fn oldest_unleased(&self, n_max: usize) -> Vec<i64> {
        let mut seqs: Vec<i64> = self
            .entries
            .iter()
            .filter(|(_, (_, entry))| entry.state != MessageState::Leased)
            .map(|(&seq, _)| seq)
            .collect();
        seqs.sort_unstable();
        seqs.truncate(n_max);
        seqs
    }

    /// Earliest visibility strictly after `now`.
    pub(super) fn next_visible_after(&self, now: i64) -> Option<i64> {
        self.by_visibility
            .range((now + 1, i64::MIN)..)
            .next()
            .map(|&(at, _)| at)
    }

    /// Messages in the queue (parked ones excluded).
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// `(ready, in_flight, scheduled, oldest enqueue time)` at `now`.
    pub(super) fn counts(&self, now: i64) -> (u64, u64, u64, Option<i64>) {
        let (mut ready, mut in_flight, mut scheduled, mut oldest) = (0, 0, 0, None::<i64>);
        for &(visible_at, entry) in self.entries.values() {
            match (entry.state, visible_at <= now) {
                // An expired lease or a due retry is deliverable again.
                (_, true) => ready += 1,
                (MessageState::Leased, false) => in_flight += 1,
                (_, false) => scheduled += 1,
            }
            oldest = Some(oldest.map_or(entry.enqueued_at, |t| t.min(entry.enqueued_at)));
        }
        (ready, in_flight, scheduled, oldest)
    }
}
