//! `GET /metrics`: Prometheus text built from each queue's statistics.
//!
//! Deliberately minimal and kept in its own file: the telemetry module will
//! replace it with the engine's full metrics.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::http::AppState;
use crate::http::dto::ErrorResponse;
use crate::http::error::ApiError;

/// Per-queue gauges in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "health", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, body = ErrorResponse)))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let gauges: [(&str, &str); 6] = [
        ("ready", "Messages deliverable now."),
        ("in_flight", "Messages leased to consumers."),
        (
            "scheduled",
            "Messages waiting for a retry or a delayed delivery.",
        ),
        ("dead_lettered", "Dead letters that came from the queue."),
        ("consumers", "Push consumers attached."),
        (
            "oldest_age_seconds",
            "Age of the oldest unacknowledged message.",
        ),
    ];
    let mut rows: Vec<(String, [f64; 6])> = Vec::new();
    for info in state.engine.queues().list() {
        let Ok(s) = state.engine.queues().stats(&info.spec.name).await else {
            continue;
        };
        rows.push((
            info.spec.name.clone(),
            [
                s.ready as f64,
                s.in_flight as f64,
                s.scheduled as f64,
                s.dead_lettered as f64,
                s.n_consumers as f64,
                s.oldest_age_ms.unwrap_or(0) as f64 / 1000.0,
            ],
        ));
    }
    let mut text = String::new();
    for (i, (name, help)) in gauges.iter().enumerate() {
        let _ = writeln!(text, "# HELP switchyard_queue_{name} {help}");
        let _ = writeln!(text, "# TYPE switchyard_queue_{name} gauge");
        for (queue, values) in &rows {
            let _ = writeln!(
                text,
                "switchyard_queue_{name}{{queue=\"{}\"}} {}",
                escape(queue),
                values[i]
            );
        }
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
