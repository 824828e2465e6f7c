//! Time, injected: every deadline in the engine (leases, retries, TTLs, dedup
//! windows) is read from a [`Clock`], so tests move time by hand instead of
//! sleeping.
//!
//! Knows nothing about queues; only milliseconds since the Unix epoch.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

/// A point in time: milliseconds since the Unix epoch (UTC).
///
/// Milliseconds are the unit of every stored deadline; they fit an SQL
/// `INTEGER`/`BIGINT` on both backends and are what operators read.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Milliseconds since the Unix epoch.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// This point moved `duration` later (saturating).
    pub fn plus(self, duration: Duration) -> Timestamp {
        let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }

    /// Time elapsed from `earlier` to `self`, zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0 - earlier.0).unwrap_or(0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// The engine's source of time: the system clock, or a manual clock that
/// only moves when a test advances it.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// Wall-clock time.
    #[default]
    System,
    /// Time that moves only through [`ManualClock::advance`].
    Manual(ManualClock),
}

/// A clock for tests: starts at a given instant and moves only when told.
#[derive(Clone, Debug)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    now_ms: AtomicI64,
    /// Woken on every advance, so that tasks waiting for a deadline
    /// re-check it instead of sleeping on wall-clock time.
    advanced: Notify,
}

impl Clock {
    /// A manual clock starting at `start`, and the handle that moves it.
    pub fn manual(start: Timestamp) -> (Clock, ManualClock) {
        let manual = ManualClock {
            inner: Arc::new(ManualInner {
                now_ms: AtomicI64::new(start.0),
                advanced: Notify::new(),
            }),
        };
        (Clock::Manual(manual.clone()), manual)
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => {
                let since = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                Timestamp(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
            }
            Clock::Manual(manual) => manual.now(),
        }
    }

    /// The current time as a `SystemTime`, for span timestamps: microsecond
    /// precision on the system clock, the manual clock's millisecond in tests.
    pub fn now_system(&self) -> SystemTime {
        match self {
            Clock::System => SystemTime::now(),
            Clock::Manual(manual) => {
                UNIX_EPOCH + Duration::from_millis(u64::try_from(manual.now().0).unwrap_or(0))
            }
        }
    }

    /// Resolves once the clock reads `deadline` or later.
    pub async fn sleep_until(&self, deadline: Timestamp) {
        match self {
            Clock::System => {
                let now = self.now();
                if deadline > now {
                    tokio::time::sleep(deadline.since(now)).await;
                }
            }
            Clock::Manual(manual) => loop {
                let advanced = manual.inner.advanced.notified();
                tokio::pin!(advanced);
                advanced.as_mut().enable();
                if manual.now() >= deadline {
                    return;
                }
                advanced.await;
            },
        }
    }
}

impl ManualClock {
    /// The current time of this clock.
    pub fn now(&self) -> Timestamp {
        Timestamp(self.inner.now_ms.load(Ordering::SeqCst))
    }

    /// Moves the clock forward and wakes everything waiting on it.
    pub fn advance(&self, duration: Duration) {
        let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        self.inner.now_ms.fetch_add(ms, Ordering::SeqCst);
        self.inner.advanced.notify_waiters();
    }
}
