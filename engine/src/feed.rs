//! The engine's internal feed: every state change of every message, as it
//! happens, on a bounded broadcast channel that tracing and the console
//! attach to.
//!
//! Bounded and lossy for slow listeners: a listener that falls behind by more
//! than the capacity skips events (and is told how many) instead of slowing
//! the engine down. Nothing durable depends on the feed.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::clock::Timestamp;
use crate::envelope::MessageId;
use crate::storage::DeadReason;

/// One state change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedEvent {
    /// When it happened (engine clock).
    pub at: Timestamp,
    /// Queue it happened in.
    pub queue: Arc<str>,
    /// The message.
    pub message_id: MessageId,
    /// What happened.
    pub kind: FeedKind,
}

/// What happened to a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedKind {
    /// Stored in the queue.
    Sent,
    /// Handed to a consumer.
    Delivered {
        /// 1 for the first delivery.
        attempt: u32,
    },
    /// Acknowledged and removed.
    Acked,
    /// A consumer failed it; a retry is scheduled.
    RetryScheduled {
        /// Attempt that failed.
        attempt: u32,
        /// When the next attempt is due.
        due: Timestamp,
    },
    /// Dead-lettered (including expiry and overflow).
    DeadLettered {
        /// Why.
        reason: DeadReason,
        /// Dead-letter queue, or `None` when parked in place.
        to: Option<String>,
    },
    /// Put back into a queue by an operator (retry or move of a dead letter).
    Redriven {
        /// Queue it now waits in.
        to: String,
    },
    /// Deleted by an operator (dead-letter purge).
    Purged,
}

/// Sending side of the feed; cheap to clone.
#[derive(Clone, Debug)]
pub struct Feed {
    tx: broadcast::Sender<FeedEvent>,
    /// Counts every event, listened to or not.
    metrics: crate::telemetry::Metrics,
}

impl Feed {
    /// A feed keeping at most `capacity_events` events per slow listener.
    pub fn new(capacity_events: usize, metrics: crate::telemetry::Metrics) -> Feed {
        let (tx, _) = broadcast::channel(capacity_events.max(1));
        Feed { tx, metrics }
    }

    /// Listens from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<FeedEvent> {
        self.tx.subscribe()
    }

    /// Publishes and counts an event; a feed nobody listens to costs
    /// nothing more than the count.
    pub(crate) fn emit(
        &self,
        at: Timestamp,
        queue: &Arc<str>,
        message_id: MessageId,
        kind: FeedKind,
    ) {
        self.metrics.count(queue, &kind);
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(FeedEvent {
                at,
                queue: queue.clone(),
                message_id,
                kind,
            });
        }
    }
}
