//! The console's live view: `GET /api/overview` (every queue's counts and
//! recent rates) and `GET /api/stream`, a server-sent-event stream of the
//! engine's feed (`event: feed`) with an overview every second
//! (`event: overview`).
//!
//! The feed is lossy for slow listeners: a stream that falls behind gets a
//! `lagged` feed event saying how many events it skipped.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::Engine;
use crate::feed::FeedKind;
use crate::http::dto::{ErrorResponse, FeedEvent, Overview, QueueStats, Rates};
use crate::http::error::ApiError;
use crate::http::queues::summary;
use crate::http::{AppState, Draining};

/// Counts feed events and keeps the rates of the last full second.
#[derive(Default)]
pub(crate) struct RateMeter {
    sent: AtomicU64,
    acked: AtomicU64,
    nacked: AtomicU64,
    dead_lettered: AtomicU64,
    last: Mutex<Rates>,
}

impl RateMeter {
    /// Starts the task that counts the engine's feed; it stops when the
    /// server drains or the meter is dropped.
    pub(crate) fn start(engine: &Engine, draining: Draining) -> Arc<RateMeter> {
        let meter = Arc::new(RateMeter::default());
        let weak = Arc::downgrade(&meter);
        let mut feed = engine.feed();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut before = [0u64; 4];
            let mut at = Instant::now();
            loop {
                tokio::select! {
                    event = feed.recv() => {
                        let Some(meter) = weak.upgrade() else { return };
                        match event {
                            Ok(e) => meter.count(&e.kind),
                            Err(RecvError::Lagged(_)) => {}
                            Err(RecvError::Closed) => return,
                        }
                    }
                    _ = tick.tick() => {
                        let Some(meter) = weak.upgrade() else { return };
                        let now = meter.totals();
                        let secs = at.elapsed().as_secs_f64().max(0.001);
                        let rate = |i: usize| (now[i] - before[i]) as f64 / secs;
                        *meter.last.lock().expect("rates lock") = Rates {
                            sent_per_s: rate(0),
                            acked_per_s: rate(1),
                            nacked_per_s: rate(2),
                            dead_lettered_per_s: rate(3),
                        };
                        before = now;
                        at = Instant::now();
                    }
                    () = draining.wait() => return,
                }
            }
        });
        meter
    }

    fn count(&self, kind: &FeedKind) {
        let counter = match kind {
            FeedKind::Sent => &self.sent,
            FeedKind::Acked => &self.acked,
            FeedKind::RetryScheduled { .. } => &self.nacked,
            FeedKind::DeadLettered { .. } => &self.dead_lettered,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn totals(&self) -> [u64; 4] {
        [
            self.sent.load(Ordering::Relaxed),
            self.acked.load(Ordering::Relaxed),
            self.nacked.load(Ordering::Relaxed),
            self.dead_lettered.load(Ordering::Relaxed),
        ]
    }

    fn rates(&self) -> Rates {
        self.last.lock().expect("rates lock").clone()
    }
}

async fn take_overview(state: &AppState) -> Result<Overview, ApiError> {
    let mut queues = Vec::new();
    let mut totals = QueueStats::default();
    for info in state.engine.queues().list() {
        let Ok(s) = summary(&state.engine, &info).await else {
            continue;
        };
        totals.ready += s.stats.ready;
        totals.in_flight += s.stats.in_flight;
        totals.scheduled += s.stats.scheduled;
        totals.dead_lettered += s.stats.dead_lettered;
        totals.oldest_age_ms = totals.oldest_age_ms.max(s.stats.oldest_age_ms);
        queues.push(s);
    }
    Ok(Overview {
        at_ms: state.engine.clock().now().as_millis(),
        totals,
        queues,
        rates: state.rates.rates(),
    })
}

/// Every queue's counts, totals, and the rates of the last second.
#[utoipa::path(get, path = "/api/overview", tag = "stream", security(("bearer" = [])),
    responses((status = 200, body = Overview), (status = 401, body = ErrorResponse)))]
pub(crate) async fn overview(State(state): State<AppState>) -> Result<Json<Overview>, ApiError> {
    Ok(Json(take_overview(&state).await?))
}

/// Live engine events (`event: feed`, a FeedEvent) and an overview every
/// second (`event: overview`). Browsers may pass the token as
/// `?access_token=`.
#[utoipa::path(get, path = "/api/stream", tag = "stream", security(("bearer" = [])),
    responses((status = 200, description = "text/event-stream of `feed` (FeedEvent) and `overview` (Overview) events",
        content_type = "text/event-stream", body = FeedEvent),
        (status = 401, body = ErrorResponse)))]
pub(crate) async fn stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let feed = state.engine.feed();
    let tick = tokio::time::interval(Duration::from_secs(1));
    let events = futures_util::stream::unfold(
        (state, feed, tick),
        |(state, mut feed, mut tick)| async move {
            let event = tokio::select! {
                biased;
                () = state.draining.wait() => return None,
                received = feed.recv() => match received {
                    Ok(e) => json_event("feed", &FeedEvent::from_engine(&e)),
                    Err(RecvError::Lagged(n)) => json_event("feed", &FeedEvent {
                        at_ms: state.engine.clock().now().as_millis(),
                        kind: "lagged".to_owned(),
                        queue: String::new(),
                        message_id: String::new(),
                        attempt: None,
                        detail: Some(format!("skipped {n} events")),
                    }),
                    Err(RecvError::Closed) => return None,
                },
                _ = tick.tick() => match take_overview(&state).await {
                    Ok(o) => json_event("overview", &o),
                    Err(e) => json_event("error", &e.body()),
                },
            };
            Some((Ok(event), (state, feed, tick)))
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}

fn json_event<T: serde::Serialize>(name: &str, value: &T) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(value).expect("DTOs serialize"))
}
