//! Durable queues: declare, send (single, batch, delayed, idempotent), lease
//! and ack/nack/reject, retry with backoff, TTL, maximum length, and
//! dead-lettering with provenance.
//!
//! This module holds the policy (attempt limits, backoff, where dead letters
//! go, exclusivity); it persists through `storage::QueueStore` and knows
//! nothing about HTTP or SQL. Every state change is published on the
//! [`crate::feed`].

mod consumer;
mod dead_letters;
mod error;
mod spec;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

pub use consumer::{ConsumeOptions, Consumer, Outcome};
pub use dead_letters::DeadLetterFilter;
pub use error::QueueError;
pub use spec::{Backoff, Overflow, QUEUE_NAME_BYTES_MAX, QueueName, QueueSpec};

use crate::clock::{Clock, Timestamp};
use crate::config::QueueConfig;
use crate::envelope::{Envelope, MessageId, OutgoingMessage, Payload, TraceParent};
use crate::feed::{Feed, FeedKind};
use crate::storage::{
    Answered, ClaimPolicy, ClaimResult, DeadLettered, HistoryEntry, InsertPolicy, LeaseRef,
    MessageState, NewMessage, OverflowAction, QueueId, QueueStore, Settlement, StaleReason,
    StorageError, Store, StoredMessage,
};
use crate::telemetry::{self, DeliveryMode, MessageIds, Settled, Telemetry};

pub use crate::storage::DeadReason;

/// Handle to every queue of an engine. Cheap to clone.
#[derive(Clone)]
pub struct Queues {
    inner: Arc<Inner>,
}

struct Inner {
    /// Holds durable queues (on disk when the engine has a data directory).
    durable: Store,
    /// Holds non-durable queues; always in memory.
    transient: Store,
    clock: Clock,
    feed: Feed,
    telemetry: Telemetry,
    config: QueueConfig,
    /// Declared queues by name. A std lock: never held across an await.
    registry: RwLock<HashMap<Arc<str>, Arc<QueueEntry>>>,
    /// Serializes declarations and deletions so that check-then-create is atomic.
    declare_lock: tokio::sync::Mutex<()>,
}

/// A declared queue as the engine keeps it in memory.
struct QueueEntry {
    name: QueueName,
    spec: QueueSpec,
    id: QueueId,
    created_at: Timestamp,
    /// Dead-letter queue: its row id (same store) and name.
    dead_letter: Option<(QueueId, QueueName)>,
    /// Owner token of an exclusive queue.
    owner: Option<String>,
    /// Woken whenever messages may have become visible, so idle push
    /// consumers claim at once instead of polling.
    wake: Notify,
    /// Push consumers attached now.
    n_consumers: AtomicUsize,
}

/// A declared queue, as reported to callers.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueInfo {
    /// The queue's settings.
    pub spec: QueueSpec,
    /// When it was declared.
    pub created_at: Timestamp,
    /// For an exclusive queue, the token its owner passes to consume; only
    /// returned to the declarer.
    pub owner: Option<String>,
    /// Push consumers attached now.
    pub n_consumers: usize,
}

/// A message as stored in a queue, with its delivery state and provenance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its id.
    pub id: MessageId,
    /// Queue it is in.
    pub queue: String,
    /// Its body.
    pub payload: Payload,
    /// Its envelope.
    pub envelope: Envelope,
    /// Where it is in its life.
    pub state: MessageState,
    /// Deliveries handed out so far in this queue.
    pub attempts: u32,
    /// When it entered this queue.
    pub enqueued_at: Timestamp,
    /// Next visibility (or lease end).
    pub visible_at: Timestamp,
    /// When it expires, if it has a TTL.
    pub expires_at: Option<Timestamp>,
    /// Error of the last failed attempt.
    pub last_error: Option<String>,
    /// Set for dead letters.
    pub dead_letter: Option<DeadLetterInfo>,
    /// Dead-lettering and operator actions, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// Why and from where a message was dead-lettered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterInfo {
    /// Why.
    pub reason: DeadReason,
    /// The queue it was dead-lettered from.
    pub origin_queue: String,
    /// When.
    pub at: Timestamp,
    /// Attempts it used in the origin queue.
    pub attempts: u32,
}

/// A message handed to a consumer under a lease.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The message.
    pub message: Message,
    /// Token to ack, nack or reject this delivery with.
    pub lease: LeaseToken,
    /// Attempt number of this delivery (1 for the first).
    pub attempt: u32,
    /// `true` when an earlier attempt was handed out before.
    pub redelivered: bool,
    /// The message becomes visible again at this time unless settled.
    pub lease_until: Timestamp,
    /// W3C `traceparent` of this delivery's consumer span (when tracing is
    /// on): follow-up messages continue the trace from here.
    pub traceparent: Option<TraceParent>,
}

impl Delivery {
    /// A new message caused by this delivery: it carries this message's
    /// correlation id, this message's id as its causation id, and its trace
    /// context, so the flow can be followed across the hop without the
    /// handler copying ids by hand.
    pub fn follow_up(&self, message: OutgoingMessage) -> OutgoingMessage {
        let envelope = &self.message.envelope;
        OutgoingMessage {
            correlation_id: Some(envelope.correlation_id.clone()),
            causation_id: Some(self.message.id.to_string()),
            traceparent: message
                .traceparent
                .or(self.traceparent)
                .or(envelope.traceparent),
            tracestate: message.tracestate.or_else(|| envelope.tracestate.clone()),
            ..message
        }
    }
}

/// Names one delivery of one message: `SEQ.LEASE.ATTEMPT.QUEUE`. A token stops
/// working once its delivery is settled, its lease runs out, or the message
/// is handed out again.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaseToken {
    queue: QueueName,
    seq: i64,
    /// The lease's store-wide number: a token never matches a later lease.
    lease_gen: i64,
    attempt: u32,
}

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}",
            self.seq, self.lease_gen, self.attempt, self.queue
        )
    }
}

impl FromStr for LeaseToken {
    type Err = QueueError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || QueueError::InvalidLeaseToken {
            token: text.to_owned(),
        };
        let (seq, rest) = text.split_once('.').ok_or_else(invalid)?;
        let (lease_gen, rest) = rest.split_once('.').ok_or_else(invalid)?;
        let (attempt, queue) = rest.split_once('.').ok_or_else(invalid)?;
        Ok(LeaseToken {
            seq: seq.parse().map_err(|_| invalid())?,
            lease_gen: lease_gen.parse().map_err(|_| invalid())?,
            attempt: attempt.parse().map_err(|_| invalid())?,
            queue: QueueName::new(queue).map_err(|_| invalid())?,
        })
    }
}

impl LeaseToken {
    /// The queue the delivery came from.
    pub fn queue(&self) -> &str {
        self.queue.as_str()
    }
}

/// Options of a pull receive.
#[derive(Clone, Debug, Default)]
pub struct ReceiveOptions {
    /// Most messages to lease (at least 1; capped by the engine's limit).
    pub n_max: u32,
    /// Lease length; the engine default when `None`.
    pub lease_ms: Option<u64>,
    /// Owner token, required for exclusive queues.
    pub owner: Option<String>,
}

/// What a send stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendReceipt {
    /// Id of the message (the first message's id for a duplicate).
    pub id: MessageId,
    /// `true` when the idempotency key matched a recent message and nothing
    /// new was stored.
    pub duplicate: bool,
}

/// Counts and ages of one queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue.
    pub queue: String,
    /// Deliverable now.
    pub ready: u64,
    /// Leased to consumers.
    pub in_flight: u64,
    /// Waiting for a retry or a delayed first delivery.
    pub scheduled: u64,
    /// Dead-lettered from this queue and still kept (in its DLQ or parked).
    pub dead_lettered: u64,
    /// Dead letters parked in this queue (it has no DLQ).
    pub parked: u64,
    /// Age of the oldest message not yet acked.
    pub oldest_age_ms: Option<u64>,
    /// Push consumers attached.
    pub n_consumers: usize,
}

impl Queues {
    /// Loads declared durable queues. Exclusive queues do not outlive their
    /// owner, so any left from an earlier run are deleted.
    pub(crate) async fn open(
        durable: Store,
        transient: Store,
        clock: Clock,
        feed: Feed,
        telemetry: Telemetry,
        config: QueueConfig,
    ) -> Result<Queues, QueueError> {
        let queues = Queues {
            inner: Arc::new(Inner {
                durable,
                transient,
                clock,
                feed,
                telemetry,
                config,
                registry: RwLock::new(HashMap::new()),
                declare_lock: tokio::sync::Mutex::new(()),
            }),
        };
        queues.load().await?;
        Ok(queues)
    }

    async fn load(&self) -> Result<(), QueueError> {
        let rows = self
            .inner
            .durable
            .queues()
            .await
            .map_err(|source| storage_error("*", source))?;
        let mut specs = Vec::with_capacity(rows.len());
        for row in rows {
            let spec: QueueSpec =
                serde_json::from_str(&row.settings).map_err(|e| QueueError::Storage {
                    queue: row.name.clone(),
                    source: StorageError::Corrupt(format!("queue settings: {e}")),
                })?;
            if spec.exclusive {
                self.inner
                    .durable
                    .delete_queue(row.id)
                    .await
                    .map_err(|e| storage_error(&row.name, e))?;
                continue;
            }
            specs.push((row, spec));
        }
        let ids: HashMap<String, QueueId> = specs
            .iter()
            .map(|(row, _)| (row.name.clone(), row.id))
            .collect();
        let mut registry = self.inner.registry.write().expect("registry lock");
        for (row, spec) in specs {
            let name = QueueName::new(&row.name)?;
            let dead_letter = match &spec.dead_letter_queue {
                Some(dlq) => Some((
                    *ids.get(dlq).ok_or_else(|| unknown(dlq))?,
                    QueueName::new(dlq)?,
                )),
                None => None,
            };
            let entry = new_entry(name, spec, row.id, row.created_at, dead_letter, None);
            registry.insert(entry.name.shared().clone(), Arc::new(entry));
        }
        Ok(())
    }

    /// Declares a queue, or confirms an existing one with identical settings.
    /// A dead-letter queue named in `spec` is declared too when missing.
    pub async fn declare(&self, spec: QueueSpec) -> Result<QueueInfo, QueueError> {
        let name = QueueName::new(&spec.name)?;
        spec.validate().map_err(|reason| QueueError::InvalidSpec {
            queue: spec.name.clone(),
            reason,
        })?;
        let _declaring = self.inner.declare_lock.lock().await;
        if let Some(existing) = self.find(name.as_str()) {
            if let Some((setting, existing_value, requested)) = existing.spec.diff(&spec) {
                return Err(QueueError::AlreadyDeclared {
                    queue: spec.name,
                    setting,
                    existing: existing_value,
                    requested,
                });
            }
            if existing.spec.exclusive {
                return Err(QueueError::Exclusive { queue: spec.name });
            }
            return Ok(existing.info(false));
        }
        let dead_letter = match &spec.dead_letter_queue {
            Some(dlq) => Some(self.dead_letter_target(&spec, dlq).await?),
            None => None,
        };
        let entry = self.create(name, spec, dead_letter).await?;
        Ok(entry.info(true))
    }

    async fn dead_letter_target(
        &self,
        spec: &QueueSpec,
        dlq: &str,
    ) -> Result<(QueueId, QueueName), QueueError> {
        let target = match self.find(dlq) {
            Some(target) => target,
            None => {
                let dlq_spec = QueueSpec {
                    name: dlq.to_owned(),
                    durable: spec.durable,
                    ..QueueSpec::default()
                };
                self.create(QueueName::new(dlq)?, dlq_spec, None).await?
            }
        };
        if target.spec.durable != spec.durable {
            return Err(QueueError::InvalidSpec {
                queue: spec.name.clone(),
                reason: format!(
                    "dead_letter_queue `{dlq}` has durable = {}, but this queue has durable = {}; they must match",
                    target.spec.durable, spec.durable
                ),
            });
        }
        Ok((target.id, target.name.clone()))
    }

    async fn create(
        &self,
        name: QueueName,
        spec: QueueSpec,
        dead_letter: Option<(QueueId, QueueName)>,
    ) -> Result<Arc<QueueEntry>, QueueError> {
        let settings = serde_json::to_string(&spec).expect("queue settings serialize");
        let now = self.inner.clock.now();
        let row = self
            .store(spec.durable)
            .create_queue(name.to_string(), settings, now)
            .await
            .map_err(|e| storage_error(name.as_str(), e))?;
        let owner = spec.exclusive.then(|| uuid::Uuid::now_v7().to_string());
        let entry = Arc::new(new_entry(name, spec, row.id, now, dead_letter, owner));
        self.inner
            .registry
            .write()
            .expect("registry lock")
            .insert(entry.name.shared().clone(), entry.clone());
        Ok(entry)
    }

    /// Deletes a queue and every message in it. Returns how many messages
    /// were deleted. A queue that is another queue's dead-letter queue cannot
    /// be deleted while that queue exists.
    pub async fn delete(&self, queue: &str) -> Result<u64, QueueError> {
        let _declaring = self.inner.declare_lock.lock().await;
        let entry = self.entry(queue)?;
        let users: Vec<String> = self
            .inner
            .registry
            .read()
            .expect("registry lock")
            .values()
            .filter(|other| {
                other
                    .dead_letter
                    .as_ref()
                    .is_some_and(|(_, dlq)| dlq == &entry.name)
            })
            .map(|other| other.name.to_string())
            .collect();
        if let Some(user) = users.first() {
            return Err(QueueError::InUseAsDeadLetterQueue {
                queue: queue.to_owned(),
                by: user.clone(),
            });
        }
        self.delete_entry(&entry).await
    }

    async fn delete_entry(&self, entry: &QueueEntry) -> Result<u64, QueueError> {
        let n = self
            .store(entry.spec.durable)
            .delete_queue(entry.id)
            .await
            .map_err(|e| storage_error(entry.name.as_str(), e))?;
        self.inner
            .registry
            .write()
            .expect("registry lock")
            .remove(entry.name.shared());
        entry.wake.notify_waiters();
        Ok(n)
    }

    /// Every declared queue, by name.
    pub fn list(&self) -> Vec<QueueInfo> {
        let registry = self.inner.registry.read().expect("registry lock");
        let mut infos: Vec<QueueInfo> = registry.values().map(|entry| entry.info(false)).collect();
        infos.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        infos
    }

    /// One queue's declaration.
    pub fn info(&self, queue: &str) -> Result<QueueInfo, QueueError> {
        Ok(self.entry(queue)?.info(false))
    }

    /// Sends one message. Returns once it is committed (and fsynced when the
    /// engine's durability says so).
    pub async fn send(
        &self,
        queue: &str,
        message: OutgoingMessage,
    ) -> Result<SendReceipt, QueueError> {
        let mut receipts = self.send_many(queue, vec![message]).await?;
        Ok(receipts.pop().expect("one receipt per message"))
    }

    /// Sends messages atomically: all are stored, or none is. Receipts are in
    /// input order.
    pub async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<SendReceipt>, QueueError> {
        if messages.is_empty() {
            return Err(QueueError::EmptyBatch {
                queue: queue.to_owned(),
            });
        }
        let n_max = self.inner.config.batch_messages_max;
        if messages.len() > n_max {
            return Err(QueueError::BatchTooLarge {
                queue: queue.to_owned(),
                n_messages: messages.len(),
                n_max,
            });
        }
        self.send_many(queue, messages).await
    }

    async fn send_many(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<SendReceipt>, QueueError> {
        let entry = self.entry(queue)?;
        let now = self.inner.clock.now();
        let batch_len = messages.len();
        let mut send_spans = Vec::new();
        let new_messages = messages
            .into_iter()
            .map(|message| {
                let (new, span) = self.new_message(&entry, message, now, batch_len)?;
                send_spans.extend(span);
                Ok(new)
            })
            .collect::<Result<Vec<_>, QueueError>>()?;
        let overflow = match entry.spec.overflow {
            Overflow::RejectPublish => OverflowAction::Reject,
            Overflow::DeadLetterOldest => OverflowAction::DeadLetterOldest {
                to: entry.dead_letter.as_ref().map(|d| d.0),
            },
        };
        let policy = InsertPolicy {
            now,
            length_max: entry.spec.max_length,
            overflow,
            dedup_until: now.plus(Duration::from_millis(entry.spec.dedup_window_ms)),
            queue_name: entry.name.to_string(),
        };
        let result = self
            .store(entry.spec.durable)
            .insert(entry.id, new_messages, policy)
            .await;
        match &result {
            Ok(result) => {
                for (span, inserted) in send_spans.into_iter().zip(&result.inserted) {
                    let telemetry = &self.inner.telemetry;
                    telemetry.send_ended(span, None, inserted.duplicate);
                }
            }
            Err(e) => {
                let error = e.to_string();
                for span in send_spans {
                    self.inner.telemetry.send_ended(span, Some(&error), false);
                }
            }
        }
        let result = result.map_err(|e| match e {
            StorageError::QueueFull { length_max } => QueueError::QueueFull {
                queue: queue.to_owned(),
                length_max,
            },
            other => storage_error(queue, other),
        })?;
        for inserted in result.inserted.iter().filter(|i| !i.duplicate) {
            self.inner
                .feed
                .emit(now, entry.name.shared(), inserted.id, FeedKind::Sent);
        }
        self.report_dead(&entry, &result.dead_lettered, now);
        entry.wake.notify_waiters();
        Ok(result
            .inserted
            .iter()
            .map(|i| SendReceipt {
                id: i.id,
                duplicate: i.duplicate,
            })
            .collect())
    }

    /// Validates one outgoing message and builds its stored form, starting
    /// its producer span. A message sent while a push handler runs inherits
    /// the handled message's correlation id, causation and trace.
    fn new_message(
        &self,
        entry: &QueueEntry,
        message: OutgoingMessage,
        now: Timestamp,
        batch_len: usize,
    ) -> Result<(NewMessage, Option<telemetry::SendSpan>), QueueError> {
        let payload = message.payload.ok_or_else(|| QueueError::MissingPayload {
            queue: entry.name.to_string(),
        })?;
        let size_bytes_max = self.inner.config.payload_bytes_max;
        if payload.len_bytes() > size_bytes_max {
            return Err(QueueError::PayloadTooLarge {
                queue: entry.name.to_string(),
                size_bytes: payload.len_bytes(),
                size_bytes_max,
            });
        }
        let id = MessageId::new();
        let ttl_ms = match (entry.spec.message_ttl_ms, message.ttl_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let visible_at = message.deliver_at.unwrap_or(now).max(now);
        let cause = match (&message.correlation_id, &message.causation_id) {
            (None, None) => telemetry::current_cause(),
            _ => None,
        };
        let (correlation_id, causation_id, traceparent, tracestate) = match cause {
            Some(cause) => (
                cause.correlation_id,
                Some(cause.message_id),
                message.traceparent.or(cause.traceparent),
                message.tracestate.or(cause.tracestate),
            ),
            None => (
                message.correlation_id.unwrap_or_else(|| id.to_string()),
                message.causation_id,
                message.traceparent,
                message.tracestate,
            ),
        };
        let mut envelope = Envelope {
            timestamp: now,
            source: message.source,
            correlation_id,
            causation_id,
            reply_to: message.reply_to,
            headers: message.headers,
            traceparent,
            tracestate,
        };
        let ids = MessageIds::new(entry.name.shared(), id, &envelope);
        let span = self.inner.telemetry.send_started(
            ids,
            envelope.source.as_deref(),
            (envelope.traceparent, envelope.tracestate.as_deref()),
            batch_len,
        );
        // The traceparent has its own column: bytes, no JSON text to escape
        // and parse on every send and delivery. With a producer span, the
        // message carries that span's; without, the sender's.
        let given = envelope.traceparent.take();
        let (span, traceparent) = match span {
            Some((span, traceparent)) => (Some(span), Some(traceparent)),
            None => (None, given),
        };
        let new = NewMessage {
            id,
            payload,
            envelope: encode_envelope(&envelope),
            traceparent,
            visible_at,
            // TTL counts from when the message becomes deliverable.
            expires_at: ttl_ms.map(|ttl| visible_at.plus(Duration::from_millis(ttl))),
            idempotency_key: message.idempotency_key,
        };
        Ok((new, span))
    }

    /// Leases up to `options.n_max` messages. Each delivery counts as an
    /// attempt as it is handed out, so a consumer that dies mid-handler still
    /// uses one up. Returns an empty list when nothing is visible.
    pub async fn receive(
        &self,
        queue: &str,
        options: ReceiveOptions,
    ) -> Result<Vec<Delivery>, QueueError> {
        let entry = self.entry(queue)?;
        check_owner(&entry, options.owner.as_deref())?;
        let n_max = options
            .n_max
            .clamp(1, self.inner.config.receive_messages_max);
        let lease_ms = self.lease_ms(options.lease_ms)?;
        self.claim(&entry, n_max, lease_ms).await
    }

    fn lease_ms(&self, requested: Option<u64>) -> Result<u64, QueueError> {
        let lease_ms = requested.unwrap_or(self.inner.config.lease_ms_default);
        if lease_ms == 0 || lease_ms > self.inner.config.lease_ms_max {
            return Err(QueueError::InvalidLease {
                lease_ms,
                lease_ms_max: self.inner.config.lease_ms_max,
            });
        }
        Ok(lease_ms)
    }

    async fn claim(
        &self,
        entry: &Arc<QueueEntry>,
        n_max: u32,
        lease_ms: u64,
    ) -> Result<Vec<Delivery>, QueueError> {
        let policy = self.claim_policy(entry, lease_ms);
        let result = self
            .store(entry.spec.durable)
            .claim(entry.id, n_max, policy)
            .await
            .map_err(|e| storage_error(entry.name.as_str(), e))?;
        self.deliveries(entry, result, DeliveryMode::Pull)
    }

    fn claim_policy(&self, entry: &QueueEntry, lease_ms: u64) -> ClaimPolicy {
        let now = self.inner.clock.now();
        ClaimPolicy {
            now,
            lease_until: now.plus(Duration::from_millis(lease_ms)),
            attempts_max: entry.spec.attempts_max(),
            dead_letter_to: entry.dead_letter.as_ref().map(|d| d.0),
        }
    }

    /// Turns leased records into deliveries, reporting both on the feed.
    fn deliveries(
        &self,
        entry: &QueueEntry,
        result: ClaimResult,
        mode: DeliveryMode,
    ) -> Result<Vec<Delivery>, QueueError> {
        let now = self.inner.clock.now();
        self.report_dead(entry, &result.dead_lettered, now);
        // Sized up front: collecting `Result`s cannot know the length, and a
        // claim of a few hundred deliveries grew and copied its vector nine
        // times.
        let mut deliveries = Vec::with_capacity(result.deliveries.len());
        let mut spans = self.inner.telemetry.deliveries(mode, deliveries.capacity());
        for stored in result.deliveries {
            assert!(stored.attempts >= 1 && stored.attempts <= entry.spec.attempts_max());
            assert_eq!(stored.state, MessageState::Leased);
            let kind = FeedKind::Delivered {
                attempt: stored.attempts,
            };
            self.inner
                .feed
                .emit(now, entry.name.shared(), stored.id, kind);
            let key = (entry.spec.durable, stored.seq, stored.lease_gen);
            let lease = LeaseToken {
                queue: entry.name.clone(),
                seq: stored.seq,
                lease_gen: stored.lease_gen,
                attempt: stored.attempts,
            };
            let (attempt, lease_until) = (stored.attempts, stored.visible_at);
            let message = to_message(entry.name.as_str(), stored)?;
            let ids = MessageIds::new(entry.name.shared(), message.id, &message.envelope);
            let traceparent = spans.start(key, ids, &message.envelope, attempt, lease_until);
            deliveries.push(Delivery {
                lease,
                attempt,
                redelivered: attempt > 1,
                lease_until,
                message,
                traceparent,
            });
        }
        Ok(deliveries)
    }

    /// Acknowledges a delivery: the message is done and removed.
    pub async fn ack(&self, lease: &LeaseToken) -> Result<(), QueueError> {
        self.settle_one(lease, Outcome::Ack).await
    }

    /// Fails a delivery: the message is retried after the queue's backoff,
    /// or dead-lettered (`max-retries`) when this was its last attempt.
    pub async fn nack(
        &self,
        lease: &LeaseToken,
        error: impl Into<String>,
    ) -> Result<(), QueueError> {
        self.settle_one(
            lease,
            Outcome::Nack {
                error: error.into(),
            },
        )
        .await
    }

    /// Rejects a delivery: the message is dead-lettered (`rejected`) at once.
    pub async fn reject(
        &self,
        lease: &LeaseToken,
        error: impl Into<String>,
    ) -> Result<(), QueueError> {
        self.settle_one(
            lease,
            Outcome::Reject {
                error: error.into(),
            },
        )
        .await
    }

    async fn settle_one(&self, lease: &LeaseToken, outcome: Outcome) -> Result<(), QueueError> {
        let mut results = self.settle_all(vec![(lease.clone(), outcome)]).await;
        results.pop().expect("one result per outcome")
    }

    /// Settles many deliveries at once (one storage operation per queue):
    /// each is acked, retried or dead-lettered by its outcome, and each
    /// succeeds or fails on its own. Results are in input order, each given
    /// once its change is durable.
    pub async fn settle_all(
        &self,
        outcomes: Vec<(LeaseToken, Outcome)>,
    ) -> Vec<Result<(), QueueError>> {
        self.settle_all_answered(outcomes, Answered::WhenDurable)
            .await
    }

    /// [`Queues::settle_all`], answered at commit instead of once durable
    /// ([`Answered::AtCommit`]). The push consumer settles this way: nobody
    /// waits on its answer but the consumer's drain, and a handler can never
    /// know whether its ack outlived a power cut either way.
    pub(crate) async fn settle_all_at_commit(
        &self,
        outcomes: Vec<(LeaseToken, Outcome)>,
    ) -> Vec<Result<(), QueueError>> {
        self.settle_all_answered(outcomes, Answered::AtCommit).await
    }

    async fn settle_all_answered(
        &self,
        outcomes: Vec<(LeaseToken, Outcome)>,
        answered: Answered,
    ) -> Vec<Result<(), QueueError>> {
        let mut results: Vec<Option<Result<(), QueueError>>> =
            (0..outcomes.len()).map(|_| None).collect();
        // Group by queue, keeping each item's position for the answer.
        let mut groups: Vec<(Arc<QueueEntry>, Vec<PendingSettlement>)> = Vec::new();
        for (idx, (lease, outcome)) in outcomes.into_iter().enumerate() {
            let entry = match self.entry(lease.queue()) {
                Ok(entry) => entry,
                Err(e) => {
                    results[idx] = Some(Err(e));
                    continue;
                }
            };
            let settlement = self.settlement(&entry, &lease, outcome);
            match groups.iter_mut().find(|(e, _)| Arc::ptr_eq(e, &entry)) {
                Some((_, items)) => items.push((idx, lease, settlement)),
                None => groups.push((entry, vec![(idx, lease, settlement)])),
            }
        }
        for (entry, items) in groups {
            for (idx, result) in self.settle_group(&entry, items, answered).await {
                results[idx] = Some(result);
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every outcome answered"))
            .collect()
    }

    fn settlement(&self, entry: &QueueEntry, lease: &LeaseToken, outcome: Outcome) -> Settlement {
        match outcome {
            Outcome::Ack => Settlement::Ack,
            Outcome::Nack { error } | Outcome::NackAfter { error, .. }
                if lease.attempt >= entry.spec.attempts_max() =>
            {
                self.dead_letter_settlement(entry, DeadReason::MaxRetries, Some(error))
            }
            Outcome::NackAfter { error, delay_ms } => Settlement::Retry {
                visible_at: self.inner.clock.now().plus(Duration::from_millis(delay_ms)),
                error: Some(error),
            },
            Outcome::Nack { error } => {
                let due = self
                    .inner
                    .clock
                    .now()
                    .plus(entry.spec.retry_backoff.delay(lease.attempt));
                Settlement::Retry {
                    visible_at: due,
                    error: Some(error),
                }
            }
            Outcome::Reject { error } => {
                self.dead_letter_settlement(entry, DeadReason::Rejected, Some(error))
            }
        }
    }

    fn dead_letter_settlement(
        &self,
        entry: &QueueEntry,
        reason: DeadReason,
        error: Option<String>,
    ) -> Settlement {
        Settlement::DeadLetter {
            reason,
            to: entry.dead_letter.as_ref().map(|d| d.0),
            error,
            queue_name: entry.name.to_string(),
        }
    }

    async fn settle_group(
        &self,
        entry: &QueueEntry,
        items: Vec<(usize, LeaseToken, Settlement)>,
        answered: Answered,
    ) -> Vec<(usize, Result<(), QueueError>)> {
        let now = self.inner.clock.now();
        let mut kinds = Vec::with_capacity(items.len());
        let mut settlements = Vec::with_capacity(items.len());
        for (idx, lease, settlement) in items {
            let settled = match &settlement {
                Settlement::Ack => Settled::Acked,
                Settlement::Retry { visible_at, error } => Settled::RetryScheduled {
                    due: *visible_at,
                    error: error.clone().unwrap_or_default(),
                },
                Settlement::DeadLetter { reason, error, .. } => Settled::DeadLettered {
                    reason: *reason,
                    to: entry.dead_letter.as_ref().map(|d| d.1.to_string()),
                    error: error.clone(),
                },
            };
            let kind = match &settlement {
                Settlement::Ack => FeedKind::Acked,
                Settlement::Retry { visible_at, .. } => FeedKind::RetryScheduled {
                    attempt: lease.attempt,
                    due: *visible_at,
                },
                Settlement::DeadLetter { reason, .. } => FeedKind::DeadLettered {
                    reason: *reason,
                    to: entry.dead_letter.as_ref().map(|d| d.1.to_string()),
                },
            };
            let lease_ref = LeaseRef {
                queue_id: entry.id,
                seq: lease.seq,
                attempt: lease.attempt,
                lease_gen: lease.lease_gen,
            };
            kinds.push((idx, lease, kind, settled));
            settlements.push((lease_ref, settlement));
        }
        let results = match self
            .store(entry.spec.durable)
            .settle_many(settlements, now, answered)
            .await
        {
            Ok(results) => results,
            Err(e) => {
                let message = e.to_string();
                return kinds
                    .into_iter()
                    .map(|(idx, _, _, _)| {
                        let source = StorageError::Backend {
                            op: "settle deliveries",
                            source: message.clone().into(),
                        };
                        (idx, Err(storage_error(entry.name.as_str(), source)))
                    })
                    .collect();
            }
        };
        let (mut dead_lettered, mut retried) = (false, false);
        let mut settled_spans = Vec::with_capacity(kinds.len());
        let answers = kinds
            .into_iter()
            .zip(results)
            .map(|((idx, lease, kind, settled), result)| match result {
                Ok(id) => {
                    dead_lettered |= matches!(kind, FeedKind::DeadLettered { .. });
                    retried |= matches!(kind, FeedKind::RetryScheduled { .. });
                    let key = (entry.spec.durable, lease.seq, lease.lease_gen);
                    settled_spans.push((key, lease.attempt, settled));
                    self.inner.feed.emit(now, entry.name.shared(), id, kind);
                    (idx, Ok(()))
                }
                Err(StorageError::StaleLease(reason)) => (
                    idx,
                    Err(QueueError::StaleLease {
                        token: lease.to_string(),
                        reason: describe_stale(reason),
                    }),
                ),
                Err(other) => (idx, Err(storage_error(entry.name.as_str(), other))),
            })
            .collect();
        self.inner.telemetry.deliveries_settled(settled_spans);
        if dead_lettered && let Some((_, dlq)) = &entry.dead_letter {
            self.wake(dlq.as_str());
        }
        if retried {
            // A consumer that went to wait before this commit knows nothing
            // of the retry: woken, it looks again and sleeps until it is due.
            entry.wake.notify_waiters();
        }
        answers
    }

    /// Up to `n_max` messages of a queue in delivery order, without
    /// consuming them (dead letters parked in it are listed by
    /// [`Queues::dead_letters`]).
    pub async fn peek(&self, queue: &str, n_max: u32) -> Result<Vec<Message>, QueueError> {
        let entry = self.entry(queue)?;
        let stored = self
            .store(entry.spec.durable)
            .peek(entry.id, n_max.min(self.inner.config.receive_messages_max))
            .await
            .map_err(|e| storage_error(queue, e))?;
        stored.into_iter().map(|m| to_message(queue, m)).collect()
    }

    /// Counts and ages of a queue.
    pub async fn stats(&self, queue: &str) -> Result<QueueStats, QueueError> {
        let entry = self.entry(queue)?;
        let now = self.inner.clock.now();
        let counts = self
            .store(entry.spec.durable)
            .counts(entry.id, queue.to_owned(), now)
            .await
            .map_err(|e| storage_error(queue, e))?;
        Ok(QueueStats {
            queue: queue.to_owned(),
            ready: counts.ready,
            in_flight: counts.in_flight,
            scheduled: counts.scheduled,
            dead_lettered: counts.dead_lettered,
            parked: counts.parked,
            oldest_age_ms: counts
                .oldest_enqueued_at
                .map(|t| now.since(t).as_millis() as u64),
            n_consumers: entry.n_consumers.load(Ordering::SeqCst),
        })
    }

    /// Dead-letters messages whose TTL ran out, in every queue. The engine
    /// runs this periodically; tests call it after moving the clock.
    pub async fn expire_due(&self) -> Result<usize, QueueError> {
        let entries: Vec<Arc<QueueEntry>> = self
            .inner
            .registry
            .read()
            .expect("registry lock")
            .values()
            .cloned()
            .collect();
        let mut n_expired = 0;
        for entry in entries {
            let now = self.inner.clock.now();
            let dead = self
                .store(entry.spec.durable)
                .expire(
                    entry.id,
                    entry.name.to_string(),
                    entry.dead_letter.as_ref().map(|d| d.0),
                    now,
                    self.inner.config.expire_batch_max,
                )
                .await
                .map_err(|e| storage_error(entry.name.as_str(), e))?;
            n_expired += dead.len();
            self.report_dead(&entry, &dead, now);
        }
        Ok(n_expired)
    }

    /// Subscribes to the feed of message state changes.
    pub fn feed(&self) -> tokio::sync::broadcast::Receiver<crate::feed::FeedEvent> {
        self.inner.feed.subscribe()
    }

    fn report_dead(&self, entry: &QueueEntry, dead: &[DeadLettered], now: Timestamp) {
        for d in dead {
            let to = entry.dead_letter.as_ref().map(|(_, dlq)| dlq.to_string());
            if let Ok(envelope) = decode_envelope(&d.envelope, d.traceparent) {
                let ids = MessageIds::new(entry.name.shared(), d.id, &envelope);
                self.inner.telemetry.dead_lettered(
                    &ids,
                    &envelope,
                    d.reason,
                    to.as_deref(),
                    d.attempts,
                );
            }
            self.inner.feed.emit(
                now,
                entry.name.shared(),
                d.id,
                FeedKind::DeadLettered {
                    reason: d.reason,
                    to,
                },
            );
        }
        if !dead.is_empty()
            && let Some((_, dlq)) = &entry.dead_letter
        {
            self.wake(dlq.as_str());
        }
    }

    fn wake(&self, queue: &str) {
        if let Some(entry) = self.find(queue) {
            entry.wake.notify_waiters();
        }
    }

    fn store(&self, durable: bool) -> &Store {
        if durable {
            &self.inner.durable
        } else {
            &self.inner.transient
        }
    }

    fn find(&self, queue: &str) -> Option<Arc<QueueEntry>> {
        self.inner
            .registry
            .read()
            .expect("registry lock")
            .get(queue)
            .cloned()
    }

    fn entry(&self, queue: &str) -> Result<Arc<QueueEntry>, QueueError> {
        self.find(queue).ok_or_else(|| unknown(queue))
    }

    fn entry_by_id(&self, durable: bool, id: QueueId) -> Option<Arc<QueueEntry>> {
        self.inner
            .registry
            .read()
            .expect("registry lock")
            .values()
            .find(|entry| entry.spec.durable == durable && entry.id == id)
            .cloned()
    }
}

/// A settlement waiting to be stored: its position in the caller's list,
/// its lease, and what to do.
type PendingSettlement = (usize, LeaseToken, Settlement);

fn new_entry(
    name: QueueName,
    spec: QueueSpec,
    id: QueueId,
    created_at: Timestamp,
    dead_letter: Option<(QueueId, QueueName)>,
    owner: Option<String>,
) -> QueueEntry {
    QueueEntry {
        name,
        spec,
        id,
        created_at,
        dead_letter,
        owner,
        wake: Notify::new(),
        n_consumers: AtomicUsize::new(0),
    }
}

impl QueueEntry {
    fn info(&self, with_owner: bool) -> QueueInfo {
        QueueInfo {
            spec: self.spec.clone(),
            created_at: self.created_at,
            owner: if with_owner { self.owner.clone() } else { None },
            n_consumers: self.n_consumers.load(Ordering::SeqCst),
        }
    }
}

fn check_owner(entry: &QueueEntry, owner: Option<&str>) -> Result<(), QueueError> {
    match &entry.owner {
        Some(expected) if owner != Some(expected.as_str()) => Err(QueueError::Exclusive {
            queue: entry.name.to_string(),
        }),
        _ => Ok(()),
    }
}

fn encode_envelope(envelope: &Envelope) -> String {
    // Room for the usual envelope (serde_json's own start, 128 bytes, is
    // not, and it would grow and copy it).
    let mut json = Vec::with_capacity(256);
    // Strings and maps of strings always serialize.
    serde_json::to_writer(&mut json, envelope).expect("an envelope serializes to JSON");
    String::from_utf8(json).expect("serde_json writes UTF-8")
}

/// A stored envelope with the traceparent of its own column. Messages
/// stored before that column carry it in their envelope's text instead.
fn decode_envelope(
    text: &str,
    traceparent: Option<TraceParent>,
) -> Result<Envelope, serde_json::Error> {
    let mut envelope: Envelope = serde_json::from_str(text)?;
    envelope.traceparent = traceparent.or(envelope.traceparent);
    Ok(envelope)
}

fn to_message(queue: &str, stored: StoredMessage) -> Result<Message, QueueError> {
    let envelope =
        decode_envelope(&stored.envelope, stored.traceparent).map_err(|e| QueueError::Storage {
            queue: queue.to_owned(),
            source: StorageError::Corrupt(format!("envelope of message {}: {e}", stored.id)),
        })?;
    Ok(Message {
        id: stored.id,
        queue: queue.to_owned(),
        payload: stored.payload,
        envelope,
        state: stored.state,
        attempts: stored.attempts,
        enqueued_at: stored.enqueued_at,
        visible_at: stored.visible_at,
        expires_at: stored.expires_at,
        last_error: stored.last_error,
        dead_letter: stored.death.map(|d| DeadLetterInfo {
            reason: d.reason,
            origin_queue: d.origin_queue,
            at: d.at,
            attempts: d.attempts,
        }),
        history: stored.history,
    })
}

fn describe_stale(reason: StaleReason) -> String {
    match reason {
        StaleReason::Gone => {
            "the message is no longer in the queue (already acked, purged or deleted)".to_owned()
        }
        StaleReason::Superseded { current_attempt } => {
            format!("the message was delivered again since (now attempt {current_attempt})")
        }
        StaleReason::Expired { at } => format!("the lease expired at {at}"),
        StaleReason::NotLeased => {
            "the message is not leased (retry scheduled or dead-lettered)".to_owned()
        }
    }
}

fn unknown(queue: &str) -> QueueError {
    QueueError::UnknownQueue {
        queue: queue.to_owned(),
    }
}

fn storage_error(queue: &str, source: StorageError) -> QueueError {
    QueueError::Storage {
        queue: queue.to_owned(),
        source,
    }
}
