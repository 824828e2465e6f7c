//! The HTTP server: the JSON API of `docs/api.md`, live streams (SSE and
//! WebSocket), metrics, health, the OpenAPI document and the console's
//! assets.
//!
//! [`app`] builds the router (tests drive it with `oneshot`, no socket);
//! [`serve`] runs it on a listener the caller bound, until a shutdown future
//! resolves. The module never binds sockets, reads the environment or
//! reads files other than the console's assets.
//!
//! # Layout
//! - [`error`]: `ApiError`, the only error → status mapping.
//! - [`auth`]: tokens, roles and the access table every route has a row in.
//! - [`dto`]: wire shapes, shared with [`crate::client`].
//! - `queues`, `dead_letters`, `health`, `stream` (SSE + overview),
//!   `consume` (WebSocket), `flows`, `metrics`: routes and handlers per
//!   resource.
//! - `openapi`: the generated document; `assets`: the console.

pub mod auth;
pub mod dto;
pub mod error;

mod assets;
mod consume;
mod dead_letters;
mod flows;
mod health;
mod metrics;
mod openapi;
mod queues;
mod stream;
#[cfg(test)]
mod tests;

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{Access, Auth, ROUTES};
pub use error::ApiError;

use crate::Engine;

/// Content-Security-Policy of every response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; frame-ancestors 'none'";

/// State shared by every handler.
#[derive(Clone)]
pub(crate) struct AppState {
    engine: Engine,
    auth: Arc<Auth>,
    openapi: Arc<String>,
    draining: Draining,
    rates: Arc<stream::RateMeter>,
}

/// Tells long-lived streams that the server is shutting down, and counts
/// the WebSocket sessions still open: an upgraded connection is no longer
/// the HTTP server's, so [`serve`] waits for them itself.
#[derive(Clone)]
pub(crate) struct Draining(Arc<DrainingInner>);

struct DrainingInner {
    draining: watch::Sender<bool>,
    sessions: watch::Sender<usize>,
}

/// Held by an open WebSocket session; counts it until dropped.
pub(crate) struct SessionGuard(Draining);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.0.sessions.send_modify(|n| *n -= 1);
    }
}

impl Draining {
    fn new() -> Draining {
        Draining(Arc::new(DrainingInner {
            draining: watch::channel(false).0,
            sessions: watch::channel(0).0,
        }))
    }

    fn start(&self) {
        self.0.draining.send_replace(true);
    }

    pub(crate) fn is_draining(&self) -> bool {
        *self.0.draining.borrow()
    }

    /// Resolves once shutdown has begun.
    pub(crate) async fn wait(&self) {
        let mut rx = self.0.draining.subscribe();
        let _ = rx.wait_for(|draining| *draining).await;
    }

    /// Counts a WebSocket session until the guard is dropped.
    pub(crate) fn session(&self) -> SessionGuard {
        self.0.sessions.send_modify(|n| *n += 1);
        SessionGuard(self.clone())
    }

    /// Resolves when no WebSocket session is open.
    async fn sessions_closed(&self) {
        let mut rx = self.0.sessions.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// The router of the whole server, for an engine and its tokens.
pub fn app(engine: Engine, auth: Auth) -> Router {
    router(engine, auth, Draining::new())
}

/// The OpenAPI document the server serves at `/api/openapi.json`.
pub fn openapi_json() -> String {
    let (_, api) = api_routes().split_for_parts();
    openapi::to_json(api)
}

fn api_routes() -> OpenApiRouter<AppState> {
    let batch = OpenApiRouter::new()
        .routes(routes!(queues::send_batch))
        .layer(DefaultBodyLimit::max(usize::MAX));
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::openapi))
        .routes(routes!(metrics::metrics))
        .routes(routes!(health::whoami))
        .routes(routes!(health::config))
        .routes(routes!(stream::overview))
        .routes(routes!(stream::stream))
        .routes(routes!(queues::list))
        .routes(routes!(queues::declare, queues::get, queues::delete))
        .routes(routes!(queues::send, queues::peek))
        .routes(routes!(queues::receive))
        .routes(routes!(queues::ack))
        .routes(routes!(queues::nack))
        .routes(routes!(queues::reject))
        .routes(routes!(dead_letters::list))
        .routes(routes!(dead_letters::retry))
        .routes(routes!(dead_letters::purge))
        .routes(routes!(dead_letters::move_to))
        .routes(routes!(consume::consume))
        .routes(routes!(flows::recent))
        .routes(routes!(flows::lookup))
        .routes(routes!(flows::by_correlation))
        .routes(routes!(flows::by_trace))
        .routes(routes!(flows::by_message))
        .merge(batch)
}

fn router(engine: Engine, auth: Auth, draining: Draining) -> Router {
    let http = engine.config().http.clone();
    let (api, doc) = api_routes().split_for_parts();
    let state = AppState {
        rates: stream::RateMeter::start(&engine, draining.clone()),
        engine,
        auth: Arc::new(auth),
        openapi: Arc::new(openapi::to_json(doc)),
        draining,
    };
    let mut router = api
        .fallback(assets::fallback)
        .layer(middleware::from_fn_with_state(state.clone(), auth::require))
        .layer(middleware::from_fn_with_state(state.clone(), body_limits))
        .layer(DefaultBodyLimit::max(http.body_bytes_max))
        .layer(middleware::from_fn_with_state(state.clone(), limits))
        .with_state(state);
    if !http.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> = http
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods(tower_http::cors::Any)
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
        );
    }
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ))
}

/// Body limits: batch sends get their own, larger one. A declared length
/// over the limit is refused before the body is read, naming both sizes.
async fn body_limits(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let http = &state.engine.config().http;
    let is_batch = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .is_some_and(|p| p.as_str() == "/api/queues/{name}/batch");
    let (limit, setting) = if is_batch {
        (http.batch_body_bytes_max, "http.batch_body_bytes_max")
    } else {
        (http.body_bytes_max, "http.body_bytes_max")
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared
        && length > limit as u64
    {
        return ApiError::payload_too_large(format!(
            "request body is {length} bytes; the limit is {limit} ({setting})"
        ))
        .into_response();
    }
    if is_batch {
        let body = std::mem::take(req.body_mut());
        *req.body_mut() = axum::body::Body::new(http_body_util::Limited::new(body, limit));
    }
    next.run(req).await
}

/// Header size and request time limits, answered in the API's error format.
async fn limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let http = &state.engine.config().http;
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > http.header_bytes_max {
        return ApiError::headers_too_large(format!(
            "request headers are {header_bytes} bytes; the limit is {}",
            http.header_bytes_max
        ))
        .into_response();
    }
    let limit = Duration::from_millis(http.request_timeout_ms);
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::timeout(format!(
            "request took longer than {} ms",
            http.request_timeout_ms
        ))
        .into_response(),
    }
}

/// Serves [`app`] on `listener` until `shutdown` resolves, then stops
/// accepting, tells streams to drain, and waits for in-flight requests up to
/// the configured deadline. The caller shuts the engine down afterwards.
pub async fn serve(
    listener: TcpListener,
    engine: Engine,
    auth: Auth,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let deadline = Duration::from_millis(engine.config().http.shutdown_deadline_ms);
    let draining = Draining::new();
    let app = router(engine, auth, draining.clone());
    let signal = {
        let draining = draining.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, draining in-flight work");
            draining.start();
        }
    };
    // Small frames (WebSocket deliveries, acks) must not wait for Nagle's
    // algorithm and the peer's delayed ACK (about 40 ms each).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(cause = %e, "cannot set TCP_NODELAY");
        }
    });
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .into_future();
    let served = async {
        server.await?;
        // HTTP connections are done; WebSocket sessions settle what their
        // consumers still hold, then close.
        draining.sessions_closed().await;
        Ok(())
    };
    let overdue = async {
        draining.wait().await;
        tokio::time::sleep(deadline).await;
    };
    tokio::select! {
        result = served => result,
        () = overdue => {
            tracing::warn!(deadline_ms = deadline.as_millis() as u64, "shutdown deadline passed; closing remaining connections");
            Ok(())
        }
    }
}
