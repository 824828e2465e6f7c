//! Health, readiness, the OpenAPI document, the caller's role and the
//! effective configuration.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::dto::{ErrorResponse, RoleDto, Status, WhoAmI};
use crate::http::error::ApiError;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "alive", body = Status)))]
pub(crate) async fn healthz() -> Json<Status> {
    Json(Status {
        status: "ok".to_owned(),
    })
}

/// Readiness: the engine is open and the server is not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "ready", body = Status),
        (status = 503, description = "shutting down", body = ErrorResponse)))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    if state.draining.is_draining() {
        return Err(ApiError::unavailable("the server is shutting down"));
    }
    Ok(Json(Status {
        status: "ready".to_owned(),
    }))
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/api/openapi.json", tag = "health",
    responses((status = 200, description = "the OpenAPI document", content_type = "application/json")))]
pub(crate) async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.as_str().to_owned(),
    )
}

/// The caller's role.
#[utoipa::path(get, path = "/api/whoami", tag = "health", security(("bearer" = [])),
    responses((status = 200, body = WhoAmI), (status = 401, body = ErrorResponse)))]
pub(crate) async fn whoami(Extension(caller): Extension<Caller>) -> Result<Json<WhoAmI>, ApiError> {
    let role = caller
        .0
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    Ok(Json(WhoAmI {
        role: RoleDto::from_engine(role),
    }))
}

/// The effective configuration, secrets redacted.
#[utoipa::path(get, path = "/api/config", tag = "health", security(("bearer" = [])),
    responses((status = 200, description = "the configuration (TOML sections as JSON)", body = Object),
        (status = 403, body = ErrorResponse)))]
pub(crate) async fn config(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let config = state.engine.config().redacted();
    let value = serde_json::to_value(&config)
        .map_err(|e| ApiError::internal(format!("cannot serialize the configuration: {e}")))?;
    Ok((StatusCode::OK, Json(value)))
}
