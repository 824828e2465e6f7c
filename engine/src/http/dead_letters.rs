//! Dead-letter routes: list with total, and retry, purge or move, each with
//! a dry run that counts what would change (the console's preview).
//!
//! `{name}` selects by the queue's role: for a dead-letter queue (another
//! queue names it), the dead letters sitting in it; for any other queue, the
//! dead letters that came from it (in its DLQ, or parked in it).

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::Engine;
use crate::envelope::MessageId;
use crate::http::AppState;
use crate::http::dto::{
    Count, DeadLetter, DeadLetterAction, DeadLetterList, DeadLetterMove, DeadReasonDto,
    ErrorResponse,
};
use crate::http::error::{ApiError, ApiJson};
use crate::queue::DeadLetterFilter;

/// The filter selecting `name`'s dead letters (see the module doc).
fn filter(
    engine: &Engine,
    name: &str,
    ids: Option<&[String]>,
    reason: Option<DeadReasonDto>,
) -> Result<DeadLetterFilter, ApiError> {
    engine.queues().info(name)?;
    let is_dlq = engine
        .queues()
        .list()
        .iter()
        .any(|q| q.spec.dead_letter_queue.as_deref() == Some(name));
    let ids = match ids {
        Some(ids) => Some(
            ids.iter()
                .enumerate()
                .map(|(i, id)| {
                    id.parse::<MessageId>().map_err(|e| {
                        ApiError::invalid_request(format!(
                            "field `ids[{i}]` (`{id}`) is not a message id: {e}"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    Ok(DeadLetterFilter {
        queue: is_dlq.then(|| name.to_owned()),
        origin: (!is_dlq).then(|| name.to_owned()),
        reason: reason.map(DeadReasonDto::to_engine),
        ids,
        limit: None,
    })
}

/// Query of a dead-letter listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only this reason.
    reason: Option<DeadReasonDto>,
    /// Most to list (default 100).
    limit: Option<u32>,
}

/// Dead letters of a queue, oldest first, with the total that match.
#[utoipa::path(get, path = "/api/queues/{name}/dead-letters", tag = "dead-letters", security(("bearer" = [])),
    params(("name" = String, Path, description = "queue name"), ListQuery),
    responses((status = 200, body = DeadLetterList), (status = 404, body = ErrorResponse)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<DeadLetterList>, ApiError> {
    let all = filter(&state.engine, &name, None, query.reason)?;
    let total = state.engine.queues().count_dead_letters(&all).await?;
    let listed = state
        .engine
        .queues()
        .dead_letters(&DeadLetterFilter {
            limit: Some(query.limit.unwrap_or(100)),
            ..all
        })
        .await?;
    Ok(Json(DeadLetterList {
        dead_letters: listed.iter().filter_map(DeadLetter::from_engine).collect(),
        total,
    }))
}

/// Puts dead letters back into the queues they came from.
#[utoipa::path(post, path = "/api/queues/{name}/dead-letters/retry", tag = "dead-letters", security(("bearer" = [])),
    params(("name" = String, Path, description = "queue name")),
    request_body = DeadLetterAction,
    responses((status = 200, body = Count), (status = 404, body = ErrorResponse)))]
pub(crate) async fn retry(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<DeadLetterAction>,
) -> Result<Json<Count>, ApiError> {
    let filter = filter(&state.engine, &name, body.ids.as_deref(), body.reason)?;
    let queues = state.engine.queues();
    let count = if body.dry_run {
        queues.count_dead_letters(&filter).await?
    } else {
        queues.retry_dead_letters(&filter).await?.len() as u64
    };
    Ok(Json(Count { count }))
}

/// Deletes dead letters for good.
#[utoipa::path(post, path = "/api/queues/{name}/dead-letters/purge", tag = "dead-letters", security(("bearer" = [])),
    params(("name" = String, Path, description = "queue name")),
    request_body = DeadLetterAction,
    responses((status = 200, body = Count), (status = 404, body = ErrorResponse)))]
pub(crate) async fn purge(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<DeadLetterAction>,
) -> Result<Json<Count>, ApiError> {
    let filter = filter(&state.engine, &name, body.ids.as_deref(), body.reason)?;
    let queues = state.engine.queues();
    let count = if body.dry_run {
        queues.count_dead_letters(&filter).await?
    } else {
        queues.purge_dead_letters(&filter).await?
    };
    Ok(Json(Count { count }))
}

/// Moves dead letters to another queue, ready now.
#[utoipa::path(post, path = "/api/queues/{name}/dead-letters/move", tag = "dead-letters", security(("bearer" = [])),
    params(("name" = String, Path, description = "queue name")),
    request_body = DeadLetterMove,
    responses((status = 200, body = Count), (status = 404, body = ErrorResponse)))]
pub(crate) async fn move_to(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<DeadLetterMove>,
) -> Result<Json<Count>, ApiError> {
    let filter = filter(&state.engine, &name, body.ids.as_deref(), body.reason)?;
    let queues = state.engine.queues();
    queues.info(&body.to)?;
    let count = if body.dry_run {
        queues.count_dead_letters(&filter).await?
    } else {
        queues.move_dead_letters(&filter, &body.to).await?.len() as u64
    };
    Ok(Json(Count { count }))
}
