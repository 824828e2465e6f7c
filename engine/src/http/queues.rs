//! Queue routes: declare, list, inspect, delete, send (single and atomic
//! batch), peek, pull receive with leases, and ack/nack/reject.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine as _;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::Engine;
use crate::envelope::{OutgoingMessage, Payload};
use crate::feed::FeedKind;
use crate::http::AppState;
use crate::http::dto::{
    AckBody, AckResults, BatchBody, BatchSent, Deleted, Deliveries, Delivery, Done, ErrorResponse,
    Message, MessageList, NackBody, QueueList, QueueSpec, QueueStats, QueueSummary, ReceiveBody,
    RejectBody, SendBody, Sent, SettleResult,
};
use crate::http::error::{ApiError, ApiJson};
use crate::queue::{LeaseToken, Outcome, QueueInfo, ReceiveOptions};

/// The summary of one declared queue.
pub(crate) async fn summary(engine: &Engine, info: &QueueInfo) -> Result<QueueSummary, ApiError> {
    let stats = engine.queues().stats(&info.spec.name).await?;
    Ok(QueueSummary {
        name: info.spec.name.clone(),
        spec: QueueSpec::from_engine(&info.spec),
        stats: QueueStats::from_engine(&stats),
        consumers: u32::try_from(info.n_consumers).unwrap_or(u32::MAX),
        owner_token: None,
    })
}

/// Every queue with its settings and counts.
#[utoipa::path(get, path = "/api/queues", tag = "queues", security(("bearer" = [])),
    responses((status = 200, body = QueueList), (status = 401, body = ErrorResponse)))]
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<QueueList>, ApiError> {
    let mut queues = Vec::new();
    for info in state.engine.queues().list() {
        match summary(&state.engine, &info).await {
            Ok(s) => queues.push(s),
            // Deleted between list and stats: leave it out.
            Err(e) if e.code == "unknown_queue" => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Json(QueueList { queues }))
}

/// Declares a queue (201), or confirms one with identical settings (200).
#[utoipa::path(put, path = "/api/queues/{name}", tag = "queues", security(("bearer" = [])),
    params(("name" = String, Path, description = "queue name")),
    request_body = QueueSpec,
    responses((status = 201, description = "declared", body = QueueSummary),
        (status = 200, description = "already declared with these settings", body = QueueSummary),
        (status = 400, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
pub(crate) async fn declare(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(spec): ApiJson<QueueSpec>,
) -> Result<(StatusCode, Json<QueueSummary>), ApiError> {
    if let Some(body_name) = &spec.name
        && body_name != &name
    {
        return Err(ApiError::invalid_request(format!(
            "field `name` is `{body_name}` but the path names queue `{name}`"
        )));
    }
    let existed = state.engine.queues().info(&name).is_ok();
    let info = state.engine.queues().declare(spec.to_engine(&name)).await?;
    let mut summary = summary(&state.engine, &info).await?;
    summary.owner_token = info.owner.clone();
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(summary)))
}

/// One queue's settings and counts.
#[utoipa::path(get, path = "/api/queues/{name}", tag = "queues", security(("bearer" = [])),
    params(("name" = String, Path, description = "queue name")),
    responses((status = 200, body = QueueSummary), (status = 404, body = ErrorResponse)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<QueueSummary>, ApiError> {
    let info = state.engine.queues().info(&name)?;
    Ok(Json(summary(&state.engine, &info).await?))
}

/// Deletes a queue and its messages.
#[utoipa::path(delete, path = "/api/queues/{name}", tag = "queues", security(("bearer" = [])),
    params(("name" = String, Path, description = "queue name")),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorResponse),
        (status = 409, description = "another queue's dead-letter queue", body = ErrorResponse)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    let deleted_messages = state.engine.queues().delete(&name).await?;
    Ok(Json(Deleted { deleted_messages }))
}

/// Turns a send body into the engine's message; errors name the field.
pub(crate) fn outgoing(engine: &Engine, body: SendBody) -> Result<OutgoingMessage, ApiError> {
    let payload = match (body.payload, body.payload_base64) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_request(
                "give either `payload` or `payload_base64`, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid_request(
                "missing field `payload` (or `payload_base64`)",
            ));
        }
        (Some(value), None) => match &body.content_type {
            Some(ct) if !ct.starts_with("application/json") => match value {
                serde_json::Value::String(text) => Payload::bytes(ct.clone(), text.into_bytes()),
                _ => {
                    return Err(ApiError::invalid_request(format!(
                        "field `payload` must be a string for content type `{ct}`"
                    )));
                }
            },
            _ => Payload::json(&value),
        },
        (None, Some(b64)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| {
                    ApiError::invalid_request(format!("field `payload_base64` is not base64: {e}"))
                })?;
            Payload::bytes(
                body.content_type
                    .unwrap_or_else(|| "application/octet-stream".to_owned()),
                bytes,
            )
        }
    };
    let traceparent = body
        .traceparent
        .map(|tp| tp.parse())
        .transpose()
        .map_err(|e| ApiError::invalid_request(format!("field `traceparent`: {e}")))?;
    let deliver_at = body
        .delay_ms
        .map(|ms| engine.clock().now().plus(Duration::from_millis(ms)));
    Ok(OutgoingMessage {
        payload: Some(payload),
        source: body.source,
        correlation_id: body.correlation_id,
        causation_id: body.causation_id,
        reply_to: body.reply_to,
        headers: body.headers,
        traceparent,
        tracestate: body.tracestate,
        idempotency_key: body.idempotency_key,
        deliver_at,
        ttl_ms: body.ttl_ms,
    })
}

/// Sends one message; answers once it is committed.
#[utoipa::path(post, path = "/api/queues/{name}/messages", tag = "messages", security(("bearer" = [])),
    params(("name" = String, Path, description = "queue name")),
    request_body = SendBody,
    responses((status = 200, body = Sent), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, description = "queue full", body = ErrorResponse),
        (status = 413, body = ErrorResponse)))]
pub(crate) async fn send(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<Json<Sent>, ApiError> {
    let message = outgoing(&state.engine, body)?;
    let receipt = state.engine.queues().send(&name, message).await?;
    Ok(Json(Sent {
        id: receipt.id.to_string(),
        duplicate: receipt.duplicate,
    }))
}

/// Sends messages atomically: all are stored, or none.
#[utoipa::path(post, path = "/api/queues/{name}/batch", tag = "messages", security(("bearer" = [])),
    params(("name" = String, Path, description = "queue name")),
    request_body = BatchBody,
    responses((status = 200, body = BatchSent), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 413, body = ErrorResponse)))]
pub(crate) async fn send_batch(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<Json<BatchSent>, ApiError> {
    let messages = body
        .messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            outgoing(&state.engine, m).map_err(|mut e| {
                e.message = format!("messages[{i}]: {}", e.message);
                e
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let receipts = state.engine.queues().send_batch(&name, messages).await?;
    Ok(Json(BatchSent {
        ids: receipts.iter().map(|r| r.id.to_string()).collect(),
    }))
}

/// Query of a peek.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PeekQuery {
    /// Most messages to show (default 50).
    limit: Option<u32>,
}

/// Messages waiting in a queue, in delivery order, without consuming them.
#[utoipa::path(get, path = "/api/queues/{name}/messages", tag = "messages", security(("bearer" = [])),
    params(("name" = String, Path, description = "queue name"), PeekQuery),
    responses((status = 200, body = MessageList), (status = 404, body = ErrorResponse)))]
pub(crate) async fn peek(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<PeekQuery>,
) -> Result<Json<MessageList>, ApiError> {
    let messages = state
        .engine
        .queues()
        .peek(&name, query.limit.unwrap_or(50))
        .await?;
    Ok(Json(MessageList {
        messages: messages.iter().map(Message::from_engine).collect(),
    }))
}

/// Leases up to `max` messages; with `wait_ms`, waits for one when none is
/// ready (long poll).
#[utoipa::path(post, path = "/api/queues/{name}/receive", tag = "messages", security(("bearer" = [])),
    params(("name" = String, Path, description = "queue name")),
    request_body = ReceiveBody,
    responses((status = 200, body = Deliveries), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse)))]
pub(crate) async fn receive(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ReceiveBody>,
) -> Result<Json<Deliveries>, ApiError> {
    let wait_max = state.engine.config().http.receive_wait_ms_max;
    if body.wait_ms > wait_max {
        return Err(ApiError::invalid_request(format!(
            "field `wait_ms` is {}; the limit is {wait_max}",
            body.wait_ms
        )));
    }
    if body.max == 0 {
        return Err(ApiError::invalid_request("field `max` must be at least 1"));
    }
    let options = ReceiveOptions {
        n_max: body.max,
        lease_ms: body.lease_ms,
        owner: body.owner_token,
    };
    let queues = state.engine.queues();
    // Subscribe before the first look so a send in between is not missed.
    let mut feed = (body.wait_ms > 0).then(|| queues.feed());
    let deadline = tokio::time::Instant::now() + Duration::from_millis(body.wait_ms);
    loop {
        let deliveries = queues.receive(&name, options.clone()).await?;
        if !deliveries.is_empty() || state.draining.is_draining() {
            return Ok(Json(Deliveries {
                deliveries: deliveries.iter().map(Delivery::from_engine).collect(),
            }));
        }
        let Some(rx) = feed.as_mut() else {
            return Ok(Json(Deliveries { deliveries: vec![] }));
        };
        // Wait for something that may have made a message visible here.
        let woke = tokio::time::timeout_at(deadline, async {
            loop {
                match rx.recv().await {
                    Ok(e)
                        if *e.queue == *name
                            || matches!(&e.kind, FeedKind::Redriven { to } if *to == name) =>
                    {
                        return true;
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return true,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return false,
                }
            }
        })
        .await;
        if !matches!(woke, Ok(true)) {
            let last = queues.receive(&name, options.clone()).await?;
            return Ok(Json(Deliveries {
                deliveries: last.iter().map(Delivery::from_engine).collect(),
            }));
        }
    }
}

fn lease(text: &str) -> Result<LeaseToken, ApiError> {
    Ok(text.parse::<LeaseToken>()?)
}

/// Acknowledges deliveries; each succeeds or fails on its own.
#[utoipa::path(post, path = "/api/ack", tag = "messages", security(("bearer" = [])),
    request_body = AckBody,
    responses((status = 200, body = AckResults), (status = 400, body = ErrorResponse)))]
pub(crate) async fn ack(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AckBody>,
) -> Result<Json<AckResults>, ApiError> {
    Ok(Json(AckResults {
        results: settle(
            &state.engine,
            body.leases.into_iter().map(|l| (l, Outcome::Ack)).collect(),
        )
        .await,
    }))
}

/// Settles many leases, each with its outcome; invalid tokens fail alone.
pub(crate) async fn settle(engine: &Engine, items: Vec<(String, Outcome)>) -> Vec<SettleResult> {
    let mut results: Vec<Option<SettleResult>> = Vec::with_capacity(items.len());
    let mut valid = Vec::new();
    let mut positions = Vec::new();
    let mut texts = Vec::with_capacity(items.len());
    for (i, (text, outcome)) in items.into_iter().enumerate() {
        match lease(&text) {
            Ok(token) => {
                valid.push((token, outcome));
                positions.push(i);
                results.push(None);
            }
            Err(e) => results.push(Some(SettleResult {
                lease: text.clone(),
                ok: false,
                error: Some(e.body()),
            })),
        }
        texts.push(text);
    }
    let settled = engine.queues().settle_all(valid).await;
    for (i, result) in positions.into_iter().zip(settled) {
        results[i] = Some(SettleResult {
            lease: texts[i].clone(),
            ok: result.is_ok(),
            error: result.err().map(|e| ApiError::from(e).body()),
        });
    }
    results
        .into_iter()
        .map(|r| r.expect("every lease answered"))
        .collect()
}

/// Fails a delivery: retried after the queue's backoff (or `delay_ms`), or
/// dead-lettered after its last attempt.
#[utoipa::path(post, path = "/api/nack", tag = "messages", security(("bearer" = [])),
    request_body = NackBody,
    responses((status = 200, body = Done), (status = 400, body = ErrorResponse),
        (status = 409, description = "stale lease", body = ErrorResponse)))]
pub(crate) async fn nack(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NackBody>,
) -> Result<Json<Done>, ApiError> {
    let token = lease(&body.lease)?;
    let error = body.error.unwrap_or_else(|| "nacked".to_owned());
    let outcome = match body.delay_ms {
        Some(delay_ms) => Outcome::NackAfter { error, delay_ms },
        None => Outcome::Nack { error },
    };
    settle_one(&state.engine, token, outcome).await
}

/// Dead-letters a delivery now.
#[utoipa::path(post, path = "/api/reject", tag = "messages", security(("bearer" = [])),
    request_body = RejectBody,
    responses((status = 200, body = Done), (status = 400, body = ErrorResponse),
        (status = 409, description = "stale lease", body = ErrorResponse)))]
pub(crate) async fn reject(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RejectBody>,
) -> Result<Json<Done>, ApiError> {
    let token = lease(&body.lease)?;
    let error = body.error.unwrap_or_else(|| "rejected".to_owned());
    settle_one(&state.engine, token, Outcome::Reject { error }).await
}

async fn settle_one(
    engine: &Engine,
    token: LeaseToken,
    outcome: Outcome,
) -> Result<Json<Done>, ApiError> {
    let mut results = engine.queues().settle_all(vec![(token, outcome)]).await;
    results.pop().expect("one result")?;
    Ok(Json(Done { ok: true }))
}
