//! `GET /api/consume/{name}`: streaming consume over a WebSocket, for remote
//! consumers that want push delivery with prefetch (RabbitMQ's
//! `basic.consume` + `basic.qos`).
//!
//! Protocol (JSON text frames; `docs/api.md` has the full description):
//! 1. the client sends `{"prefetch": N, "lease_ms"?: ..}`;
//! 2. the server pushes `{"deliveries": [Delivery, ..]}` while fewer than N
//!    deliveries are unsettled;
//! 3. the client settles with `{"ack": [lease, ..]}`,
//!    `{"nack": lease, "error"?, "delay_ms"?}` or `{"reject": lease, "error"?}`;
//! 4. the server commits settlements in batches (every frame already
//!    received is settled in one storage operation) and confirms them with
//!    `{"settled": [lease, ..], "failed": [{lease, ok: false, error}]}`.
//!
//! On shutdown the server sends `{"draining": true}`, stops delivering, and
//! keeps settling until nothing is unsettled or the deadline passes. When the
//! client goes away, its unsettled deliveries are released at once (nacked
//! with no delay), as RabbitMQ requeues on channel close.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use futures_util::{FutureExt, SinkExt};
use tokio::sync::broadcast::error::RecvError;

use crate::Engine;
use crate::http::AppState;
use crate::http::dto::{ConsumeFrame, ConsumeSettle, ConsumeStart, Delivery, ErrorResponse};
use crate::http::error::ApiError;
use crate::http::queues::settle;
use crate::queue::{Outcome, ReceiveOptions};

/// How long a consumer with room waits for a wake-up before it looks again
/// (retries and expired leases become visible without one).
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Most settle frames folded into one storage operation.
const SETTLE_FRAMES_MAX: usize = 1024;
/// Time the client has to send its first frame.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Streaming consume over a WebSocket (see the module doc for the protocol).
/// Browsers may pass the token as `?access_token=`.
#[utoipa::path(get, path = "/api/consume/{name}", tag = "messages", security(("bearer" = [])),
    params(("name" = String, Path, description = "queue name")),
    responses((status = 101, description = "WebSocket: client sends ConsumeStart then ConsumeSettle frames; server sends ConsumeFrame frames", body = ConsumeFrame),
        (status = 400, description = "not a WebSocket upgrade", body = ErrorResponse),
        (status = 404, body = ErrorResponse)))]
pub(crate) async fn consume(
    State(state): State<AppState>,
    Path(name): Path<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    state.engine.queues().info(&name)?;
    let upgrade = upgrade.map_err(|e| {
        ApiError::invalid_request(format!("expected a WebSocket upgrade: {}", e.body_text()))
    })?;
    if state.draining.is_draining() {
        return Err(ApiError::unavailable("the server is shutting down"));
    }
    // Counted from before the upgrade, so a shutdown cannot miss it.
    let guard = state.draining.session();
    Ok(upgrade.on_upgrade(move |socket| async move {
        let _guard = guard;
        let mut session = Session {
            state,
            queue: name,
            socket,
            unsettled: HashSet::new(),
        };
        if let Err(e) = session.run().await {
            let _ = session
                .send(&ConsumeFrame {
                    error: Some(e.body()),
                    ..ConsumeFrame::default()
                })
                .await;
        }
        session.release().await;
        let _ = session.socket.close().await;
    }))
}

struct Session {
    state: AppState,
    queue: String,
    socket: WebSocket,
    unsettled: HashSet<String>,
}

/// What the session loop was woken by.
enum Wake {
    Frame(Option<Result<WsMessage, axum::Error>>),
    MaybeReady,
    Draining,
}

impl Session {
    fn engine(&self) -> &Engine {
        &self.state.engine
    }

    async fn run(&mut self) -> Result<(), ApiError> {
        let start = self.start().await?;
        let prefetch = start.prefetch as usize;
        let options = ReceiveOptions {
            n_max: 0,
            lease_ms: start.lease_ms,
            owner: start.owner_token,
        };
        let mut feed = self.engine().queues().feed();
        let mut draining = false;
        loop {
            if !draining && self.unsettled.len() < prefetch {
                let room = (prefetch - self.unsettled.len()) as u32;
                let deliveries = self
                    .engine()
                    .queues()
                    .receive(
                        &self.queue,
                        ReceiveOptions {
                            n_max: room,
                            ..options.clone()
                        },
                    )
                    .await?;
                if !deliveries.is_empty() {
                    let deliveries: Vec<Delivery> =
                        deliveries.iter().map(Delivery::from_engine).collect();
                    self.unsettled
                        .extend(deliveries.iter().map(|d| d.lease.clone()));
                    self.send(&ConsumeFrame {
                        deliveries,
                        ..ConsumeFrame::default()
                    })
                    .await?;
                    // Settle what already arrived before claiming more.
                    if let Some(Some(frame)) = self.socket.recv().now_or_never()
                        && !self.on_frames(Some(frame)).await?
                    {
                        return Ok(());
                    }
                    continue;
                }
            }
            if draining && self.unsettled.is_empty() {
                return Ok(());
            }
            let has_room = !draining && self.unsettled.len() < prefetch;
            let queue = self.queue.clone();
            let wake = tokio::select! {
                frame = self.socket.recv() => Wake::Frame(frame),
                () = wait_for_queue(&mut feed, &queue), if has_room => Wake::MaybeReady,
                () = self.state.draining.wait(), if !draining => Wake::Draining,
            };
            match wake {
                Wake::Frame(frame) => {
                    if !self.on_frames(frame).await? {
                        return Ok(());
                    }
                }
                Wake::MaybeReady => {}
                Wake::Draining => {
                    draining = true;
                    self.send(&ConsumeFrame {
                        draining: true,
                        ..ConsumeFrame::default()
                    })
                    .await?;
                }
            }
        }
    }

    async fn start(&mut self) -> Result<ConsumeStart, ApiError> {
        let first = tokio::time::timeout(START_TIMEOUT, self.socket.recv())
            .await
            .map_err(|_| {
                ApiError::invalid_request("no start frame `{\"prefetch\": N}` within 10 s")
            })?;
        let text = match first {
            Some(Ok(WsMessage::Text(text))) => text,
            _ => {
                return Err(ApiError::invalid_request(
                    "the first frame must be a text frame `{\"prefetch\": N}`",
                ));
            }
        };
        let start: ConsumeStart = serde_json::from_str(text.as_str())
            .map_err(|e| ApiError::invalid_request(format!("invalid start frame: {e}")))?;
        let prefetch_max = self.engine().config().http.prefetch_max;
        if start.prefetch == 0 || start.prefetch > prefetch_max {
            return Err(ApiError::invalid_request(format!(
                "field `prefetch` is {}; it must be 1 to {prefetch_max}",
                start.prefetch
            )));
        }
        // Fail early on an unknown queue, a bad lease or a foreign exclusive queue.
        self.engine().queues().info(&self.queue)?;
        Ok(start)
    }

    /// Handles one received frame plus every frame already waiting, settling
    /// them all at once. Returns `false` when the client closed.
    async fn on_frames(
        &mut self,
        first: Option<Result<WsMessage, axum::Error>>,
    ) -> Result<bool, ApiError> {
        let mut acks = Vec::new();
        let mut others: Vec<(String, Outcome)> = Vec::new();
        let mut open = true;
        let mut next = first;
        for _ in 0..SETTLE_FRAMES_MAX {
            match next {
                None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => {
                    open = false;
                    break;
                }
                Some(Ok(WsMessage::Text(text))) => {
                    let frame: ConsumeSettle = serde_json::from_str(text.as_str())
                        .map_err(|e| ApiError::invalid_request(format!("invalid frame: {e}")))?;
                    parse_settle(frame, &mut acks, &mut others)?;
                }
                Some(Ok(_)) => {}
            }
            match self.socket.recv().now_or_never() {
                Some(frame) => next = frame,
                None => break,
            }
        }
        if !acks.is_empty() || !others.is_empty() {
            self.settle(acks, others).await?;
        }
        Ok(open)
    }

    async fn settle(
        &mut self,
        acks: Vec<String>,
        others: Vec<(String, Outcome)>,
    ) -> Result<(), ApiError> {
        let items: Vec<(String, Outcome)> = acks
            .into_iter()
            .map(|l| (l, Outcome::Ack))
            .chain(others)
            .collect();
        let results = settle(self.engine(), items).await;
        let mut frame = ConsumeFrame::default();
        for result in results {
            self.unsettled.remove(&result.lease);
            if result.ok {
                frame.settled.push(result.lease);
            } else {
                frame.failed.push(result);
            }
        }
        self.send(&frame).await
    }

    async fn send(&mut self, frame: &ConsumeFrame) -> Result<(), ApiError> {
        let text = serde_json::to_string(frame).expect("DTOs serialize");
        self.socket
            .send(WsMessage::Text(text.into()))
            .await
            .map_err(|e| ApiError::invalid_request(format!("the consumer went away: {e}")))
    }

    /// Releases deliveries the client still holds, so they are redelivered
    /// now instead of when their leases run out.
    async fn release(&mut self) {
        if self.unsettled.is_empty() {
            return;
        }
        let leases: Vec<String> = self.unsettled.drain().collect();
        let items = leases
            .into_iter()
            .map(|l| {
                let outcome = Outcome::NackAfter {
                    error: "consumer disconnected".to_owned(),
                    delay_ms: 0,
                };
                (l, outcome)
            })
            .collect();
        let _ = settle(&self.state.engine, items).await;
    }
}

fn parse_settle(
    frame: ConsumeSettle,
    acks: &mut Vec<String>,
    others: &mut Vec<(String, Outcome)>,
) -> Result<(), ApiError> {
    match (frame.ack, frame.nack, frame.reject) {
        (Some(leases), None, None) => acks.extend(leases),
        (None, Some(lease), None) => {
            let error = frame.error.unwrap_or_else(|| "nacked".to_owned());
            let outcome = match frame.delay_ms {
                Some(delay_ms) => Outcome::NackAfter { error, delay_ms },
                None => Outcome::Nack { error },
            };
            others.push((lease, outcome));
        }
        (None, None, Some(lease)) => others.push((
            lease,
            Outcome::Reject {
                error: frame.error.unwrap_or_else(|| "rejected".to_owned()),
            },
        )),
        _ => {
            return Err(ApiError::invalid_request(
                "a settle frame needs exactly one of `ack`, `nack` and `reject`",
            ));
        }
    }
    Ok(())
}

/// Resolves when something may have become ready in `queue`, or after
/// [`IDLE_POLL`].
async fn wait_for_queue(
    feed: &mut tokio::sync::broadcast::Receiver<crate::FeedEvent>,
    queue: &str,
) {
    let _ = tokio::time::timeout(IDLE_POLL, async {
        loop {
            match feed.recv().await {
                Ok(e) if &*e.queue == queue && matches!(e.kind, crate::FeedKind::Sent) => return,
                Ok(e) if matches!(&e.kind, crate::FeedKind::Redriven { to } if to == queue) => {
                    return;
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => return,
                Err(RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    })
    .await;
}
