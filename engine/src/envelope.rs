//! The message envelope: what travels with every payload through queues (and,
//! later, topics, events and sagas), so a flow can be followed across hops.
//!
//! Plain data. Knows nothing about storage or transport.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::hex::{decode_hex, hex_into};

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

/// A W3C Trace Context `traceparent`: the trace and span a message was sent
/// from, and whether the trace is sampled.
///
/// Held as its bytes: the message path stores and reads it without text.
/// Its text form (`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`) is
/// what [`Display`](fmt::Display), [`FromStr`](std::str::FromStr) and serde
/// use, at the edges (JSON, HTTP, logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

/// A `traceparent` that is not W3C Trace Context's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "malformed traceparent {0:?}: expected `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`, ids not all zeros"
)]
pub struct TraceParentError(pub String);

impl TraceParent {
    /// The size of [`TraceParent::to_bytes`].
    pub const LEN_BYTES: usize = 25;

    /// A traceparent; `None` when an id is all zeros (W3C calls those
    /// invalid).
    pub fn new(trace_id: [u8; 16], span_id: [u8; 8], flags: u8) -> Option<TraceParent> {
        (trace_id != [0; 16] && span_id != [0; 8]).then_some(TraceParent {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The trace's id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The id of the span the message was sent from.
    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    /// The trace flags (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the trace is sampled (recorded).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// Trace id, span id and flags, in that order.
    pub fn to_bytes(&self) -> [u8; TraceParent::LEN_BYTES] {
        let mut out = [0u8; TraceParent::LEN_BYTES];
        out[..16].copy_from_slice(&self.trace_id);
        out[16..24].copy_from_slice(&self.span_id);
        out[24] = self.flags;
        out
    }

    /// The inverse of [`TraceParent::to_bytes`]; `None` for any other length
    /// or an all-zeros id.
    pub fn from_bytes(bytes: &[u8]) -> Option<TraceParent> {
        let bytes: &[u8; TraceParent::LEN_BYTES] = bytes.try_into().ok()?;
        TraceParent::new(
            bytes[..16].try_into().expect("16 bytes"),
            bytes[16..24].try_into().expect("8 bytes"),
            bytes[24],
        )
    }

    /// The text form, version 00, lowercase.
    fn to_text(self) -> [u8; 55] {
        let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
        hex_into(&mut out[3..35], &self.trace_id);
        hex_into(&mut out[36..52], &self.span_id);
        hex_into(&mut out[53..55], &[self.flags]);
        out
    }
}

impl std::str::FromStr for TraceParent {
    type Err = TraceParentError;

    /// Parses version 00 and, as W3C asks of a version-00 reader, the
    /// leading fields of later versions; hex in either case. Surrounding
    /// whitespace is ignored.
    fn from_str(text: &str) -> Result<TraceParent, TraceParentError> {
        let error = || TraceParentError(text.to_owned());
        // Fields at fixed places (`split` costs more than the rest): version
        // 00 is exactly 55 bytes; a later version may add fields after a `-`
        // at byte 55.
        let tp = text.trim().as_bytes();
        if tp.len() < 55
            || tp[2] != b'-'
            || tp[35] != b'-'
            || tp[52] != b'-'
            || (tp.len() > 55 && (tp[55] != b'-' || &tp[..2] == b"00"))
        {
            return Err(error());
        }
        let [version] = decode_hex::<1>(&tp[..2], true).ok_or_else(error)?;
        if version == 0xff {
            return Err(error());
        }
        let trace_id = decode_hex::<16>(&tp[3..35], true).ok_or_else(error)?;
        let span_id = decode_hex::<8>(&tp[36..52], true).ok_or_else(error)?;
        let [flags] = decode_hex::<1>(&tp[53..55], true).ok_or_else(error)?;
        TraceParent::new(trace_id, span_id, flags).ok_or_else(error)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_text();
        f.write_str(std::str::from_utf8(&text).expect("hex digits and dashes are ASCII"))
    }
}

impl Serialize for TraceParent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.to_text();
        serializer
            .serialize_str(std::str::from_utf8(&text).expect("hex digits and dashes are ASCII"))
    }
}

impl<'de> Deserialize<'de> for TraceParent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<TraceParent, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A traceparent as an envelope reads it: `None` for a malformed one
/// (W3C: a traceparent that does not parse starts a new trace), so that an
/// envelope stored with one still decodes.
fn lenient_traceparent<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<TraceParent>, D::Error> {
    let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(deserializer)?;
    Ok(text.and_then(|t| t.parse().ok()))
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
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_traceparent"
    )]
    pub traceparent: Option<TraceParent>,
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
    /// W3C `traceparent` to carry: the trace continues from this span.
    pub traceparent: Option<TraceParent>,
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

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn traceparents_round_trip_as_text_bytes_and_json() {
        let tp: TraceParent = TP.parse().expect("valid");
        assert!(tp.sampled());
        assert_eq!(tp.to_string(), TP);
        assert_eq!(TraceParent::from_bytes(&tp.to_bytes()), Some(tp));
        assert_eq!(serde_json::to_string(&tp).unwrap(), format!("\"{TP}\""));
        assert_eq!(
            serde_json::from_str::<TraceParent>(&format!("\"{TP}\"")).unwrap(),
            tp
        );
        let unsampled: TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
            .parse()
            .unwrap();
        assert!(!unsampled.sampled());
        // Uppercase digits are read too (and written back lowercase).
        let upper: TraceParent = " 00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01 "
            .parse()
            .expect("valid");
        assert_eq!(upper, tp);
        // A later version may carry more fields; it is written as version 00.
        let v1: TraceParent = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future"
            .parse()
            .expect("valid");
        assert_eq!(v1.to_string(), TP);
        // Bytes of another length, or all-zeros ids, are no traceparent.
        assert_eq!(TraceParent::from_bytes(&tp.to_bytes()[..24]), None);
        assert_eq!(TraceParent::from_bytes(&[0; 25]), None);
    }

    #[test]
    fn malformed_traceparents_are_refused_naming_the_text() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-xyz7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c0-b7ad6b716920333-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",
            "0-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            let error = bad.parse::<TraceParent>().expect_err(bad);
            assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        }
        let error = serde_json::from_str::<TraceParent>("\"00-nope\"").unwrap_err();
        assert!(
            error.to_string().contains("malformed traceparent"),
            "{error}"
        );
    }

    #[test]
    fn an_envelope_with_a_malformed_traceparent_still_decodes_without_it() {
        let json = r#"{"timestamp":1,"correlation_id":"c","traceparent":"not one"}"#;
        let envelope: Envelope = serde_json::from_str(json).expect("decodes");
        assert_eq!(envelope.traceparent, None);
        let json = format!(r#"{{"timestamp":1,"correlation_id":"c","traceparent":"{TP}"}}"#);
        let envelope: Envelope = serde_json::from_str(&json).expect("decodes");
        assert_eq!(envelope.traceparent, Some(TP.parse().unwrap()));
    }
}
