//! Durable state behind one seam: one trait per concept ([`QueueStore`] today;
//! the event log, topic partitions, saga state and spans join it), and one
//! enum, [`Store`], over the backends.
//!
//! Backends: `sqlite` (a file, the default, or `:memory:` for non-durable
//! queues). A PostgreSQL backend implements the same traits with
//! `FOR UPDATE SKIP LOCKED` claims and `LISTEN/NOTIFY` wake-ups, and must pass
//! the same [`conformance`] suite.
//!
//! Storage stores records, not workflows: it knows "claim up to `n_max`
//! visible messages and lease them until `lease_until`", never what a retry
//! policy or a saga is. Nothing outside this module names `rusqlite`.

pub(crate) mod span_batch;
pub mod sqlite;

#[cfg(test)]
mod conformance;

pub use span_batch::SpanBatch;

use std::future::Future;

use crate::clock::Timestamp;
use crate::envelope::{MessageId, Payload, TraceParent};

/// A queue's row id inside one store.
pub type QueueId = i64;

/// A declared queue as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRow {
    /// Row id, used by every message of the queue.
    pub id: QueueId,
    /// Validated queue name, unique in the store.
    pub name: String,
    /// The queue's settings, serialized by the queue module (opaque here).
    pub settings: String,
    /// When it was declared.
    pub created_at: Timestamp,
}

/// Where a message is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Waiting for a consumer; visible from `visible_at` (later when delayed).
    Ready,
    /// Handed to a consumer, invisible until `visible_at` (the lease's end).
    Leased,
    /// Waiting for a retry due at `visible_at`.
    Scheduled,
    /// Dead-lettered without a dead-letter queue: kept for an operator,
    /// never delivered.
    Parked,
}

impl MessageState {
    /// Stable numeric code, shared by all backends.
    pub fn code(self) -> i64 {
        match self {
            MessageState::Ready => 0,
            MessageState::Leased => 1,
            MessageState::Scheduled => 2,
            MessageState::Parked => 3,
        }
    }

    /// Inverse of [`MessageState::code`].
    pub fn from_code(code: i64) -> Option<MessageState> {
        Some(match code {
            0 => MessageState::Ready,
            1 => MessageState::Leased,
            2 => MessageState::Scheduled,
            3 => MessageState::Parked,
            _ => return None,
        })
    }
}

/// Why a message was dead-lettered.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DeadReason {
    /// A consumer rejected it.
    Rejected,
    /// It failed on its last allowed attempt.
    MaxRetries,
    /// Its time to live ran out before it was delivered.
    Expired,
    /// The queue was at its maximum length (overflow = dead-letter oldest).
    Overflow,
}

impl DeadReason {
    /// Stable text form, stored and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::Rejected => "rejected",
            DeadReason::MaxRetries => "max-retries",
            DeadReason::Expired => "expired",
            DeadReason::Overflow => "overflow",
        }
    }

    /// Inverse of [`DeadReason::as_str`].
    pub fn parse(text: &str) -> Option<DeadReason> {
        Some(match text {
            "rejected" => DeadReason::Rejected,
            "max-retries" => DeadReason::MaxRetries,
            "expired" => DeadReason::Expired,
            "overflow" => DeadReason::Overflow,
            _ => return None,
        })
    }
}

/// One entry of a message's provenance: operator actions and dead-lettering
/// are recorded on the message itself, so a redrive knows where it came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    /// When it happened.
    pub at: Timestamp,
    /// What happened: `dead-lettered`, `retried`, `moved`.
    pub action: String,
    /// Queue the message was in before.
    pub from_queue: String,
    /// Queue it went to, if it moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_queue: Option<String>,
    /// Reason or note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Attempts used before this happened.
    pub attempts: u32,
}

/// Dead-letter details of a message that was dead-lettered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeathRecord {
    /// Why.
    pub reason: DeadReason,
    /// The queue it was dead-lettered from.
    pub origin_queue: String,
    /// When.
    pub at: Timestamp,
    /// Delivery attempts used in the origin queue.
    pub attempts: u32,
}

/// A message to insert.
#[derive(Clone, Debug)]
pub struct NewMessage {
    /// Its id.
    pub id: MessageId,
    /// Its body.
    pub payload: Payload,
    /// Its envelope, as JSON text: encoded and decoded by the queue module,
    /// off the writer's thread.
    pub envelope: String,
    /// The envelope's W3C `traceparent`, kept apart from its text.
    pub traceparent: Option<TraceParent>,
    /// First delivery not before this.
    pub visible_at: Timestamp,
    /// Dead-letter as expired if still undelivered at this time.
    pub expires_at: Option<Timestamp>,
    /// Deduplication key, if any.
    pub idempotency_key: Option<String>,
}

/// A message as stored, with its delivery state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// Store-wide, never reused sequence number (the delivery order).
    pub seq: i64,
    /// Queue it is in now.
    pub queue_id: QueueId,
    /// Its id.
    pub id: MessageId,
    /// Its body.
    pub payload: Payload,
    /// Its envelope, as JSON text: encoded and decoded by the queue module,
    /// off the writer's thread.
    pub envelope: String,
    /// The envelope's W3C `traceparent`, kept apart from its text.
    pub traceparent: Option<TraceParent>,
    /// Where it is in its life.
    pub state: MessageState,
    /// Deliveries handed out so far in this queue.
    pub attempts: u32,
    /// When it entered this queue.
    pub enqueued_at: Timestamp,
    /// When it becomes visible (ready/scheduled) or its lease ends (leased).
    pub visible_at: Timestamp,
    /// When it expires, if it has a TTL.
    pub expires_at: Option<Timestamp>,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// Set when the message was dead-lettered.
    pub death: Option<DeathRecord>,
    /// Provenance: dead-lettering and operator actions, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Number of its current (or last) lease, unique in the store.
    pub lease_gen: i64,
}

/// What to do when an insert would exceed a queue's maximum length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverflowAction {
    /// Refuse the insert.
    Reject,
    /// Dead-letter the oldest messages to make room (to this queue, or
    /// parked when `None`).
    DeadLetterOldest {
        /// Dead-letter queue, or `None` to park.
        to: Option<QueueId>,
    },
}

/// Limits applied by an insert, atomically with it.
#[derive(Clone, Debug)]
pub struct InsertPolicy {
    /// Current time.
    pub now: Timestamp,
    /// Maximum number of messages in the queue (excluding parked ones).
    pub length_max: Option<u64>,
    /// What to do when `length_max` would be exceeded.
    pub overflow: OverflowAction,
    /// Idempotency keys stay claimed until this time.
    pub dedup_until: Timestamp,
    /// Name of the queue (for dead-letter history).
    pub queue_name: String,
}

/// One inserted message: its id, or the first message's id for a duplicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inserted {
    /// Id assigned (or found, for a duplicate).
    pub id: MessageId,
    /// `true` when the idempotency key matched and nothing was stored.
    pub duplicate: bool,
}

/// A message dead-lettered as a side effect of an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLettered {
    /// The message.
    pub id: MessageId,
    /// Why.
    pub reason: DeadReason,
    /// Dead-letter queue it went to, or `None` when parked.
    pub to: Option<QueueId>,
    /// Attempts it had used.
    pub attempts: u32,
    /// Its envelope (JSON text), so the dead-lettering can be traced.
    pub envelope: String,
    /// Its traceparent, for the same.
    pub traceparent: Option<TraceParent>,
}

/// Result of an insert.
#[derive(Clone, Debug, Default)]
pub struct InsertResult {
    /// One entry per message, in input order.
    pub inserted: Vec<Inserted>,
    /// Messages dead-lettered to make room (overflow).
    pub dead_lettered: Vec<DeadLettered>,
}

/// How claims handle messages that must not be delivered again.
#[derive(Clone, Copy, Debug)]
pub struct ClaimPolicy {
    /// Current time.
    pub now: Timestamp,
    /// Lease end for each claimed message.
    pub lease_until: Timestamp,
    /// A message with this many attempts used is dead-lettered, not delivered.
    pub attempts_max: u32,
    /// Dead-letter queue, or `None` to park.
    pub dead_letter_to: Option<QueueId>,
}

/// Result of a claim.
#[derive(Clone, Debug, Default)]
pub struct ClaimResult {
    /// Leased messages, attempt already counted.
    pub deliveries: Vec<StoredMessage>,
    /// Messages found expired or out of attempts, dead-lettered instead.
    pub dead_lettered: Vec<DeadLettered>,
}

/// The answer to [`QueueStore::claim_or_wait`].
#[derive(Debug)]
pub enum ClaimOrWait {
    /// Messages were visible (or dead-lettered on the way): here they are.
    Claimed(ClaimResult),
    /// Nothing was visible; the consumer is registered as waiting.
    Waiting(WaitTicket),
}

/// A consumer's place in line for new messages of a queue.
#[derive(Debug)]
pub struct WaitTicket {
    /// Identifies the wait, to cancel it.
    pub id: u64,
    /// When the next message already in the queue becomes visible (a retry,
    /// a delayed message, a lease running out); wake up then at the latest.
    pub next_visible_at: Option<Timestamp>,
    /// Resolves with the deliveries (already leased, attempt counted) once a
    /// send that served this consumer has committed.
    pub deliveries: tokio::sync::oneshot::Receiver<Result<ClaimResult>>,
}

/// Identifies one delivery: the message and the attempt it was handed out as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeaseRef {
    /// Queue of the message.
    pub queue_id: QueueId,
    /// The message's sequence number.
    pub seq: i64,
    /// The attempt this lease belongs to.
    pub attempt: u32,
    /// The lease's store-wide number: what the store checks.
    pub lease_gen: i64,
}

/// How a delivery ends.
#[derive(Clone, Debug)]
pub enum Settlement {
    /// Done: remove the message.
    Ack,
    /// Deliver again at `visible_at`.
    Retry {
        /// When the retry is due.
        visible_at: Timestamp,
        /// What went wrong.
        error: Option<String>,
    },
    /// Dead-letter now.
    DeadLetter {
        /// Why.
        reason: DeadReason,
        /// Dead-letter queue, or `None` to park.
        to: Option<QueueId>,
        /// What went wrong.
        error: Option<String>,
        /// Name of the queue (for the history).
        queue_name: String,
    },
}

/// Why a lease token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaleReason {
    /// No such message: acked already, deleted, or never existed.
    Gone,
    /// The message was handed out again since; this lease is superseded.
    Superseded {
        /// Attempt of the current lease.
        current_attempt: u32,
    },
    /// The lease ran out; the message is visible to other consumers.
    Expired {
        /// When the lease ended.
        at: Timestamp,
    },
    /// The message is not leased (waiting for a retry or dead-lettered).
    NotLeased,
}

/// Selects dead letters for listing and operator actions.
#[derive(Clone, Debug, Default)]
pub struct DeadLetterQuery {
    /// Only dead letters sitting in this queue (a DLQ, or a queue that
    /// parked them).
    pub queue_id: Option<QueueId>,
    /// Only those dead-lettered from this queue.
    pub origin_queue: Option<String>,
    /// Only those with this reason.
    pub reason: Option<DeadReason>,
    /// Only these messages.
    pub ids: Option<Vec<MessageId>>,
    /// Only those with a sequence number above this (paging).
    pub after_seq: Option<i64>,
    /// At most this many (listing only; actions apply to all matches).
    pub limit: Option<u32>,
}

/// Message counts of one queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Deliverable now.
    pub ready: u64,
    /// Leased to a consumer.
    pub in_flight: u64,
    /// Waiting for a retry or a delayed first delivery.
    pub scheduled: u64,
    /// Dead-lettered from this queue and still kept (in a DLQ or parked).
    pub dead_lettered: u64,
    /// Parked in this queue (dead-lettered without a DLQ).
    pub parked: u64,
    /// Enqueue time of the oldest message not yet acked.
    pub oldest_enqueued_at: Option<Timestamp>,
}

/// When the caller of a write hears its outcome. Under
/// `Durability::Relaxed` both mean at commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answered {
    /// Once the commit is on disk (fsynced): sends, acks through the API,
    /// everything whose loss after a power cut would break a promise.
    WhenDurable,
    /// Once committed, before the fsync. A committed transaction is in the
    /// operating system's page cache, so a crash of the engine (`kill -9`)
    /// cannot undo it; only a power cut before the fsync can. PostgreSQL's
    /// `synchronous_commit = off` for one transaction is the same promise.
    AtCommit,
}

/// What a maintenance pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Dedup keys forgotten.
    pub dedup_keys_removed: u64,
    /// Pages returned to the file system.
    pub pages_freed: u64,
    /// Size of the stored data after the pass: the database file's pages,
    /// without the write-ahead log (0 in memory).
    pub size_bytes: u64,
    /// Size of the write-ahead log after the pass. It is kept, up to the
    /// configured `wal_bytes_max`, for the next commits to overwrite rather
    /// than append to (0 in memory).
    pub wal_bytes: u64,
}

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A queue with this name exists in the store.
    ///
    /// Handling: the queue module compares settings and reports a conflict.
    #[error("queue `{name}` already exists in storage")]
    QueueExists {
        /// The name.
        name: String,
    },
    /// The queue is at its maximum length and overflow is `Reject`.
    ///
    /// Handling: the send fails; nothing of the batch is stored.
    #[error("queue is full ({length_max} messages)")]
    QueueFull {
        /// The limit.
        length_max: u64,
    },
    /// A lease token no longer matches the message.
    ///
    /// Handling: the ack/nack is refused; the message's fate is unchanged.
    #[error("lease is stale: {0:?}")]
    StaleLease(StaleReason),
    /// The backend failed.
    ///
    /// Handling: the operation did not happen (its transaction rolled back).
    #[error("storage failed to {op}")]
    Backend {
        /// What was attempted.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Stored data could not be read back (a bug or a damaged file).
    ///
    /// Handling: reported; the row is left as it is.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The store was closed.
    ///
    /// Handling: the engine is shutting down; retry against a new engine.
    #[error("storage is closed")]
    Closed,
}

/// Shorthand for storage results.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Queue records: declarations, messages, leases, dead letters.
pub trait QueueStore {
    /// All declared queues.
    fn queues(&self) -> impl Future<Output = Result<Vec<QueueRow>>> + Send;
    /// Declares a queue; fails with `QueueExists` when the name is taken.
    fn create_queue(
        &self,
        name: String,
        settings: String,
        now: Timestamp,
    ) -> impl Future<Output = Result<QueueRow>> + Send;
    /// Deletes a queue and its messages; returns how many messages went.
    fn delete_queue(&self, queue_id: QueueId) -> impl Future<Output = Result<u64>> + Send;
    /// Inserts messages atomically: all or none.
    fn insert(
        &self,
        queue_id: QueueId,
        messages: Vec<NewMessage>,
        policy: InsertPolicy,
    ) -> impl Future<Output = Result<InsertResult>> + Send;
    /// Leases up to `n_max` visible messages, counting an attempt for each;
    /// expired or exhausted messages met on the way are dead-lettered.
    fn claim(
        &self,
        queue_id: QueueId,
        n_max: u32,
        policy: ClaimPolicy,
    ) -> impl Future<Output = Result<ClaimResult>> + Send;
    /// Like `claim`, but when nothing is visible, registers the consumer as
    /// waiting: the next sends into the queue lease new messages to it
    /// directly, in their own transaction. The consumer must end an unserved
    /// wait with `cancel_wait` and then check its ticket once more.
    fn claim_or_wait(
        &self,
        queue_id: QueueId,
        n_max: u32,
        policy: ClaimPolicy,
    ) -> impl Future<Output = Result<ClaimOrWait>> + Send;
    /// Ends a wait; `false` when it was already served: its deliveries then
    /// arrive on the ticket once durable, possibly after this returns, and
    /// the consumer must take them (they are leased to it).
    fn cancel_wait(
        &self,
        queue_id: QueueId,
        waiter_id: u64,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Ends a delivery (ack, retry or dead-letter) if its lease still holds;
    /// returns the message's id.
    fn settle(
        &self,
        lease: LeaseRef,
        settlement: Settlement,
        now: Timestamp,
    ) -> impl Future<Output = Result<MessageId>> + Send;
    /// Settles many deliveries in one operation; each succeeds or fails on
    /// its own (the outer error means none was attempted). `answered` says
    /// whether the caller waits for the fsync.
    fn settle_many(
        &self,
        settlements: Vec<(LeaseRef, Settlement)>,
        now: Timestamp,
        answered: Answered,
    ) -> impl Future<Output = Result<Vec<Result<MessageId>>>> + Send;
    /// Dead-letters up to `n_max` ready or scheduled messages whose TTL ran out.
    fn expire(
        &self,
        queue_id: QueueId,
        queue_name: String,
        dead_letter_to: Option<QueueId>,
        now: Timestamp,
        n_max: u32,
    ) -> impl Future<Output = Result<Vec<DeadLettered>>> + Send;
    /// Earliest time after `now` when a message of the queue becomes visible.
    fn next_visible_at(
        &self,
        queue_id: QueueId,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<Timestamp>>> + Send;
    /// Up to `n_max` messages of the queue in delivery order, without
    /// leasing them (parked ones excluded).
    fn peek(
        &self,
        queue_id: QueueId,
        n_max: u32,
    ) -> impl Future<Output = Result<Vec<StoredMessage>>> + Send;
    /// Message counts of a queue.
    fn counts(
        &self,
        queue_id: QueueId,
        queue_name: String,
        now: Timestamp,
    ) -> impl Future<Output = Result<QueueCounts>> + Send;
    /// Dead letters matching `query`, in sequence order.
    fn dead_letters(
        &self,
        query: DeadLetterQuery,
    ) -> impl Future<Output = Result<Vec<StoredMessage>>> + Send;
    /// Number of dead letters matching `query` (ignores `limit`).
    fn count_dead_letters(
        &self,
        query: DeadLetterQuery,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Puts matching dead letters back into circulation in queue `to`:
    /// ready now, attempts reset, death cleared, history kept and extended
    /// with `action`. Returns the ids moved.
    fn redrive_dead_letters(
        &self,
        query: DeadLetterQuery,
        to: QueueId,
        to_name: String,
        action: &'static str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<MessageId>>> + Send;
    /// Deletes matching dead letters. Returns how many.
    fn purge_dead_letters(
        &self,
        query: DeadLetterQuery,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Forgets expired dedup keys, checkpoints the log and returns free
    /// pages to the file system.
    fn maintain(&self, now: Timestamp) -> impl Future<Output = Result<MaintenanceReport>> + Send;
}

/// One finished span, as the engine keeps it for its flow queries. Known
/// messaging attributes have their own fields (so they can be searched); the
/// rest stay in `attributes`. Backends may store it as JSON (serde); empty
/// fields are left out.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SpanRecord {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id; `None` for a root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// Span name, e.g. `send orders`.
    pub name: String,
    /// `producer`, `consumer`, `internal`, `client` or `server`.
    pub kind: String,
    /// Start, microseconds since the Unix epoch.
    pub start_us: i64,
    /// Length in microseconds.
    pub duration_us: i64,
    /// `ok`, `error` or `unset`.
    pub status: String,
    /// The error's description when `status` is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// Switchyard operation (`send`, `process`, `ack`, `dead_letter`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Queue (or topic, stream) the span is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Message the span is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The flow's correlation id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Id of the message that caused this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// Delivery attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i64>,
    /// How a delivery ended (`acked`, `retry_scheduled`, `dead_lettered`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Every other attribute.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Linked spans: `(trace_id, span_id)`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<(String, String)>,
}

/// Which spans a flow query wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpanKey {
    /// Every span of one correlation id.
    Correlation(String),
    /// Every span of one trace.
    Trace(String),
    /// Every span about one message.
    Message(String),
}

/// One recent flow, summarized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowSummaryRow {
    /// Its correlation id.
    pub correlation_id: String,
    /// Earliest span start (µs since the epoch).
    pub first_us: i64,
    /// Latest span end (µs since the epoch).
    pub last_us: i64,
    /// Spans kept of it.
    pub n_spans: u64,
    /// Spans with an error status.
    pub n_errors: u64,
    /// Dead-letterings in it.
    pub n_dead_lettered: u64,
    /// Queues it touched, sorted.
    pub queues: Vec<String>,
}

/// The engine's own copy of its spans, for flow queries without an external
/// tracing backend.
pub trait SpanStore {
    /// Stores a batch of finished spans, encoded once for every backend.
    /// Called from the span exporter's own thread, never from an async
    /// task: it may block.
    fn record_spans(&self, batch: &SpanBatch) -> Result<()>;
    /// Spans matching `key`, by start time, at most `n_max`.
    fn spans(
        &self,
        key: SpanKey,
        n_max: u32,
    ) -> impl Future<Output = Result<Vec<SpanRecord>>> + Send;
    /// The flows with the most recent activity, newest first, looking at the
    /// last `window_spans` spans only.
    fn recent_flows(
        &self,
        n_max: u32,
        window_spans: u32,
    ) -> impl Future<Output = Result<Vec<FlowSummaryRow>>> + Send;
    /// Deletes old spans: those recorded in a batch whose newest span
    /// started before `before_us`, then the oldest batches until at most
    /// `rows_max` spans remain. Spans go in whole batches (as they were
    /// recorded). Returns how many spans were deleted.
    fn prune_spans(
        &self,
        before_us: i64,
        rows_max: u64,
    ) -> impl Future<Output = Result<u64>> + Send;
}

/// The closed set of backends: one `match` per method, so the engine is not
/// generic over storage.
#[derive(Clone, Debug)]
pub enum Store {
    /// SQLite, in a file or in memory.
    Sqlite(sqlite::SqliteStore),
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Store::Sqlite($store) => $call,
        }
    };
}

impl Store {
    /// How well the writer coalesces work into transactions.
    pub fn writer_stats(&self) -> sqlite::WriterStats {
        dispatch!(self, s => s.writer_stats())
    }

    /// Flushes and closes the store; waits for the writer to finish.
    pub async fn close(&self) {
        dispatch!(self, s => s.close().await)
    }
}

impl SpanStore for Store {
    fn record_spans(&self, batch: &SpanBatch) -> Result<()> {
        dispatch!(self, s => s.record_spans(batch))
    }
    async fn spans(&self, key: SpanKey, n_max: u32) -> Result<Vec<SpanRecord>> {
        dispatch!(self, s => s.spans(key, n_max).await)
    }
    async fn recent_flows(&self, n_max: u32, window_spans: u32) -> Result<Vec<FlowSummaryRow>> {
        dispatch!(self, s => s.recent_flows(n_max, window_spans).await)
    }
    async fn prune_spans(&self, before_us: i64, rows_max: u64) -> Result<u64> {
        dispatch!(self, s => s.prune_spans(before_us, rows_max).await)
    }
}

impl QueueStore for Store {
    async fn queues(&self) -> Result<Vec<QueueRow>> {
        dispatch!(self, s => s.queues().await)
    }
    async fn create_queue(
        &self,
        name: String,
        settings: String,
        now: Timestamp,
    ) -> Result<QueueRow> {
        dispatch!(self, s => s.create_queue(name, settings, now).await)
    }
    async fn delete_queue(&self, queue_id: QueueId) -> Result<u64> {
        dispatch!(self, s => s.delete_queue(queue_id).await)
    }
    async fn insert(
        &self,
        queue_id: QueueId,
        messages: Vec<NewMessage>,
        policy: InsertPolicy,
    ) -> Result<InsertResult> {
        dispatch!(self, s => s.insert(queue_id, messages, policy).await)
    }
    async fn claim(
        &self,
        queue_id: QueueId,
        n_max: u32,
        policy: ClaimPolicy,
    ) -> Result<ClaimResult> {
        dispatch!(self, s => s.claim(queue_id, n_max, policy).await)
    }
    async fn claim_or_wait(
        &self,
        queue_id: QueueId,
        n_max: u32,
        policy: ClaimPolicy,
    ) -> Result<ClaimOrWait> {
        dispatch!(self, s => s.claim_or_wait(queue_id, n_max, policy).await)
    }
    async fn cancel_wait(&self, queue_id: QueueId, waiter_id: u64) -> Result<bool> {
        dispatch!(self, s => s.cancel_wait(queue_id, waiter_id).await)
    }
    async fn settle(
        &self,
        lease: LeaseRef,
        settlement: Settlement,
        now: Timestamp,
    ) -> Result<MessageId> {
        dispatch!(self, s => s.settle(lease, settlement, now).await)
    }
    async fn settle_many(
        &self,
        settlements: Vec<(LeaseRef, Settlement)>,
        now: Timestamp,
        answered: Answered,
    ) -> Result<Vec<Result<MessageId>>> {
        dispatch!(self, s => s.settle_many(settlements, now, answered).await)
    }
    async fn expire(
        &self,
        queue_id: QueueId,
        queue_name: String,
        dead_letter_to: Option<QueueId>,
        now: Timestamp,
        n_max: u32,
    ) -> Result<Vec<DeadLettered>> {
        dispatch!(self, s => s.expire(queue_id, queue_name, dead_letter_to, now, n_max).await)
    }
    async fn next_visible_at(
        &self,
        queue_id: QueueId,
        now: Timestamp,
    ) -> Result<Option<Timestamp>> {
        dispatch!(self, s => s.next_visible_at(queue_id, now).await)
    }
    async fn peek(&self, queue_id: QueueId, n_max: u32) -> Result<Vec<StoredMessage>> {
        dispatch!(self, s => s.peek(queue_id, n_max).await)
    }
    async fn counts(
        &self,
        queue_id: QueueId,
        queue_name: String,
        now: Timestamp,
    ) -> Result<QueueCounts> {
        dispatch!(self, s => s.counts(queue_id, queue_name, now).await)
    }
    async fn dead_letters(&self, query: DeadLetterQuery) -> Result<Vec<StoredMessage>> {
        dispatch!(self, s => s.dead_letters(query).await)
    }
    async fn count_dead_letters(&self, query: DeadLetterQuery) -> Result<u64> {
        dispatch!(self, s => s.count_dead_letters(query).await)
    }
    async fn redrive_dead_letters(
        &self,
        query: DeadLetterQuery,
        to: QueueId,
        to_name: String,
        action: &'static str,
        now: Timestamp,
    ) -> Result<Vec<MessageId>> {
        dispatch!(self, s => s.redrive_dead_letters(query, to, to_name, action, now).await)
    }
    async fn purge_dead_letters(&self, query: DeadLetterQuery) -> Result<u64> {
        dispatch!(self, s => s.purge_dead_letters(query).await)
    }
    async fn maintain(&self, now: Timestamp) -> Result<MaintenanceReport> {
        dispatch!(self, s => s.maintain(now).await)
    }
}
