//! The error of every queue operation.

use crate::storage::StorageError;

/// Why a queue operation failed. Each message names the queue (or token) and
/// what was wrong; the HTTP layer maps variants to status codes.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The name is not a valid queue name.
    ///
    /// Handling: 400; fix the name.
    #[error("invalid queue name `{name}`: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No queue has this name.
    ///
    /// Handling: 404; declare it first.
    #[error("queue `{queue}` does not exist")]
    UnknownQueue {
        /// The name given.
        queue: String,
    },
    /// The queue exists with a different setting.
    ///
    /// Handling: 409; declare with the existing settings, or delete it first.
    #[error(
        "queue `{queue}` already exists with {setting} = {existing}; requested {setting} = {requested}"
    )]
    AlreadyDeclared {
        /// The queue.
        queue: String,
        /// The first differing setting.
        setting: &'static str,
        /// Its current value.
        existing: String,
        /// The value requested.
        requested: String,
    },
    /// The settings are inconsistent.
    ///
    /// Handling: 400; fix the settings.
    #[error("invalid settings for queue `{queue}`: {reason}")]
    InvalidSpec {
        /// The queue.
        queue: String,
        /// What is wrong.
        reason: String,
    },
    /// The queue is exclusive to another owner.
    ///
    /// Handling: 403 (RabbitMQ's RESOURCE_LOCKED); use the owner token from
    /// the declaration.
    #[error("queue `{queue}` is exclusive to its declarer; pass its owner token")]
    Exclusive {
        /// The queue.
        queue: String,
    },
    /// The queue is another queue's dead-letter queue.
    ///
    /// Handling: 409; delete or redeclare the other queue first.
    #[error("queue `{queue}` is the dead-letter queue of `{by}` and cannot be deleted")]
    InUseAsDeadLetterQueue {
        /// The queue.
        queue: String,
        /// A queue that dead-letters into it.
        by: String,
    },
    /// The payload exceeds the engine's limit.
    ///
    /// Handling: 413; nothing was stored.
    #[error("payload is {size_bytes} bytes; queue `{queue}` accepts at most {size_bytes_max}")]
    PayloadTooLarge {
        /// The queue.
        queue: String,
        /// The payload's size.
        size_bytes: u64,
        /// The limit.
        size_bytes_max: u64,
    },
    /// A message has no payload.
    ///
    /// Handling: 400.
    #[error("a message sent to queue `{queue}` has no payload")]
    MissingPayload {
        /// The queue.
        queue: String,
    },
    /// A batch send had no messages.
    ///
    /// Handling: 400.
    #[error("batch for queue `{queue}` is empty")]
    EmptyBatch {
        /// The queue.
        queue: String,
    },
    /// A batch send had too many messages.
    ///
    /// Handling: 413; split the batch. Nothing was stored.
    #[error("batch for queue `{queue}` has {n_messages} messages; the limit is {n_max}")]
    BatchTooLarge {
        /// The queue.
        queue: String,
        /// Messages in the batch.
        n_messages: usize,
        /// The limit.
        n_max: usize,
    },
    /// The queue is at its maximum length and rejects new messages.
    ///
    /// Handling: 429/507-like back-pressure; retry later. Nothing of the send
    /// was stored.
    #[error("queue `{queue}` is full ({length_max} messages) and rejects new messages")]
    QueueFull {
        /// The queue.
        queue: String,
        /// Its maximum length.
        length_max: u64,
    },
    /// The lease length is out of range.
    ///
    /// Handling: 400.
    #[error("lease of {lease_ms} ms is out of range (1 to {lease_ms_max} ms)")]
    InvalidLease {
        /// The lease asked for.
        lease_ms: u64,
        /// The limit.
        lease_ms_max: u64,
    },
    /// The text is not a lease token.
    ///
    /// Handling: 400.
    #[error("`{token}` is not a lease token (expected SEQ.LEASE.ATTEMPT.QUEUE)")]
    InvalidLeaseToken {
        /// The text given.
        token: String,
    },
    /// The lease no longer holds; the ack/nack/reject did nothing.
    ///
    /// Handling: 409; the message's fate is decided elsewhere (it was or will
    /// be redelivered).
    #[error("lease `{token}` is stale: {reason}")]
    StaleLease {
        /// The token.
        token: String,
        /// Why.
        reason: String,
    },
    /// The storage layer failed; the operation did not happen.
    ///
    /// Handling: 500; retry.
    #[error("storage failed for queue `{queue}`")]
    Storage {
        /// The queue (`*` for all).
        queue: String,
        /// What failed.
        #[source]
        source: StorageError,
    },
}
