//! How a batch of spans is laid out in one `span_batches` row (format 2):
//! a string table, then each span as indexes into it and varints.
//!
//! Spans of one batch repeat most of their strings (queue and operation
//! names, a message's ids on its three or more spans, parent span ids), so
//! the table stores each once; there is no JSON and no compression pass,
//! which made format 1 (JSON, LZ4) cost more CPU than the rest of the
//! span path. Layout, all integers LEB128 varints (signed ones zigzagged):
//!
//! ```text
//! 2, n_strings, (len, utf-8 bytes)*, n_spans, span*
//! span = trace_id, span_id, name, kind, status (string indexes),
//!        start_us (delta from the previous span's), duration_us,
//!        presence bits, then each present optional field in bit order
//! ```

use rustc_hash::FxHashMap;

use crate::storage::SpanRecord;

/// The format byte that starts every format-2 batch.
pub(crate) const FORMAT: u8 = 2;

const PARENT: u16 = 1;
const STATUS_MESSAGE: u16 = 1 << 1;
const OPERATION: u16 = 1 << 2;
const QUEUE: u16 = 1 << 3;
const MESSAGE_ID: u16 = 1 << 4;
const CORRELATION_ID: u16 = 1 << 5;
const CAUSATION_ID: u16 = 1 << 6;
const ATTEMPT: u16 = 1 << 7;
const OUTCOME: u16 = 1 << 8;
const ATTRIBUTES: u16 = 1 << 9;
const LINKS: u16 = 1 << 10;

/// Encodes a batch.
pub(crate) fn encode(spans: &[SpanRecord]) -> Vec<u8> {
    let mut strings = Strings {
        at: FxHashMap::with_capacity_and_hasher(spans.len() * 2, Default::default()),
        ..Strings::default()
    };
    let mut body = Vec::with_capacity(spans.len() * 24);
    put_u64(&mut body, spans.len() as u64);
    let mut previous_start = 0i64;
    // Attributes are rare (source, retry due, dead-letter details): JSON text
    // in the string table is compact enough for them.
    let attribute_texts: Vec<Option<String>> = spans
        .iter()
        .map(|s| {
            (!s.attributes.is_empty())
                .then(|| serde_json::to_string(&s.attributes).expect("attributes serialize"))
        })
        .collect();
    for (span, attributes) in spans.iter().zip(&attribute_texts) {
        for text in [
            &span.trace_id,
            &span.span_id,
            &span.name,
            &span.kind,
            &span.status,
        ] {
            put_u64(&mut body, strings.index(text));
        }
        put_i64(&mut body, span.start_us - previous_start);
        previous_start = span.start_us;
        put_i64(&mut body, span.duration_us);
        let optional = [
            (PARENT, span.parent_span_id.as_deref()),
            (STATUS_MESSAGE, span.status_message.as_deref()),
            (OPERATION, span.operation.as_deref()),
            (QUEUE, span.queue.as_deref()),
            (MESSAGE_ID, span.message_id.as_deref()),
            (CORRELATION_ID, span.correlation_id.as_deref()),
            (CAUSATION_ID, span.causation_id.as_deref()),
        ];
        let mut bits = 0u16;
        for (bit, value) in optional {
            if value.is_some() {
                bits |= bit;
            }
        }
        bits |= if span.attempt.is_some() { ATTEMPT } else { 0 };
        bits |= if span.outcome.is_some() { OUTCOME } else { 0 };
        bits |= if attributes.is_some() { ATTRIBUTES } else { 0 };
        bits |= if span.links.is_empty() { 0 } else { LINKS };
        put_u64(&mut body, u64::from(bits));
        for (_, value) in optional {
            if let Some(value) = value {
                put_u64(&mut body, strings.index(value));
            }
        }
        if let Some(attempt) = span.attempt {
            put_i64(&mut body, attempt);
        }
        if let Some(outcome) = &span.outcome {
            put_u64(&mut body, strings.index(outcome));
        }
        if let Some(attributes) = attributes {
            put_u64(&mut body, strings.index(attributes));
        }
        if !span.links.is_empty() {
            put_u64(&mut body, span.links.len() as u64);
            for (trace, span) in &span.links {
                put_u64(&mut body, strings.index(trace));
                put_u64(&mut body, strings.index(span));
            }
        }
    }
    let mut out = Vec::with_capacity(1 + strings.n_bytes + strings.list.len() + body.len() + 8);
    out.push(FORMAT);
    put_u64(&mut out, strings.list.len() as u64);
    for s in &strings.list {
        put_u64(&mut out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&body);
    out
}

/// Decodes a batch; the error says what was wrong with it.
pub(crate) fn decode(blob: &[u8]) -> Result<Vec<SpanRecord>, String> {
    let mut r = Reader { blob, at: 0 };
    if r.byte()? != FORMAT {
        return Err(format!("unknown span batch format {}", blob[0]));
    }
    let n_strings = r.len()?;
    // Counts come from the blob: reserve no more than its bytes can hold.
    let mut strings = Vec::with_capacity(n_strings.min(r.remaining()));
    for _ in 0..n_strings {
        let len = r.len()?;
        let bytes = r.take(len)?;
        strings.push(std::str::from_utf8(bytes).map_err(|e| e.to_string())?);
    }
    let string = |r: &mut Reader<'_>| -> Result<String, String> {
        let i = r.len()?;
        strings
            .get(i)
            .map(|s| (*s).to_owned())
            .ok_or_else(|| format!("string {i} out of range"))
    };
    let n_spans = r.len()?;
    // A span takes at least 8 bytes.
    let mut spans = Vec::with_capacity(n_spans.min(r.remaining() / 8));
    let mut previous_start = 0i64;
    for _ in 0..n_spans {
        let mut span = SpanRecord {
            trace_id: string(&mut r)?,
            span_id: string(&mut r)?,
            name: string(&mut r)?,
            kind: string(&mut r)?,
            status: string(&mut r)?,
            ..SpanRecord::default()
        };
        span.start_us = previous_start
            .checked_add(r.i64()?)
            .ok_or("start time out of range")?;
        previous_start = span.start_us;
        span.duration_us = r.i64()?;
        let bits = r.u64()? as u16;
        let optional = |bit: u16, r: &mut Reader<'_>| -> Result<Option<String>, String> {
            if bits & bit == 0 {
                Ok(None)
            } else {
                string(r).map(Some)
            }
        };
        span.parent_span_id = optional(PARENT, &mut r)?;
        span.status_message = optional(STATUS_MESSAGE, &mut r)?;
        span.operation = optional(OPERATION, &mut r)?;
        span.queue = optional(QUEUE, &mut r)?;
        span.message_id = optional(MESSAGE_ID, &mut r)?;
        span.correlation_id = optional(CORRELATION_ID, &mut r)?;
        span.causation_id = optional(CAUSATION_ID, &mut r)?;
        if bits & ATTEMPT != 0 {
            span.attempt = Some(r.i64()?);
        }
        span.outcome = optional(OUTCOME, &mut r)?;
        if let Some(json) = optional(ATTRIBUTES, &mut r)? {
            span.attributes = serde_json::from_str(&json).map_err(|e| e.to_string())?;
        }
        if bits & LINKS != 0 {
            let n = r.len()?;
            for _ in 0..n {
                span.links.push((string(&mut r)?, string(&mut r)?));
            }
        }
        spans.push(span);
    }
    Ok(spans)
}

#[derive(Default)]
struct Strings<'a> {
    list: Vec<&'a str>,
    at: FxHashMap<&'a str, u64>,
    n_bytes: usize,
}

impl<'a> Strings<'a> {
    fn index(&mut self, s: &'a str) -> u64 {
        if let Some(&i) = self.at.get(s) {
            return i;
        }
        let i = self.list.len() as u64;
        self.list.push(s);
        self.at.insert(s, i);
        self.n_bytes += s.len();
        i
    }
}

fn put_u64(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_i64(out: &mut Vec<u8>, n: i64) {
    put_u64(out, ((n << 1) ^ (n >> 63)) as u64);
}

struct Reader<'a> {
    blob: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.blob.len() - self.at
    }

    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.blob.get(self.at).ok_or("truncated")?;
        self.at += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.blob.len());
        let end = end.ok_or("truncated")?;
        let bytes = &self.blob[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("varint too long".to_owned())
    }

    fn i64(&mut self) -> Result<i64, String> {
        let n = self.u64()?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    /// A count or index: bounded by the blob's size, so a corrupt one
    /// cannot ask for a huge allocation.
    fn len(&mut self) -> Result<usize, String> {
        let n = self.u64()?;
        if n > self.blob.len() as u64 * 8 {
            return Err(format!("count {n} larger than the batch"));
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_round_trips_with_every_field_and_corruption_is_an_error() {
        let mut full = SpanRecord {
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: "b7ad6b7169203331".into(),
            parent_span_id: Some("00f067aa0ba902b7".into()),
            name: "nack orders".into(),
            kind: "consumer".into(),
            start_us: 1_800_000_000_123_456,
            duration_us: 42,
            status: "error".into(),
            status_message: Some("card declined".into()),
            operation: Some("nack".into()),
            queue: Some("orders".into()),
            message_id: Some("m-1".into()),
            correlation_id: Some("order-7".into()),
            causation_id: Some("m-0".into()),
            attempt: Some(3),
            outcome: Some("retry_scheduled".into()),
            links: vec![(
                "0af7651916cd43dd8448eb211c80319c".into(),
                "b7ad6b7169203331".into(),
            )],
            ..SpanRecord::default()
        };
        full.attributes
            .insert("switchyard.retry.due_ms".into(), serde_json::json!(17));
        let bare = SpanRecord {
            trace_id: full.trace_id.clone(),
            span_id: "1111111111111111".into(),
            name: "send orders".into(),
            kind: "producer".into(),
            start_us: 1_800_000_000_000_000,
            status: "unset".into(),
            ..SpanRecord::default()
        };
        let batch = vec![full, bare];
        let blob = encode(&batch);
        assert_eq!(decode(&blob).unwrap(), batch);
        assert!(decode(&blob[..blob.len() - 3]).is_err());
        assert!(decode(&[1, 2, 3]).unwrap_err().contains("format 1"));
        assert!(decode(&[]).is_err());
        // Counts larger than the blob, and a start time that overflows.
        assert!(decode(&[FORMAT, 0, 0x80, 0x80, 0x80, 0x80, 0x08]).is_err());
        let mut overflow = vec![FORMAT, 1, 1, b'x', 2];
        overflow.extend([0; 5]);
        overflow.extend([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        overflow.extend([0, 0]);
        overflow.extend([0; 5]);
        overflow.extend([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        overflow.extend([0, 0]);
        assert!(decode(&overflow).is_err());
    }
}
