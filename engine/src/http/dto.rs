//! The JSON wire shapes of the HTTP API, shared by the server and
//! [`crate::client`]. Separate from the engine's types and converted by hand,
//! so the engine can change without changing the contract (`docs/api.md`).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::config::Role;
use crate::envelope::CONTENT_TYPE_JSON;
use crate::queue::{self, DeadReason, Overflow};

/// Settings of a queue (declare body and part of every summary).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSpec {
    /// Name; optional in a declare body (the path names the queue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Kept on disk across restarts (default `true`).
    pub durable: bool,
    /// Only the declarer may consume (default `false`).
    pub exclusive: bool,
    /// Deleted when its last consumer leaves (default `false`).
    pub auto_delete: bool,
    /// Where dead letters go; declared when missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_queue: Option<String>,
    /// Deliveries after the first before a failing message is dead-lettered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Messages not delivered within this many ms are dead-lettered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_ttl_ms: Option<u64>,
    /// Most messages waiting or in flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// What a send beyond `max_length` does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overflow: Option<OverflowDto>,
    /// Delay between attempts of a failing message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffDto>,
}

impl Default for QueueSpec {
    fn default() -> Self {
        QueueSpec {
            name: None,
            durable: true,
            exclusive: false,
            auto_delete: false,
            dead_letter_queue: None,
            max_retries: None,
            message_ttl_ms: None,
            max_length: None,
            overflow: None,
            backoff: None,
        }
    }
}

/// What a send to a full queue does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverflowDto {
    /// Refuse the send (`queue_full`).
    RejectPublish,
    /// Dead-letter the oldest message to make room.
    DeadLetterOldest,
}

/// Exponential backoff between attempts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackoffDto {
    /// Delay after the first failure.
    pub initial_ms: u64,
    /// Factor applied per further failure.
    pub multiplier: f64,
    /// Longest delay.
    pub max_ms: u64,
    /// Random spread, 0 to 1.
    pub jitter: f64,
}

impl QueueSpec {
    /// The engine's spec for queue `name`.
    pub fn to_engine(&self, name: &str) -> queue::QueueSpec {
        let mut spec = queue::QueueSpec::new(name);
        spec.durable = self.durable;
        spec.exclusive = self.exclusive;
        spec.auto_delete = self.auto_delete;
        spec.dead_letter_queue = self.dead_letter_queue.clone();
        if let Some(n) = self.max_retries {
            spec.max_retries = n;
        }
        spec.message_ttl_ms = self.message_ttl_ms;
        spec.max_length = self.max_length;
        if let Some(overflow) = self.overflow {
            spec.overflow = match overflow {
                OverflowDto::RejectPublish => Overflow::RejectPublish,
                OverflowDto::DeadLetterOldest => Overflow::DeadLetterOldest,
            };
        }
        if let Some(b) = self.backoff {
            spec.retry_backoff = queue::Backoff {
                initial_ms: b.initial_ms,
                multiplier: b.multiplier,
                max_ms: b.max_ms,
                jitter: b.jitter,
            };
        }
        spec
    }

    /// The wire form of an engine spec.
    pub fn from_engine(spec: &queue::QueueSpec) -> QueueSpec {
        let b = spec.retry_backoff;
        QueueSpec {
            name: Some(spec.name.clone()),
            durable: spec.durable,
            exclusive: spec.exclusive,
            auto_delete: spec.auto_delete,
            dead_letter_queue: spec.dead_letter_queue.clone(),
            max_retries: Some(spec.max_retries),
            message_ttl_ms: spec.message_ttl_ms,
            max_length: spec.max_length,
            overflow: Some(match spec.overflow {
                Overflow::RejectPublish => OverflowDto::RejectPublish,
                Overflow::DeadLetterOldest => OverflowDto::DeadLetterOldest,
            }),
            backoff: Some(BackoffDto {
                initial_ms: b.initial_ms,
                multiplier: b.multiplier,
                max_ms: b.max_ms,
                jitter: b.jitter,
            }),
        }
    }
}

/// Counts of one queue (or totals).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueStats {
    /// Deliverable now.
    pub ready: u64,
    /// Leased to consumers.
    pub in_flight: u64,
    /// Waiting for a retry or a delayed first delivery.
    pub scheduled: u64,
    /// Dead-lettered from this queue and still kept.
    pub dead_lettered: u64,
    /// Age of the oldest message not yet acked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_age_ms: Option<u64>,
}

impl QueueStats {
    /// The wire form of engine statistics.
    pub fn from_engine(stats: &queue::QueueStats) -> QueueStats {
        QueueStats {
            ready: stats.ready,
            in_flight: stats.in_flight,
            scheduled: stats.scheduled,
            dead_lettered: stats.dead_lettered,
            oldest_age_ms: stats.oldest_age_ms,
        }
    }
}

/// A queue with its settings and counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueSummary {
    /// The queue's name.
    pub name: String,
    /// Its settings.
    pub spec: QueueSpec,
    /// Its counts.
    pub stats: QueueStats,
    /// Push consumers attached (in-process and WebSocket).
    pub consumers: u32,
    /// For an exclusive queue, the owner token; only in the declare answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_token: Option<String>,
}

/// `GET /api/queues`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueList {
    /// Every queue, by name.
    pub queues: Vec<QueueSummary>,
}

/// `DELETE /api/queues/{name}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Deleted {
    /// Messages deleted with the queue.
    pub deleted_messages: u64,
}

/// A message to send.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SendBody {
    /// A JSON payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// A non-JSON payload, base64 (standard alphabet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    /// Content type; `application/json` for `payload`,
    /// `application/octet-stream` for `payload_base64` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Correlation id; a new flow (the message's own id) when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Id of the message that caused this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// Producing service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Queue for replies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Free-form headers.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Resending with the same key within the dedup window stores nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Deliver no sooner than this many ms from now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Dead-letter as expired when not delivered within this many ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// W3C `traceparent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// W3C `tracestate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

impl SendBody {
    /// A message with a JSON payload.
    pub fn json(payload: Value) -> SendBody {
        SendBody {
            payload: Some(payload),
            ..SendBody::default()
        }
    }
}

/// Answer to a send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Sent {
    /// The message's id (the first message's for a duplicate).
    pub id: String,
    /// `true` when the idempotency key matched and nothing new was stored.
    pub duplicate: bool,
}

/// `POST /api/queues/{name}/batch`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// The messages, stored all or none.
    pub messages: Vec<SendBody>,
}

/// Answer to a batch send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchSent {
    /// Ids in input order.
    pub ids: Vec<String>,
}

/// A stored message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    /// Its id (UUID v7).
    pub id: String,
    /// Queue it is in.
    pub queue: String,
    /// JSON payloads as JSON; `null` for other content types.
    pub payload: Value,
    /// Non-JSON payloads, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    /// Content type of the payload.
    pub content_type: String,
    /// Correlation id of its flow.
    pub correlation_id: String,
    /// Id of the message that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// Producing service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Queue for replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Free-form headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// When it was sent (epoch ms).
    pub timestamp_ms: i64,
    /// Deliveries handed out so far in this queue.
    pub attempts: u32,
    /// W3C `traceparent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// W3C `tracestate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    /// Error of its last failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Provenance: dead-lettering and operator actions (retry, move), oldest
    /// first; a redriven message keeps it.
    #[serde(default)]
    pub history: Vec<HistoryEvent>,
}

impl Message {
    /// The wire form of an engine message.
    pub fn from_engine(m: &queue::Message) -> Message {
        let is_json = m.payload.content_type == CONTENT_TYPE_JSON
            || m.payload.content_type.starts_with("application/json;");
        let json = is_json
            .then(|| serde_json::from_slice::<Value>(&m.payload.bytes).ok())
            .flatten();
        let payload_base64 = match json {
            Some(_) => None,
            None => Some(base64::engine::general_purpose::STANDARD.encode(&m.payload.bytes)),
        };
        Message {
            id: m.id.to_string(),
            queue: m.queue.clone(),
            payload: json.unwrap_or(Value::Null),
            payload_base64,
            content_type: m.payload.content_type.clone(),
            correlation_id: m.envelope.correlation_id.clone(),
            causation_id: m.envelope.causation_id.clone(),
            source: m.envelope.source.clone(),
            reply_to: m.envelope.reply_to.clone(),
            headers: m.envelope.headers.clone(),
            timestamp_ms: m.envelope.timestamp.as_millis(),
            attempts: m.attempts,
            traceparent: m.envelope.traceparent.map(|tp| tp.to_string()),
            tracestate: m.envelope.tracestate.clone(),
            last_error: m.last_error.clone(),
            history: history(m),
        }
    }
}

fn history(m: &queue::Message) -> Vec<HistoryEvent> {
    m.history
        .iter()
        .map(|h| HistoryEvent {
            at_ms: h.at.as_millis(),
            event: h.action.clone(),
            detail: Some(match (&h.to_queue, &h.detail) {
                (Some(to), Some(d)) => format!("{} -> {to}: {d}", h.from_queue),
                (Some(to), None) => format!("{} -> {to}", h.from_queue),
                (None, Some(d)) => format!("{}: {d}", h.from_queue),
                (None, None) => h.from_queue.clone(),
            }),
        })
        .collect()
}

/// `GET /api/queues/{name}/messages` (peek).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageList {
    /// Messages in delivery order.
    pub messages: Vec<Message>,
}

/// `POST /api/queues/{name}/receive`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiveBody {
    /// Most deliveries to lease (default 1).
    pub max: u32,
    /// Lease length; the engine default when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
    /// Wait up to this long for a message when none is ready (default 0).
    pub wait_ms: u64,
    /// Owner token of an exclusive queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_token: Option<String>,
}

impl Default for ReceiveBody {
    fn default() -> Self {
        ReceiveBody {
            max: 1,
            lease_ms: None,
            wait_ms: 0,
            owner_token: None,
        }
    }
}

/// A message handed out under a lease.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    /// Token to ack, nack or reject it with.
    pub lease: String,
    /// `true` when an earlier attempt was handed out before.
    pub redelivered: bool,
    /// Attempt number (1 for the first).
    pub attempt: u32,
    /// The lease ends at this time (epoch ms) unless settled.
    pub lease_until_ms: i64,
    /// The message.
    pub message: Message,
}

impl Delivery {
    /// The wire form of an engine delivery.
    pub fn from_engine(d: &queue::Delivery) -> Delivery {
        Delivery {
            lease: d.lease.to_string(),
            redelivered: d.redelivered,
            attempt: d.attempt,
            lease_until_ms: d.lease_until.as_millis(),
            message: Message::from_engine(&d.message),
        }
    }
}

/// Answer to a receive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Deliveries {
    /// Leased deliveries; empty when nothing was ready in time.
    pub deliveries: Vec<Delivery>,
}

/// `POST /api/ack`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    /// Lease tokens to acknowledge.
    pub leases: Vec<String>,
}

/// Outcome of one settlement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SettleResult {
    /// The lease token.
    pub lease: String,
    /// `true` when settled.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// Answer to an ack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AckResults {
    /// One result per lease, in input order.
    pub results: Vec<SettleResult>,
}

/// `POST /api/nack`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NackBody {
    /// The lease token.
    pub lease: String,
    /// What went wrong (kept as the message's last error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Retry after this long instead of the queue's backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

/// `POST /api/reject`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// The lease token.
    pub lease: String,
    /// Why (kept as the message's last error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Answer to a nack or reject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Done {
    /// Always `true`.
    pub ok: bool,
}

/// Why a message was dead-lettered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadReasonDto {
    /// A consumer rejected it.
    Rejected,
    /// It failed its last attempt.
    MaxRetries,
    /// Its TTL ran out.
    Expired,
    /// Its queue overflowed.
    Overflow,
}

impl DeadReasonDto {
    /// The engine's reason.
    pub fn to_engine(self) -> DeadReason {
        match self {
            DeadReasonDto::Rejected => DeadReason::Rejected,
            DeadReasonDto::MaxRetries => DeadReason::MaxRetries,
            DeadReasonDto::Expired => DeadReason::Expired,
            DeadReasonDto::Overflow => DeadReason::Overflow,
        }
    }

    /// The wire form of an engine reason.
    pub fn from_engine(reason: DeadReason) -> DeadReasonDto {
        match reason {
            DeadReason::Rejected => DeadReasonDto::Rejected,
            DeadReason::MaxRetries => DeadReasonDto::MaxRetries,
            DeadReason::Expired => DeadReasonDto::Expired,
            DeadReason::Overflow => DeadReasonDto::Overflow,
        }
    }
}

/// One step of a message's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryEvent {
    /// When (epoch ms).
    pub at_ms: i64,
    /// What: `dead-lettered`, `retried`, `moved`.
    pub event: String,
    /// Queues and reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A dead-lettered message with its provenance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeadLetter {
    /// The message (its `queue` is where it sits now).
    pub message: Message,
    /// Why.
    pub reason: DeadReasonDto,
    /// Queue it was dead-lettered from.
    pub original_queue: String,
    /// Attempts it used there.
    pub attempts: u32,
    /// Error of its last failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it was dead-lettered (epoch ms).
    pub dead_lettered_ms: i64,
    /// Dead-lettering and operator actions, oldest first.
    pub history: Vec<HistoryEvent>,
}

impl DeadLetter {
    /// The wire form of an engine dead letter; `None` for a message that is
    /// not one.
    pub fn from_engine(m: &queue::Message) -> Option<DeadLetter> {
        let info = m.dead_letter.as_ref()?;
        Some(DeadLetter {
            message: Message::from_engine(m),
            reason: DeadReasonDto::from_engine(info.reason),
            original_queue: info.origin_queue.clone(),
            attempts: info.attempts,
            last_error: m.last_error.clone(),
            dead_lettered_ms: info.at.as_millis(),
            history: history(m),
        })
    }
}

/// `GET /api/queues/{name}/dead-letters`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterList {
    /// Dead letters, oldest first, at most `limit`.
    pub dead_letters: Vec<DeadLetter>,
    /// How many match in all.
    pub total: u64,
}

/// Selection of a dead-letter retry or purge.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DeadLetterAction {
    /// Only these message ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
    /// Only those with this reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<DeadReasonDto>,
    /// Count what would change, change nothing.
    pub dry_run: bool,
}

/// Selection and target of a dead-letter move.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterMove {
    /// Queue to move them to.
    pub to: String,
    /// Only these message ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
    /// Only those with this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DeadReasonDto>,
    /// Count what would change, change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Answer to a dead-letter action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Count {
    /// Messages changed (or that would be, for a dry run).
    pub count: u64,
}

/// The error body of every failed request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorResponse {
    /// What went wrong.
    pub error: ErrorBody,
}

/// A stable code and a message naming what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code, e.g. `unknown_queue`.
    pub code: String,
    /// Human message naming what was wrong.
    pub message: String,
}

/// `GET /healthz`, `GET /readyz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Status {
    /// `ok`, `ready` or `shutting_down`.
    pub status: String,
}

/// `GET /api/whoami`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    /// The caller's role.
    pub role: RoleDto,
}

/// A caller's role; each includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleDto {
    /// Reads.
    Viewer,
    /// Also sends, consumes and handles dead letters.
    Operator,
    /// Also declares and deletes queues and reads the configuration.
    Admin,
}

impl RoleDto {
    /// The wire form of a role.
    pub fn from_engine(role: Role) -> RoleDto {
        match role {
            Role::Viewer => RoleDto::Viewer,
            Role::Operator => RoleDto::Operator,
            Role::Admin => RoleDto::Admin,
        }
    }
}

/// Messages per second over the last second.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rates {
    /// Sends.
    pub sent_per_s: f64,
    /// Acks.
    pub acked_per_s: f64,
    /// Nacks (retries scheduled).
    pub nacked_per_s: f64,
    /// Dead-letterings.
    pub dead_lettered_per_s: f64,
}

/// `GET /api/overview` and the stream's `overview` events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Overview {
    /// When it was taken (epoch ms).
    pub at_ms: i64,
    /// Sums over all queues.
    pub totals: QueueStats,
    /// Every queue.
    pub queues: Vec<QueueSummary>,
    /// Recent rates.
    pub rates: Rates,
}

/// One message state change, as the stream's `feed` events carry it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FeedEvent {
    /// When (epoch ms).
    pub at_ms: i64,
    /// `sent`, `delivered`, `acked`, `nacked` (retry scheduled),
    /// `dead_lettered`, `redriven`, `purged`, or `lagged` (this listener
    /// skipped `detail` events).
    pub kind: String,
    /// Queue.
    pub queue: String,
    /// Message id (empty for `lagged`).
    pub message_id: String,
    /// Attempt, for deliveries and retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Reason, target queue, due time or skipped count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl FeedEvent {
    /// The wire form of an engine feed event.
    pub fn from_engine(e: &crate::feed::FeedEvent) -> FeedEvent {
        use crate::feed::FeedKind;
        let (kind, attempt, detail) = match &e.kind {
            FeedKind::Sent => ("sent", None, None),
            FeedKind::Delivered { attempt } => ("delivered", Some(*attempt), None),
            FeedKind::Acked => ("acked", None, None),
            FeedKind::RetryScheduled { attempt, due } => (
                "nacked",
                Some(*attempt),
                Some(format!("retry due at {} ms", due.as_millis())),
            ),
            FeedKind::DeadLettered { reason, to } => (
                "dead_lettered",
                None,
                Some(match to {
                    Some(to) => format!("{} -> {to}", reason.as_str()),
                    None => format!("{} (parked)", reason.as_str()),
                }),
            ),
            FeedKind::Redriven { to } => ("redriven", None, Some(format!("to {to}"))),
            FeedKind::Purged => ("purged", None, None),
        };
        FeedEvent {
            at_ms: e.at.as_millis(),
            kind: kind.to_owned(),
            queue: e.queue.to_string(),
            message_id: e.message_id.to_string(),
            attempt,
            detail,
        }
    }
}

/// First frame a WebSocket consumer sends.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumeStart {
    /// Most deliveries leased and not yet settled.
    pub prefetch: u32,
    /// Lease of each delivery; the engine default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
    /// Owner token of an exclusive queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_token: Option<String>,
}

/// A frame the WebSocket consumer sends after the first: exactly one of
/// `ack`, `nack` or `reject`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumeSettle {
    /// Leases to acknowledge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<Vec<String>>,
    /// A lease to fail (retried after backoff or `delay_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nack: Option<String>,
    /// A lease to dead-letter now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject: Option<String>,
    /// Error of a nack or reject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Retry delay of a nack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

/// A frame the server sends to a WebSocket consumer: deliveries, settle
/// confirmations, or an error before it closes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConsumeFrame {
    /// New deliveries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<Delivery>,
    /// Leases settled since the last frame.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settled: Vec<String>,
    /// Settlements that failed, each with its error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<SettleResult>,
    /// Fatal error; the server closes after this frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// The server is shutting down: no more deliveries; settle what you hold.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub draining: bool,
}

/// What a flow was looked up by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FlowQueryDto {
    /// `correlation`, `trace` or `message`.
    pub kind: String,
    /// The id asked for.
    pub id: String,
}

/// A node of a flow graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FlowNode {
    /// Stable id, e.g. `queue:orders`, `handler:orders`, `producer:web-shop`.
    pub id: String,
    /// `producer`, `queue`, `handler` or `dead_letter_queue`.
    pub kind: String,
    /// What to call it.
    pub label: String,
}

/// An edge of a flow graph: messages that went from one node to another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FlowEdge {
    /// Node id.
    pub from: String,
    /// Node id.
    pub to: String,
    /// Messages or deliveries along it.
    pub messages: u64,
    /// Of them, failed ones.
    pub failures: u64,
    /// Mean duration of its spans, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us_avg: Option<u64>,
    /// Longest, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us_max: Option<u64>,
    /// Counts by outcome (`acked`, `retry_scheduled`, `max-retries`, `retried`...).
    pub outcomes: BTreeMap<String, u64>,
}

/// A link from one span to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SpanLink {
    /// Linked trace.
    pub trace_id: String,
    /// Linked span.
    pub span_id: String,
}

/// One span of a flow's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Span {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// Parent span.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// E.g. `process orders`.
    pub name: String,
    /// `producer`, `consumer` or `internal`.
    pub kind: String,
    /// Start, µs since the epoch.
    pub start_us: i64,
    /// Length, µs.
    pub duration_us: i64,
    /// `ok`, `error` or `unset`.
    pub status: String,
    /// Error description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// `send`, `receive`, `process`, `ack`, `nack`, `reject`, `retry`,
    /// `dead_letter`, `retried`, `moved`, `purged`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Message id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Correlation id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Causation id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// Delivery attempt (1 for the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i64>,
    /// How it ended (`acked`, `retry_scheduled`, `dead_lettered`,
    /// `lease_expired`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Every other attribute.
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, Value>,
    /// Linked spans.
    pub links: Vec<SpanLink>,
}

/// `GET /api/flows/...`: a flow's graph and timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Flow {
    /// What was asked for.
    pub query: FlowQueryDto,
    /// Correlation ids in the flow.
    pub correlation_ids: Vec<String>,
    /// Trace ids in the flow.
    pub trace_ids: Vec<String>,
    /// Producers, queues, handlers and dead-letter queues.
    pub nodes: Vec<FlowNode>,
    /// Messages between them.
    pub edges: Vec<FlowEdge>,
    /// Every span, by start time.
    pub timeline: Vec<Span>,
    /// `true` when the flow had more spans than one answer holds.
    pub truncated: bool,
}

/// A recent flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FlowSummary {
    /// Its correlation id.
    pub correlation_id: String,
    /// First span start, µs since the epoch.
    pub first_us: i64,
    /// Last span end, µs since the epoch.
    pub last_us: i64,
    /// Spans kept of it.
    pub spans: u64,
    /// Spans with an error status.
    pub errors: u64,
    /// Dead-letterings in it.
    pub dead_lettered: u64,
    /// Queues it touched.
    pub queues: Vec<String>,
}

/// `GET /api/flows`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FlowList {
    /// Most recent activity first.
    pub flows: Vec<FlowSummary>,
}

impl Flow {
    /// The wire form of a flow.
    pub fn from_engine(flow: crate::telemetry::Flow) -> Flow {
        use crate::telemetry::{FlowNodeKind, FlowQuery};
        Flow {
            query: FlowQueryDto {
                kind: match flow.query {
                    FlowQuery::Correlation => "correlation",
                    FlowQuery::Trace => "trace",
                    FlowQuery::Message => "message",
                }
                .to_owned(),
                id: flow.id,
            },
            correlation_ids: flow.correlation_ids,
            trace_ids: flow.trace_ids,
            nodes: flow
                .nodes
                .into_iter()
                .map(|n| FlowNode {
                    id: n.id,
                    kind: match n.kind {
                        FlowNodeKind::Producer => "producer",
                        FlowNodeKind::Queue => "queue",
                        FlowNodeKind::Handler => "handler",
                        FlowNodeKind::DeadLetterQueue => "dead_letter_queue",
                    }
                    .to_owned(),
                    label: n.label,
                })
                .collect(),
            edges: flow
                .edges
                .into_iter()
                .map(|e| FlowEdge {
                    from: e.from,
                    to: e.to,
                    messages: e.messages,
                    failures: e.failures,
                    latency_us_avg: e.latency_us_avg,
                    latency_us_max: e.latency_us_max,
                    outcomes: e.outcomes,
                })
                .collect(),
            timeline: flow
                .timeline
                .into_iter()
                .map(|s| Span {
                    trace_id: s.trace_id,
                    span_id: s.span_id,
                    parent_span_id: s.parent_span_id,
                    name: s.name,
                    kind: s.kind,
                    start_us: s.start_us,
                    duration_us: s.duration_us,
                    status: s.status,
                    status_message: s.status_message,
                    operation: s.operation,
                    queue: s.queue,
                    message_id: s.message_id,
                    correlation_id: s.correlation_id,
                    causation_id: s.causation_id,
                    attempt: s.attempt,
                    outcome: s.outcome,
                    attributes: s.attributes,
                    links: s
                        .links
                        .into_iter()
                        .map(|l| SpanLink {
                            trace_id: l.trace_id,
                            span_id: l.span_id,
                        })
                        .collect(),
                })
                .collect(),
            truncated: flow.truncated,
        }
    }
}

impl FlowSummary {
    /// The wire form of a recent flow.
    pub fn from_engine(s: crate::telemetry::FlowSummary) -> FlowSummary {
        FlowSummary {
            correlation_id: s.correlation_id,
            first_us: s.first_us,
            last_us: s.last_us,
            spans: s.spans,
            errors: s.errors,
            dead_lettered: s.dead_lettered,
            queues: s.queues,
        }
    }
}
