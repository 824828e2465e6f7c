//! Flow routes: the engine's own spans for a correlation id, a trace id or a
//! message id, as a graph and a timeline; and the list of recent flows.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::http::AppState;
use crate::http::dto::{ErrorResponse, Flow, FlowList, FlowSummary};
use crate::http::error::ApiError;

/// Query of `GET /api/flows`.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct RecentQuery {
    /// Most flows (default 50, at most 500).
    limit: Option<u32>,
}

/// Flows with the most recent activity.
#[utoipa::path(get, path = "/api/flows", tag = "flows", security(("bearer" = [])),
    params(RecentQuery),
    responses((status = 200, body = FlowList), (status = 401, body = ErrorResponse)))]
pub(crate) async fn recent(
    State(state): State<AppState>,
    Query(query): Query<RecentQuery>,
) -> Result<Json<FlowList>, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let flows = state.engine.flows().recent(limit).await.map_err(storage)?;
    Ok(Json(FlowList {
        flows: flows.into_iter().map(FlowSummary::from_engine).collect(),
    }))
}

/// Looks an id up as a correlation id, then a message id, then a trace id.
#[utoipa::path(get, path = "/api/flows/lookup/{id}", tag = "flows", security(("bearer" = [])),
    params(("id" = String, Path, description = "correlation, message or trace id")),
    responses((status = 200, body = Flow), (status = 404, body = ErrorResponse),
        (status = 401, body = ErrorResponse)))]
pub(crate) async fn lookup(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Flow>, ApiError> {
    let flow = state.engine.flows().lookup(&id).await.map_err(storage)?;
    if flow.timeline.is_empty() {
        return Err(ApiError::not_found(format!(
            "no flow has correlation id, message id or trace id `{id}` (spans may have been pruned)"
        )));
    }
    Ok(Json(Flow::from_engine(flow)))
}

/// Every span of a correlation id (empty when none is kept).
#[utoipa::path(get, path = "/api/flows/correlation/{id}", tag = "flows",
    security(("bearer" = [])), params(("id" = String, Path, description = "correlation id")),
    responses((status = 200, body = Flow), (status = 401, body = ErrorResponse)))]
pub(crate) async fn by_correlation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Flow>, ApiError> {
    let flow = state
        .engine
        .flows()
        .by_correlation(&id)
        .await
        .map_err(storage)?;
    Ok(Json(Flow::from_engine(flow)))
}

/// Every span of a trace (empty when none is kept).
#[utoipa::path(get, path = "/api/flows/trace/{id}", tag = "flows", security(("bearer" = [])),
    params(("id" = String, Path, description = "trace id, 32 hex digits")),
    responses((status = 200, body = Flow), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse)))]
pub(crate) async fn by_trace(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Flow>, ApiError> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::invalid_request(format!(
            "trace id `{id}` is not 32 hexadecimal digits"
        )));
    }
    let flow = state.engine.flows().by_trace(&id).await.map_err(storage)?;
    Ok(Json(Flow::from_engine(flow)))
}

/// The flow a message belongs to (empty when none is kept).
#[utoipa::path(get, path = "/api/flows/message/{id}", tag = "flows", security(("bearer" = [])),
    params(("id" = String, Path, description = "message id (UUID)")),
    responses((status = 200, body = Flow), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse)))]
pub(crate) async fn by_message(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Flow>, ApiError> {
    if id.parse::<uuid::Uuid>().is_err() {
        return Err(ApiError::invalid_request(format!(
            "message id `{id}` is not a UUID"
        )));
    }
    let flow = state
        .engine
        .flows()
        .by_message(&id)
        .await
        .map_err(storage)?;
    Ok(Json(Flow::from_engine(flow)))
}

fn storage(e: crate::storage::StorageError) -> ApiError {
    ApiError::internal(format!("cannot read spans: {e}"))
}
