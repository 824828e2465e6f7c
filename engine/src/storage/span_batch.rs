//! Spans as every backend stores them: a batch encoded into one blob, with
//! the integer keys (correlation, message and trace ids) that find it.
//!
//! The span exporter's thread encodes each batch once, straight from the
//! engine's spans ([`SpanView`] borrows their fields: no per-span strings),
//! and a backend stores the blob and one key row per distinct key. Reads
//! decode a blob back into [`SpanRecord`]s.
//!
//! Layout (format 3), all integers LEB128 varints (signed ones zigzagged):
//!
//! ```text
//! 3, n_entries, entry*, n_spans, span*
//! entry = (len << 2 | tag), len bytes
//!         tag 0: UTF-8 text; 1: bytes shown as lowercase hex (trace and
//!         span ids); 2: a UUID's 16 bytes, shown hyphenated (message ids)
//! span  = trace_id, span_id, name, kind, status (entry indexes),
//!         start_us (delta from the previous span's), duration_us,
//!         presence bits, then each present optional field in bit order
//! ```
//!
//! Spans of a batch repeat most of their texts (queue and operation names, a
//! message's ids on its three or more spans, parent span ids), so the table
//! holds each text once, and an id once where it repeats close by (an entry
//! may appear twice: decoding does not care). Ids are stored as their
//! bytes, half the size of their text. Format 2 (written before) has the
//! same spans after a text-only table; format 1 (JSON, LZ4) is the SQLite
//! backend's oldest.

use rustc_hash::{FxHashMap, FxHashSet};

use super::SpanRecord;
use crate::hex::{decode_hex, hex};

/// The format byte that starts every batch written now.
pub(crate) const FORMAT: u8 = 3;
/// The format before ids were stored as bytes: a text-only table.
pub(crate) const FORMAT_TEXT_TABLE: u8 = 2;

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

/// Slots of a [`Recent`] cache: enough that the dozen texts of the
/// engine's spans seldom share one (at 64 slots two of them did, and each
/// evicted the other on every message).
const RECENT: usize = 256;

/// Where a text lives: its address and length.
type Address = (usize, usize);

/// Lookups just made, in a small cache: each key has a slot (by its hash),
/// which holds the last key that landed there and the table index found for
/// it, and the key it displaced moves next door. One hash and one or two
/// compares, where a scan of the recent keys took a compare per slot.
struct Recent<K> {
    slots: [Option<(K, u64)>; RECENT],
}

impl<K: Copy> Default for Recent<K> {
    fn default() -> Self {
        Recent {
            slots: [None; RECENT],
        }
    }
}

impl<K: Copy + PartialEq + std::hash::Hash> Recent<K> {
    fn slot(key: &K) -> usize {
        use std::hash::BuildHasher;
        // The hash's top bits are its best mixed.
        (rustc_hash::FxBuildHasher.hash_one(key) >> (64 - RECENT.trailing_zeros())) as usize
    }

    /// Looks in the key's slot and in its neighbour (`slot ^ 1`), where a
    /// key that shared the slot may have moved.
    fn find(&self, key: K) -> Option<u64> {
        let slot = Self::slot(&key);
        for slot in [slot, slot ^ 1] {
            if let Some((k, i)) = self.slots[slot]
                && k == key
            {
                return Some(i);
            }
        }
        None
    }

    /// Puts the key in its slot and moves what was there next door: two
    /// keys that share a slot are then both found. With one slot each, two
    /// of the engine's dozen texts that met evicted each other on every
    /// span, and whether any met depended on where the linker put them.
    fn remember(&mut self, key: K, i: u64) {
        let slot = Self::slot(&key);
        if let Some(there) = self.slots[slot] {
            self.slots[slot ^ 1] = Some(there);
        }
        self.slots[slot] = Some((key, i));
    }
}

const TAG_TEXT: u64 = 0;
const TAG_HEX: u64 = 1;
const TAG_UUID: u64 = 2;

/// An encoded batch of spans, ready for a backend to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanBatch {
    blob: Vec<u8>,
    keys: Vec<i64>,
    n_spans: u64,
    last_start_us: i64,
}

impl SpanBatch {
    /// Encodes records (spans from elsewhere, tests). Spans without a
    /// correlation id belong to no flow and are left out; `None` when none
    /// is left.
    pub fn from_records(spans: &[SpanRecord]) -> Option<SpanBatch> {
        let mut builder = SpanBatchBuilder::with_capacity(spans.len());
        for span in spans {
            builder.push(SpanView::of_record(span));
        }
        builder.finish()
    }

    /// Spans in the batch.
    pub fn n_spans(&self) -> u64 {
        self.n_spans
    }

    /// The encoded spans (format [`FORMAT`]).
    pub(crate) fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// The distinct keys of the batch, ascending.
    pub(crate) fn keys(&self) -> &[i64] {
        &self.keys
    }

    /// The newest span start in the batch, µs since the epoch (retention).
    pub(crate) fn last_start_us(&self) -> i64 {
        self.last_start_us
    }
}

/// A text of a span as a table entry: an id as its bytes when its text is
/// the canonical lowercase form (so it decodes to the same text), else the
/// text itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Entry<'a> {
    Text(&'a str),
    /// 16 bytes shown as 32 lowercase hex digits (a trace id).
    Hex16([u8; 16]),
    /// 8 bytes shown as 16 lowercase hex digits (a span id).
    Hex8([u8; 8]),
    /// A UUID shown hyphenated, lowercase (a message id).
    Uuid([u8; 16]),
}

impl<'a> Entry<'a> {
    /// The entry for a text: bytes when it is a lowercase hex id or UUID.
    pub(crate) fn of(text: &'a str) -> Entry<'a> {
        let b = text.as_bytes();
        match b.len() {
            32 => hex_bytes::<16>(b).map_or(Entry::Text(text), Entry::Hex16),
            16 => hex_bytes::<8>(b).map_or(Entry::Text(text), Entry::Hex8),
            36 if [8, 13, 18, 23].iter().all(|&i| b[i] == b'-') => {
                let mut digits = [0u8; 32];
                let mut n = 0;
                for &c in b.iter().filter(|&&c| c != b'-') {
                    if n == 32 {
                        return Entry::Text(text);
                    }
                    digits[n] = c;
                    n += 1;
                }
                match (n, hex_bytes::<16>(&digits)) {
                    (32, Some(bytes)) => Entry::Uuid(bytes),
                    _ => Entry::Text(text),
                }
            }
            _ => Entry::Text(text),
        }
    }

    /// The integer key of this id as `kind` (see [`key_id`]).
    fn key(self, kind: KeyKind) -> i64 {
        let leading = |b: &[u8]| u64::from_be_bytes(b[..8].try_into().expect("8 bytes"));
        match self {
            Entry::Text(text) => key_id(kind, text),
            Entry::Hex16(b) | Entry::Uuid(b) => kind.tag(leading(&b)),
            Entry::Hex8(b) => kind.tag(leading(&b)),
        }
    }

    fn tag_and_bytes(&self) -> (u64, &[u8]) {
        match self {
            Entry::Text(text) => (TAG_TEXT, text.as_bytes()),
            Entry::Hex16(b) => (TAG_HEX, b),
            Entry::Hex8(b) => (TAG_HEX, b),
            Entry::Uuid(b) => (TAG_UUID, b),
        }
    }
}

/// `N` bytes from `2N` lowercase hex digits; `None` for anything else.
fn hex_bytes<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    decode_hex(digits, false)
}

/// A span's name: as text, or `<verb> <queue>` (the engine's, composed
/// once per batch rather than once per span).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Name<'a> {
    Text(&'a str),
    VerbQueue(&'static str, &'a str),
}

/// One span's fields, borrowed from wherever the span lives.
#[derive(Debug)]
pub(crate) struct SpanView<'a> {
    pub(crate) trace_id: Entry<'a>,
    pub(crate) span_id: Entry<'a>,
    pub(crate) parent_span_id: Option<Entry<'a>>,
    pub(crate) name: Name<'a>,
    pub(crate) kind: &'a str,
    pub(crate) start_us: i64,
    pub(crate) duration_us: i64,
    pub(crate) status: &'a str,
    pub(crate) status_message: Option<&'a str>,
    pub(crate) operation: Option<&'a str>,
    pub(crate) queue: Option<&'a str>,
    pub(crate) message_id: Option<Entry<'a>>,
    pub(crate) correlation_id: Option<Entry<'a>>,
    pub(crate) causation_id: Option<Entry<'a>>,
    pub(crate) attempt: Option<i64>,
    pub(crate) outcome: Option<&'a str>,
    /// The other attributes as a JSON object, when there are any.
    pub(crate) attributes: Option<String>,
    pub(crate) links: Vec<(Entry<'a>, Entry<'a>)>,
}

impl<'a> SpanView<'a> {
    /// The view of a stored-form span.
    pub(crate) fn of_record(span: &'a SpanRecord) -> SpanView<'a> {
        SpanView {
            trace_id: Entry::of(&span.trace_id),
            span_id: Entry::of(&span.span_id),
            parent_span_id: span.parent_span_id.as_deref().map(Entry::of),
            name: Name::Text(&span.name),
            kind: &span.kind,
            start_us: span.start_us,
            duration_us: span.duration_us,
            status: &span.status,
            status_message: span.status_message.as_deref(),
            operation: span.operation.as_deref(),
            queue: span.queue.as_deref(),
            message_id: span.message_id.as_deref().map(Entry::of),
            correlation_id: span.correlation_id.as_deref().map(Entry::of),
            causation_id: span.causation_id.as_deref().map(Entry::of),
            attempt: span.attempt,
            outcome: span.outcome.as_deref(),
            attributes: (!span.attributes.is_empty())
                .then(|| serde_json::to_string(&span.attributes).expect("attributes serialize")),
            links: span
                .links
                .iter()
                .map(|(trace, span)| (Entry::of(trace), Entry::of(span)))
                .collect(),
        }
    }
}

/// An id as the builder remembers it: its kind and bits.
type IdBits = (u8, u128);

/// Encodes spans into a [`SpanBatch`], one at a time.
pub(crate) struct SpanBatchBuilder<'a> {
    /// The table: borrowed entries, and texts composed here (names,
    /// attribute objects).
    table: Vec<Entry<'a>>,
    owned: Vec<(usize, String)>,
    /// Ids just looked up, by kind and bits. Ids are looked up only here:
    /// the engine's spans repeat an id right after it (a settle span, then
    /// its consumer span: the same trace and message, the parent span id
    /// as the child's own), or a batch or more later (a message's send span
    /// and its delivery's spans are a prefetch window apart), where a map
    /// of the whole batch's ids found 2% of them for the price of inserting
    /// all. An id not found here gets a new entry.
    recent_ids: Recent<IdBits>,
    /// The last key added of each kind.
    recent_keys: [Option<i64>; 4],
    /// Texts by their content.
    texts: FxHashMap<&'a str, u64>,
    /// Texts just looked up, by address: the engine's spans share their
    /// kind, status, operation and queue texts, so nearly every text is
    /// found here without hashing it. The same address and length within
    /// `'a` is the same text.
    recent: Recent<Address>,
    names: FxHashMap<(&'static str, &'a str), u64>,
    /// Names just looked up, by the addresses of their verb and queue.
    recent_names: Recent<(Address, Address)>,
    body: Vec<u8>,
    keys: FxHashSet<i64>,
    n_spans: u64,
    previous_start: i64,
    last_start_us: i64,
}

impl<'a> SpanBatchBuilder<'a> {
    pub(crate) fn with_capacity(n_spans: usize) -> SpanBatchBuilder<'a> {
        SpanBatchBuilder {
            table: Vec::with_capacity(n_spans * 3),
            owned: Vec::new(),
            recent_ids: Recent::default(),
            recent_keys: [None; 4],
            texts: FxHashMap::default(),
            recent: Recent::default(),
            names: FxHashMap::default(),
            recent_names: Recent::default(),
            body: Vec::with_capacity(n_spans * 24),
            keys: FxHashSet::default(),
            n_spans: 0,
            previous_start: 0,
            last_start_us: i64::MIN,
        }
    }

    /// Adds a span; one without a correlation id belongs to no flow and is
    /// left out.
    pub(crate) fn push(&mut self, span: SpanView<'a>) {
        let Some(correlation) = span.correlation_id else {
            return;
        };
        self.key(correlation.key(KeyKind::Correlation));
        // A message whose correlation id is its own id (the default) is
        // found through its correlation key.
        if let Some(message) = span.message_id
            && message != correlation
        {
            self.key(message.key(KeyKind::Message));
        }
        self.key(span.trace_id.key(KeyKind::Trace));
        self.n_spans += 1;
        self.last_start_us = self.last_start_us.max(span.start_us);

        let name = match span.name {
            Name::Text(text) => self.index(Entry::Text(text)),
            Name::VerbQueue(verb, queue) => self.name(verb, queue),
        };
        let head = [
            self.index(span.trace_id),
            self.index(span.span_id),
            name,
            self.index(Entry::Text(span.kind)),
            self.index(Entry::Text(span.status)),
        ];
        // The span's numbers are written to the stack first and then to the
        // body at once: one capacity check per span instead of one per number.
        let mut out = Varints::default();
        for i in head {
            out.u64(i);
        }
        // Wrapping, as decoding adds it back: any two start times encode.
        out.i64(span.start_us.wrapping_sub(self.previous_start));
        self.previous_start = span.start_us;
        out.i64(span.duration_us);
        let text = |t: Option<&'a str>| t.map(Entry::Text);
        let optional = [
            (PARENT, span.parent_span_id),
            (STATUS_MESSAGE, text(span.status_message)),
            (OPERATION, text(span.operation)),
            (QUEUE, text(span.queue)),
            (MESSAGE_ID, span.message_id),
            (CORRELATION_ID, Some(correlation)),
            (CAUSATION_ID, span.causation_id),
        ];
        let mut bits = 0u16;
        for (bit, value) in &optional {
            if value.is_some() {
                bits |= bit;
            }
        }
        bits |= if span.attempt.is_some() { ATTEMPT } else { 0 };
        bits |= if span.outcome.is_some() { OUTCOME } else { 0 };
        bits |= if span.attributes.is_some() {
            ATTRIBUTES
        } else {
            0
        };
        bits |= if span.links.is_empty() { 0 } else { LINKS };
        out.u64(u64::from(bits));
        for (_, value) in optional {
            if let Some(value) = value {
                let i = self.index(value);
                out.u64(i);
            }
        }
        if let Some(attempt) = span.attempt {
            out.i64(attempt);
        }
        if let Some(outcome) = span.outcome {
            let i = self.index(Entry::Text(outcome));
            out.u64(i);
        }
        if let Some(attributes) = span.attributes {
            // Rare (source, retry due, dead-letter details), and nearly
            // always different: not looked up.
            let i = self.own(attributes);
            out.u64(i);
        }
        self.body.extend_from_slice(out.bytes());
        if !span.links.is_empty() {
            put_u64(&mut self.body, span.links.len() as u64);
            for (trace, span) in span.links {
                let (t, s) = (self.index(trace), self.index(span));
                put_u64(&mut self.body, t);
                put_u64(&mut self.body, s);
            }
        }
    }

    /// The batch; `None` when no span was kept.
    pub(crate) fn finish(self) -> Option<SpanBatch> {
        if self.n_spans == 0 {
            return None;
        }
        let mut owned = self.owned.into_iter().peekable();
        let mut blob = Vec::with_capacity(self.body.len() + self.table.len() * 20 + 16);
        blob.push(FORMAT);
        put_u64(&mut blob, self.table.len() as u64);
        for (i, entry) in self.table.iter().enumerate() {
            let (tag, bytes) = match owned.next_if(|(at, _)| *at == i) {
                Some((_, text)) => {
                    put_u64(&mut blob, (text.len() as u64) << 2 | TAG_TEXT);
                    blob.extend_from_slice(text.as_bytes());
                    continue;
                }
                None => entry.tag_and_bytes(),
            };
            put_u64(&mut blob, (bytes.len() as u64) << 2 | tag);
            blob.extend_from_slice(bytes);
        }
        put_u64(&mut blob, self.n_spans);
        blob.extend_from_slice(&self.body);
        let mut keys: Vec<i64> = self.keys.into_iter().collect();
        keys.sort_unstable();
        Some(SpanBatch {
            blob,
            keys,
            n_spans: self.n_spans,
            last_start_us: self.last_start_us,
        })
    }

    fn index(&mut self, entry: Entry<'a>) -> u64 {
        let bits = match entry {
            Entry::Text(text) => return self.text(text),
            Entry::Hex16(b) => (0, u128::from_ne_bytes(b)),
            Entry::Uuid(b) => (1, u128::from_ne_bytes(b)),
            Entry::Hex8(b) => (2, u128::from(u64::from_ne_bytes(b))),
        };
        if let Some(i) = self.recent_ids.find(bits) {
            return i;
        }
        let i = self.table.len() as u64;
        self.table.push(entry);
        self.recent_ids.remember(bits, i);
        i
    }

    /// Adds a key. Ids made close together share theirs (see [`key_id`]),
    /// so most keys are one of the few just added.
    fn key(&mut self, key: i64) {
        let slot = &mut self.recent_keys[(key as u64 >> 62) as usize];
        if *slot != Some(key) {
            *slot = Some(key);
            self.keys.insert(key);
        }
    }

    fn text(&mut self, text: &'a str) -> u64 {
        let at = (text.as_ptr().addr(), text.len());
        if let Some(i) = self.recent.find(at) {
            return i;
        }
        let next = self.table.len() as u64;
        let i = *self.texts.entry(text).or_insert(next);
        if i == next {
            self.table.push(Entry::Text(text));
        }
        self.recent.remember(at, i);
        i
    }

    fn name(&mut self, verb: &'static str, queue: &'a str) -> u64 {
        let at = (
            (verb.as_ptr().addr(), verb.len()),
            (queue.as_ptr().addr(), queue.len()),
        );
        if let Some(i) = self.recent_names.find(at) {
            return i;
        }
        let i = match self.names.get(&(verb, queue)) {
            Some(&i) => i,
            None => {
                let i = self.own(format!("{verb} {queue}"));
                self.names.insert((verb, queue), i);
                i
            }
        };
        self.recent_names.remember(at, i);
        i
    }

    /// A table entry for a text composed here.
    fn own(&mut self, text: String) -> u64 {
        let i = self.table.len();
        // A placeholder in the table; `finish` writes the owned text there.
        self.table.push(Entry::Text(""));
        self.owned.push((i, text));
        i as u64
    }
}

/// Decodes a batch of format 2 or 3; the error says what was wrong with it.
pub(crate) fn decode(blob: &[u8]) -> Result<Vec<SpanRecord>, String> {
    let mut r = Reader { blob, at: 0 };
    let format = r.byte()?;
    if format != FORMAT && format != FORMAT_TEXT_TABLE {
        return Err(format!("unknown span batch format {format}"));
    }
    let n_entries = r.len()?;
    // Counts come from the blob: reserve no more than its bytes can hold.
    let mut table: Vec<String> = Vec::with_capacity(n_entries.min(r.remaining()));
    for _ in 0..n_entries {
        let (tag, len) = if format == FORMAT {
            let header = r.u64()?;
            (header & 3, r.bounded(header >> 2)?)
        } else {
            (TAG_TEXT, r.len()?)
        };
        let bytes = r.take(len)?;
        table.push(match tag {
            TAG_TEXT => std::str::from_utf8(bytes)
                .map_err(|e| e.to_string())?
                .to_owned(),
            TAG_HEX => hex(bytes),
            TAG_UUID => uuid::Uuid::from_slice(bytes)
                .map_err(|e| e.to_string())?
                .hyphenated()
                .to_string(),
            other => return Err(format!("unknown entry tag {other}")),
        });
    }
    let string = |r: &mut Reader<'_>| -> Result<String, String> {
        let i = r.len()?;
        table
            .get(i)
            .cloned()
            .ok_or_else(|| format!("entry {i} out of range"))
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
        span.start_us = previous_start.wrapping_add(r.i64()?);
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

/// Which id a key stands for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KeyKind {
    Correlation = 0,
    Message = 1,
    Trace = 2,
}

impl KeyKind {
    /// The prefix of the SQLite backend's format-1 text keys.
    pub(crate) fn prefix(self) -> char {
        match self {
            KeyKind::Correlation => 'c',
            KeyKind::Message => 'm',
            KeyKind::Trace => 't',
        }
    }

    fn tag(self, bits: u64) -> i64 {
        ((self as u64) << 62 | (bits >> 2)) as i64
    }
}

/// The integer key of an id: its kind in the top two bits, then the
/// leading 62 bits of the id when it starts with 16 hex digits (UUIDs, with
/// or without dashes, and trace ids: time-ordered for ours), else of its
/// FNV-1a hash. Different ids may share a key; readers filter exactly.
pub(crate) fn key_id(kind: KeyKind, id: &str) -> i64 {
    let mut prefix = 0u64;
    let mut n_digits = 0;
    for c in id.chars() {
        if n_digits == 16 {
            break;
        }
        match c.to_digit(16) {
            Some(d) => {
                prefix = prefix << 4 | u64::from(d);
                n_digits += 1;
            }
            None if c == '-' => {}
            None => break,
        }
    }
    let bits = if n_digits == 16 {
        prefix
    } else {
        id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    kind.tag(bits)
}

fn put_u64(out: &mut Vec<u8>, n: u64) {
    // Most numbers here are table indexes and small deltas, of one or two
    // bytes: those take one capacity check, not one per byte.
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x4000 {
        out.extend_from_slice(&[(n as u8) | 0x80, (n >> 7) as u8]);
    } else {
        let mut bytes = [0u8; 10];
        let (mut n, mut len) = (n, 0);
        while n >= 0x80 {
            bytes[len] = (n as u8) | 0x80;
            n >>= 7;
            len += 1;
        }
        bytes[len] = n as u8;
        out.extend_from_slice(&bytes[..=len]);
    }
}

#[cfg(test)]
fn put_i64(out: &mut Vec<u8>, n: i64) {
    put_u64(out, zigzag(n));
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// The fixed part of one span's encoding (every field but its links), as
/// varints on the stack.
struct Varints {
    bytes: [u8; Varints::MAX],
    len: usize,
}

impl Default for Varints {
    fn default() -> Self {
        Varints {
            bytes: [0; Varints::MAX],
            len: 0,
        }
    }
}

impl Varints {
    /// A span's 18 numbers (5 head fields, 2 times, the presence bits, 7
    /// optional fields, attempt, outcome, attributes) of at most 10 bytes.
    const MAX: usize = 18 * 10;

    fn u64(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.bytes[self.len] = (n as u8) | 0x80;
            n >>= 7;
            self.len += 1;
        }
        self.bytes[self.len] = n as u8;
        self.len += 1;
    }

    fn i64(&mut self, n: i64) {
        self.u64(zigzag(n));
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
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

    /// A count or index: bounded by the blob's size, so a corrupt count
    /// cannot reserve a huge vector. (Decoded texts are still copied per
    /// use: blobs come from the engine itself, not from outside.)
    fn len(&mut self) -> Result<usize, String> {
        let n = self.u64()?;
        self.bounded(n)
    }

    fn bounded(&self, n: u64) -> Result<usize, String> {
        if n > self.blob.len() as u64 * 8 {
            return Err(format!("count {n} larger than the batch"));
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_and_bare() -> Vec<SpanRecord> {
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
            correlation_id: Some("order-7".into()),
            ..SpanRecord::default()
        };
        vec![full, bare]
    }

    #[test]
    fn varints_round_trip_at_every_length_boundary() {
        let mut numbers = vec![0, 1, 0x7f, 0x80, 0x3fff, 0x4000, u64::MAX];
        numbers.extend((1..10).flat_map(|bytes| {
            let top = 1u64 << (7 * bytes);
            [top - 1, top]
        }));
        // Around the zigzagged one-, two- and three-byte boundaries.
        let signed = [
            i64::MIN,
            -8193,
            -8192,
            -65,
            -64,
            -1,
            0,
            63,
            64,
            8191,
            8192,
            i64::MAX,
        ];
        let mut out = Vec::new();
        for &n in &numbers {
            let before = out.len();
            put_u64(&mut out, n);
            // LEB128: seven bits a byte.
            let expected = (64 - n.leading_zeros()).div_ceil(7).max(1) as usize;
            assert_eq!(out.len() - before, expected, "{n:#x}");
        }
        for &n in &signed {
            put_i64(&mut out, n);
        }
        let mut r = Reader { blob: &out, at: 0 };
        for &n in &numbers {
            assert_eq!(r.u64().unwrap(), n);
        }
        for &n in &signed {
            assert_eq!(r.i64().unwrap(), n);
        }
        assert_eq!(r.remaining(), 0);
        // The stack buffer a span's fixed fields go through writes the same
        // bytes, and holds a span's 18 numbers at their longest.
        let mut fixed = Varints::default();
        let mut expected = Vec::new();
        for &n in numbers.iter().take(9) {
            fixed.u64(n);
            put_u64(&mut expected, n);
        }
        for &n in &signed[..9] {
            fixed.i64(n);
            put_i64(&mut expected, n);
        }
        assert_eq!(fixed.bytes(), expected);
        let mut longest = Varints::default();
        for _ in 0..18 {
            longest.u64(u64::MAX);
        }
        assert_eq!(longest.bytes().len(), Varints::MAX);
    }

    #[test]
    fn a_batch_round_trips_with_every_field_and_corruption_is_an_error() {
        let batch = full_and_bare();
        let encoded = SpanBatch::from_records(&batch).unwrap();
        assert_eq!(encoded.n_spans(), 2);
        assert_eq!(encoded.last_start_us(), 1_800_000_000_123_456);
        let blob = encoded.blob();
        assert_eq!(blob[0], FORMAT);
        assert_eq!(decode(blob).unwrap(), batch);
        assert!(decode(&blob[..blob.len() - 3]).is_err());
        assert!(decode(&[1, 2, 3]).unwrap_err().contains("format 1"));
        assert!(decode(&[]).is_err());
        assert!(
            decode(&[FORMAT, 1, 3 << 2 | 3, 0, 0, 0])
                .unwrap_err()
                .contains("tag 3")
        );
        assert!(decode(&[FORMAT, 1, 3 << 2 | TAG_UUID as u8, 0, 0, 0]).is_err());
        // Counts larger than the blob.
        assert!(decode(&[FORMAT, 0, 0x80, 0x80, 0x80, 0x80, 0x08]).is_err());
        assert!(decode(&[FORMAT, 1, 0x80, 0x80, 0x80, 0x80, 0x08]).is_err());
        // Start times far apart on either side of the epoch still round
        // trip (their deltas wrap).
        let mut extremes = batch.clone();
        extremes[0].start_us = i64::MIN + 1;
        extremes[1].start_us = i64::MAX;
        let encoded = SpanBatch::from_records(&extremes).unwrap();
        assert_eq!(decode(encoded.blob()).unwrap(), extremes);
    }

    #[test]
    fn batches_of_the_text_table_format_still_decode() {
        // `full_and_bare()` as format 2 wrote it (before ids were bytes),
        // except that its second span had no correlation id.
        const FORMAT_2: &str = include_str!("span_batch_format_2.hex");
        let blob: Vec<u8> = (0..FORMAT_2.trim().len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&FORMAT_2[i..i + 2], 16).unwrap())
            .collect();
        let mut expected = full_and_bare();
        expected[1].correlation_id = None;
        assert_eq!(decode(&blob).unwrap(), expected);
    }

    #[test]
    fn ids_in_canonical_form_are_stored_as_bytes_and_everything_else_as_text() {
        let uuid = "0190a5b2-c3d4-7000-8000-000000000001";
        let cases = [
            ("0af7651916cd43dd8448eb211c80319c", "hex16"),
            ("b7ad6b7169203331", "hex8"),
            (uuid, "uuid"),
            // Upper case would not decode to the same text.
            ("0AF7651916CD43DD8448EB211C80319C", "text"),
            ("0190A5B2-C3D4-7000-8000-000000000001", "text"),
            ("0190a5b2c3d4-7000-8000-000000000001-", "text"),
            ("0190a5b2-c3d4-7000-8000-00000000000g", "text"),
            ("b7ad6b716920333", "text"),
            ("order-7", "text"),
            ("", "text"),
        ];
        for (text, expected) in cases {
            let entry = Entry::of(text);
            let kind = match entry {
                Entry::Text(t) => {
                    assert_eq!(t, text);
                    "text"
                }
                Entry::Hex16(_) => "hex16",
                Entry::Hex8(_) => "hex8",
                Entry::Uuid(_) => "uuid",
            };
            assert_eq!(kind, expected, "{text}");
            // Whatever its form, an id has the key its text has.
            for k in [KeyKind::Correlation, KeyKind::Message, KeyKind::Trace] {
                assert_eq!(entry.key(k), key_id(k, text), "{text}");
            }
            let span = SpanRecord {
                trace_id: text.into(),
                span_id: text.into(),
                name: "n".into(),
                kind: "internal".into(),
                status: "ok".into(),
                correlation_id: Some(text.into()),
                message_id: Some(uuid.into()),
                ..SpanRecord::default()
            };
            let batch = SpanBatch::from_records(std::slice::from_ref(&span)).unwrap();
            assert_eq!(decode(batch.blob()).unwrap(), vec![span], "{text}");
        }
        let id_bytes = |text: &str| {
            let span = SpanRecord {
                trace_id: text.into(),
                correlation_id: Some("c".into()),
                ..SpanRecord::default()
            };
            SpanBatch::from_records(&[span]).unwrap().blob().len()
        };
        // Half the bytes of the text (and a shorter entry header).
        assert!(
            id_bytes("0af7651916cd43dd8448eb211c80319c") + 16
                <= id_bytes("0AF7651916CD43DD8448EB211C80319C")
        );
    }

    #[test]
    fn equal_texts_and_ids_are_stored_once_wherever_they_live() {
        // Records own their strings: equal texts sit at other addresses,
        // so the table finds them by content, not only by address.
        let spans: Vec<SpanRecord> = (0..40).flat_map(|_| full_and_bare()).collect();
        let len = |n: usize| SpanBatch::from_records(&spans[..n]).unwrap().blob().len();
        let many = SpanBatch::from_records(&spans).unwrap();
        assert_eq!(decode(many.blob()).unwrap(), spans);
        assert_eq!(
            many.keys(),
            SpanBatch::from_records(&spans[..2]).unwrap().keys()
        );
        // The table (its size is the byte after the format, below 128
        // here) gains one entry per pair after the first: the attributes,
        // stored per span. Every other text and id is already there.
        let n_entries = |n: usize| SpanBatch::from_records(&spans[..n]).unwrap().blob()[1];
        assert!(n_entries(80) < 0x80);
        assert_eq!(n_entries(80), n_entries(2) + 39);
        assert_eq!(len(80) - len(2), 39 * (len(4) - len(2)));
        // More distinct texts than the builder remembers by address, in
        // turn: every one still decodes to itself.
        let mut varied = full_and_bare();
        let queues: Vec<String> = (0..3 * RECENT).map(|i| format!("queue-{i}")).collect();
        for (i, queue) in queues.iter().chain(&queues).enumerate() {
            let mut span = varied[i % 2].clone();
            span.queue = Some(queue.clone());
            span.status = if i % 3 == 0 { "ok" } else { "error" }.into();
            varied.push(span);
        }
        let batch = SpanBatch::from_records(&varied).unwrap();
        assert_eq!(decode(batch.blob()).unwrap(), varied);
    }

    #[test]
    fn spans_without_a_correlation_id_are_left_out_and_keys_are_distinct() {
        let mut spans = full_and_bare();
        spans[1].correlation_id = None;
        let batch = SpanBatch::from_records(&spans).unwrap();
        assert_eq!(batch.n_spans(), 1);
        assert_eq!(decode(batch.blob()).unwrap(), vec![spans[0].clone()]);
        let mut keys = vec![
            key_id(KeyKind::Correlation, "order-7"),
            key_id(KeyKind::Message, "m-1"),
            key_id(KeyKind::Trace, "0af7651916cd43dd8448eb211c80319c"),
        ];
        keys.sort_unstable();
        assert_eq!(batch.keys(), keys);
        spans[0].correlation_id = None;
        assert_eq!(SpanBatch::from_records(&spans), None);
    }

    #[test]
    fn keys_keep_uuid_order_within_a_kind_and_hash_other_ids() {
        let a = key_id(KeyKind::Correlation, "0190a5b2-c3d4-7000-8000-000000000001");
        let b = key_id(KeyKind::Correlation, "0190a5b2-c3d5-7000-8000-000000000001");
        assert!(a < b, "later UUID v7, larger key");
        assert_eq!(
            key_id(KeyKind::Trace, "0190a5b2c3d470008000000000000001"),
            key_id(KeyKind::Trace, "0190a5b2-c3d4-7000-8000-000000000001"),
        );
        assert_ne!(
            key_id(KeyKind::Trace, "0190a5b2c3d470008000000000000001"),
            key_id(KeyKind::Correlation, "0190a5b2c3d470008000000000000001"),
        );
        assert_ne!(
            key_id(KeyKind::Correlation, "order-7"),
            key_id(KeyKind::Correlation, "order-8")
        );
    }
}
