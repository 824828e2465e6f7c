//! Span attribute names: OpenTelemetry's messaging semantic conventions
//! where they have one, `switchyard.*` for the rest.

/// `messaging.system`: always [`SYSTEM`].
pub const MESSAGING_SYSTEM: &str = "messaging.system";
/// The value of `messaging.system`.
pub const SYSTEM: &str = "switchyard";
/// `messaging.destination.name`: the queue.
pub const DESTINATION: &str = "messaging.destination.name";
/// `messaging.operation.type`: `send`, `receive`, `process` or `settle`.
pub const OPERATION_TYPE: &str = "messaging.operation.type";
/// `messaging.operation.name`: Switchyard's own verb (`send`, `receive`,
/// `process`, `ack`, `nack`, `reject`, `retry`, `dead_letter`, `retried`,
/// `moved`, `purged`).
pub const OPERATION_NAME: &str = "messaging.operation.name";
/// `messaging.message.id`.
pub const MESSAGE_ID: &str = "messaging.message.id";
/// `messaging.message.conversation_id`: the correlation id.
pub const CONVERSATION_ID: &str = "messaging.message.conversation_id";
/// `messaging.batch.message_count`: messages in the send's batch.
pub const BATCH_COUNT: &str = "messaging.batch.message_count";
/// Id of the message that caused this one.
pub const CAUSATION_ID: &str = "switchyard.causation_id";
/// Delivery attempt, 1 for the first.
pub const ATTEMPT: &str = "switchyard.attempt";
/// `true` on deliveries after the first.
pub const REDELIVERED: &str = "switchyard.redelivered";
/// How a delivery (or send) ended: `acked`, `retry_scheduled`,
/// `dead_lettered`, `lease_expired`, `duplicate`, `unsettled`.
pub const OUTCOME: &str = "switchyard.outcome";
/// The producing service named in the envelope.
pub const SOURCE: &str = "switchyard.source";
/// When a scheduled retry is due (ms since the epoch).
pub const RETRY_DUE_MS: &str = "switchyard.retry.due_ms";
/// Why a message was dead-lettered.
pub const DEAD_LETTER_REASON: &str = "switchyard.dead_letter.reason";
/// Where a dead letter went (its DLQ, or its own queue when parked).
pub const DEAD_LETTER_QUEUE: &str = "switchyard.dead_letter.queue";
/// `true` when a dead letter was parked in its own queue (no DLQ).
pub const PARKED: &str = "switchyard.dead_letter.parked";
/// `true` on spans of operator actions.
pub const OPERATOR: &str = "switchyard.operator";
/// Queue an operator retry or move sent the message to.
pub const REDRIVE_TO: &str = "switchyard.redrive.to";
/// The handler's error message.
pub const ERROR_MESSAGE: &str = "error.message";
