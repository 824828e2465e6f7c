//! `GET /metrics`: the engine's metrics in Prometheus' text format (see
//! `telemetry::metrics`).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::http::AppState;
use crate::http::dto::ErrorResponse;
use crate::http::error::ApiError;

/// Queue depths, message counters and handler latencies, in the Prometheus
/// text format.
#[utoipa::path(get, path = "/metrics", tag = "health", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, body = ErrorResponse)))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.engine.metrics_text().await,
    ))
}
