//! The message envelope: what travels with every payload through queues (and,
//! later, topics, events and sagas), so a flow can be followed across hops.
//!
//! Plain data. Knows nothing about storage or transport.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;

/// A message's identity: a UUID v7, so ids sort by creation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageId(pub Uuid);

impl MessageId {
    /// A fresh, time-ordered id.
    pub fn new() -> MessageId {
        MessageId(Uuid::now_v7())
    }
}

impl Default for MessageId {
    fn default() -> Self {
        MessageId::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for MessageId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(MessageId(s.parse()?))
    }
}

/// A message body: bytes plus the content type that says how to read them.
///
/// JSON is the common case (`application/json`); anything else travels as
/// opaque bytes with its own content type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// MIME type of `bytes`, e.g. `application/json`.
    pub content_type: String,
    /// The body, stored and delivered unchanged.
    pub bytes: Vec<u8>,
}

/// The content type of JSON payloads.
pub const CONTENT_TYPE_JSON: &str = "application/json";

impl Payload {
    /// A JSON payload serialized from `value`.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Payload {
        Payload {
            content_type: CONTENT_TYPE_JSON.to_owned(),
            // Serializing an in-memory value to a Vec only fails for maps with
            // non-string keys, a programmer error.
            bytes: serde_json::to_vec(value).expect("payload must serialize to JSON"),
        }
    }

    /// An opaque payload with its content type.
    pub fn bytes(content_type: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Payload {
        Payload {
            content_type: content_type.into(),
            bytes: bytes.into(),
        }
    }

    /// Parses a JSON payload.
    pub fn to_json<T: for<'de> Deserialize<'de>>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.bytes)
    }

    /// Size of the body in bytes (what payload limits count).
    pub fn len_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// Everything about a message except its body and delivery state: the
/// envelope fields a producer sets and every hop preserves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// When the producer sent it.
    pub timestamp: Timestamp,
    /// Name of the producing service or component, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Groups every message of one business flow; defaults to the first
    /// message's own id.
    pub correlation_id: String,
    /// Id of the message that caused this one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// Queue a reply should be sent to (request-response).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Free-form string headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// W3C Trace Context `traceparent` of the span that sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// W3C Trace Context `tracestate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

/// A message as a producer hands it to [`crate::queue::Queues::send`].
#[derive(Clone, Debug, Default)]
pub struct OutgoingMessage {
    /// The body.
    pub payload: Option<Payload>,
    /// Producing service, copied into the envelope.
    pub source: Option<String>,
    /// Correlation id; `None` means "start a new flow" (the id itself).
    pub correlation_id: Option<String>,
    /// Id of the message that caused this one.
    pub causation_id: Option<String>,
    /// Queue for replies.
    pub reply_to: Option<String>,
    /// Free-form headers.
    pub headers: BTreeMap<String, String>,
    /// W3C `traceparent` to carry.
    pub traceparent: Option<String>,
    /// W3C `tracestate` to carry.
    pub tracestate: Option<String>,
    /// Resending with the same key inside the queue's dedup window returns
    /// the first message's id and stores nothing new.
    pub idempotency_key: Option<String>,
    /// Deliver not before this time.
    pub deliver_at: Option<Timestamp>,
    /// Per-message time to live in milliseconds; overrides the queue's TTL
    /// when shorter.
    pub ttl_ms: Option<u64>,
}

impl OutgoingMessage {
    /// A message with a JSON body and default envelope.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> OutgoingMessage {
        OutgoingMessage {
            payload: Some(Payload::json(value)),
            ..OutgoingMessage::default()
        }
    }

    /// A message with an opaque body.
    pub fn bytes(content_type: impl Into<String>, bytes: impl Into<Vec<u8>>) -> OutgoingMessage {
        OutgoingMessage {
            payload: Some(Payload::bytes(content_type, bytes)),
            ..OutgoingMessage::default()
        }
    }

    /// Sets the correlation id.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Sets the causation id.
    pub fn causation_id(mut self, id: impl Into<String>) -> Self {
        self.causation_id = Some(id.into());
        self
    }

    /// Sets the source.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets the reply-to queue.
    pub fn reply_to(mut self, queue: impl Into<String>) -> Self {
        self.reply_to = Some(queue.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Delays delivery until `at`.
    pub fn deliver_at(mut self, at: Timestamp) -> Self {
        self.deliver_at = Some(at);
        self
    }

    /// Sets a per-message TTL.
    pub fn ttl_ms(mut self, ttl_ms: u64) -> Self {
        self.ttl_ms = Some(ttl_ms);
        self
    }
}
