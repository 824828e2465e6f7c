//! What a queue is declared with: names, settings, the retry backoff, and
//! the rules that make a re-declaration an error.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::queue::QueueError;

/// A validated queue name: 1 to 255 bytes of `[A-Za-z0-9._:-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueName(Arc<str>);

/// Longest queue name, in bytes.
pub const QUEUE_NAME_BYTES_MAX: usize = 255;

impl QueueName {
    /// Validates `name`, saying what is wrong when it is not a queue name.
    pub fn new(name: &str) -> Result<QueueName, QueueError> {
        let invalid = |reason: String| QueueError::InvalidName {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("it is empty".to_owned()));
        }
        if name.len() > QUEUE_NAME_BYTES_MAX {
            return Err(invalid(format!(
                "it is {} bytes long; the limit is {QUEUE_NAME_BYTES_MAX}",
                name.len()
            )));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
        {
            return Err(invalid(format!(
                "it contains {bad:?}; allowed are A-Z a-z 0-9 . _ : -"
            )));
        }
        Ok(QueueName(name.into()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn shared(&self) -> &Arc<str> {
        &self.0
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What happens to a send that would exceed a queue's maximum length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overflow {
    /// The send fails with `QueueFull` (RabbitMQ's `reject-publish`).
    #[default]
    RejectPublish,
    /// The oldest waiting messages are dead-lettered with reason `overflow`
    /// to make room (RabbitMQ's `drop-head`, but nothing is dropped).
    DeadLetterOldest,
}

/// Exponential backoff between delivery attempts of a failed message.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    /// Delay before the first retry.
    pub initial_ms: u64,
    /// Each further retry waits this many times longer.
    pub multiplier: f64,
    /// The delay never exceeds this.
    pub max_ms: u64,
    /// Fraction in `[0, 1]` of each delay that is randomized away, so that
    /// messages failing together do not retry together.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial_ms: 1_000,
            multiplier: 2.0,
            max_ms: 60_000,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// A fixed delay without jitter.
    pub fn fixed(delay_ms: u64) -> Backoff {
        Backoff {
            initial_ms: delay_ms,
            multiplier: 1.0,
            max_ms: delay_ms,
            jitter: 0.0,
        }
    }

    /// Delay after the failed attempt number `attempt` (1 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let raw = self.initial_ms as f64 * self.multiplier.powi(exponent);
        let capped = raw.min(self.max_ms as f64);
        let jittered = if self.jitter > 0.0 {
            capped * (1.0 - self.jitter * rand::rng().random::<f64>())
        } else {
            capped
        };
        Duration::from_millis(jittered.max(0.0) as u64)
    }

    fn validate(&self) -> Result<(), String> {
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Err(format!(
                "backoff multiplier must be at least 1, got {}",
                self.multiplier
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(format!(
                "backoff jitter must be between 0 and 1, got {}",
                self.jitter
            ));
        }
        if self.initial_ms > self.max_ms {
            return Err(format!(
                "backoff initial_ms ({}) exceeds max_ms ({})",
                self.initial_ms, self.max_ms
            ));
        }
        Ok(())
    }
}

/// Everything a queue is declared with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueSpec {
    /// Name, validated on declare.
    pub name: String,
    /// Stored on disk and kept across restarts (`true`), or in memory only.
    pub durable: bool,
    /// Only the declaring owner may consume; not kept across restarts.
    pub exclusive: bool,
    /// Deleted when its last push consumer unsubscribes.
    pub auto_delete: bool,
    /// Where dead letters go; declared automatically (same durability) when
    /// missing. Without one, dead letters are parked in this queue.
    pub dead_letter_queue: Option<String>,
    /// Deliveries after the first before a failing message is dead-lettered
    /// (so a message gets at most `max_retries + 1` attempts).
    pub max_retries: u32,
    /// Messages not delivered within this many milliseconds are dead-lettered
    /// as expired.
    pub message_ttl_ms: Option<u64>,
    /// Most messages waiting or in flight (dead letters not counted).
    pub max_length: Option<u64>,
    /// What a send beyond `max_length` does.
    pub overflow: Overflow,
    /// Delay between attempts of a failing message.
    pub retry_backoff: Backoff,
    /// Idempotency keys are remembered this long.
    pub dedup_window_ms: u64,
}

impl Default for QueueSpec {
    fn default() -> Self {
        QueueSpec {
            name: String::new(),
            durable: true,
            exclusive: false,
            auto_delete: false,
            dead_letter_queue: None,
            max_retries: 5,
            message_ttl_ms: None,
            max_length: None,
            overflow: Overflow::RejectPublish,
            retry_backoff: Backoff::default(),
            dedup_window_ms: 10 * 60 * 1000,
        }
    }
}

impl QueueSpec {
    /// A durable queue with default settings.
    pub fn new(name: impl Into<String>) -> QueueSpec {
        QueueSpec {
            name: name.into(),
            ..QueueSpec::default()
        }
    }

    /// Sets the dead-letter queue.
    pub fn dead_letter_queue(mut self, queue: impl Into<String>) -> Self {
        self.dead_letter_queue = Some(queue.into());
        self
    }

    /// Sets the number of retries.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets the retry backoff.
    pub fn retry_backoff(mut self, backoff: Backoff) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Sets the message TTL.
    pub fn message_ttl_ms(mut self, ttl_ms: u64) -> Self {
        self.message_ttl_ms = Some(ttl_ms);
        self
    }

    /// Sets the maximum length and overflow behaviour.
    pub fn max_length(mut self, n: u64, overflow: Overflow) -> Self {
        self.max_length = Some(n);
        self.overflow = overflow;
        self
    }

    /// Makes the queue non-durable (memory only).
    pub fn transient(mut self) -> Self {
        self.durable = false;
        self
    }

    /// Makes the queue exclusive to its declarer.
    pub fn exclusive(mut self) -> Self {
        self.exclusive = true;
        self
    }

    /// Deletes the queue when its last consumer leaves.
    pub fn auto_delete(mut self) -> Self {
        self.auto_delete = true;
        self
    }

    /// Attempts a message gets before it is dead-lettered.
    pub fn attempts_max(&self) -> u32 {
        self.max_retries.saturating_add(1)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        self.retry_backoff.validate()?;
        if let Some(dlq) = &self.dead_letter_queue {
            QueueName::new(dlq).map_err(|e| format!("dead_letter_queue: {e}"))?;
            if dlq == &self.name {
                return Err("dead_letter_queue must differ from the queue itself".to_owned());
            }
        }
        if self.message_ttl_ms == Some(0) {
            return Err("message_ttl_ms must be positive".to_owned());
        }
        if self.max_length == Some(0) {
            return Err("max_length must be positive".to_owned());
        }
        Ok(())
    }

    /// The first setting that differs from `requested`, as
    /// `(setting, existing, requested)`.
    pub(crate) fn diff(&self, requested: &QueueSpec) -> Option<(&'static str, String, String)> {
        macro_rules! compare {
            ($($field:ident),*) => {$(
                if self.$field != requested.$field {
                    return Some((stringify!($field), format!("{:?}", self.$field), format!("{:?}", requested.$field)));
                }
            )*};
        }
        compare!(
            durable,
            exclusive,
            auto_delete,
            dead_letter_queue,
            max_retries,
            message_ttl_ms,
            max_length,
            overflow,
            retry_backoff,
            dedup_window_ms
        );
        None
    }
}
