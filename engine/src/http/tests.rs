//! The API through `app(engine).oneshot(..)`: no socket, an in-memory engine.
//! One `call` helper is the only place that builds requests.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::config::Role;
use crate::http::{Auth, CONTENT_SECURITY_POLICY, app};
use crate::{Config, Engine};

const ADMIN: &str = "admin-token";
const OPERATOR: &str = "operator-token";
const VIEWER: &str = "viewer-token";

async fn server_with(config: Config) -> Router {
    let engine = Engine::open(config).await.expect("engine opens");
    let auth = Auth::none()
        .with_token(ADMIN, Role::Admin)
        .with_token(OPERATOR, Role::Operator)
        .with_token(VIEWER, Role::Viewer);
    app(engine, auth)
}

async fn server() -> Router {
    server_with(Config::default()).await
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
    text: String,
}

impl Answer {
    fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
    fn message(&self) -> &str {
        self.json["error"]["message"].as_str().unwrap_or("")
    }
}

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let raw = body.map(|b| b.to_string());
    call_raw(app, method, path, token, raw).await
}

async fn call_raw(
    app: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let req = match body {
        Some(body) => req
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .body(Body::from(body)),
        None => req.body(Body::empty()),
    }
    .expect("request builds");
    let response = app.clone().oneshot(req).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body reads");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        json,
        text,
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = server().await;
    for (method, path, token) in [
        ("GET", "/healthz", None),
        ("GET", "/", None),
        ("GET", "/api/queues", None),
        ("GET", "/api/nope", Some(ADMIN)),
        ("GET", "/api/queues/missing", Some(ADMIN)),
    ] {
        let answer = call(&app, method, path, token, None).await;
        assert_eq!(
            answer.headers["content-security-policy"], CONTENT_SECURITY_POLICY,
            "{method} {path}"
        );
        assert_eq!(answer.headers["x-content-type-options"], "nosniff");
        assert!(answer.headers.get("access-control-allow-origin").is_none());
    }
}

#[tokio::test]
async fn health_and_the_empty_state_page_are_public() {
    let app = server().await;
    let health = call(&app, "GET", "/healthz", None, None).await;
    assert_eq!(
        (health.status, health.json.clone()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let ready = call(&app, "GET", "/readyz", None, None).await;
    assert_eq!(ready.json, json!({"status": "ready"}));
    let page = call(&app, "GET", "/", None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Switchyard is running"), "{}", page.text);
    let doc = call(&app, "GET", "/api/openapi.json", None, None).await;
    assert_eq!(doc.json["openapi"], "3.1.0");
}

#[tokio::test]
async fn tokens_are_checked_and_roles_ordered() {
    let app = server().await;
    let none = call(&app, "GET", "/api/queues", None, None).await;
    assert_eq!(
        (none.status, none.code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    assert!(
        none.message().contains("missing bearer token"),
        "{}",
        none.message()
    );
    let bad = call(&app, "GET", "/api/queues", Some("nope"), None).await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    assert!(bad.message().contains("wrong token"), "{}", bad.message());
    let low = call(&app, "PUT", "/api/queues/q", Some(VIEWER), Some(json!({}))).await;
    assert_eq!(
        (low.status, low.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    assert!(
        low.message().contains("needs role `admin`"),
        "{}",
        low.message()
    );
    let me = call(&app, "GET", "/api/whoami", Some(OPERATOR), None).await;
    assert_eq!(me.json, json!({"role": "operator"}));
}

#[tokio::test]
async fn declare_is_idempotent_and_names_a_changed_setting() {
    let app = server().await;
    let first = call(
        &app,
        "PUT",
        "/api/queues/orders",
        Some(ADMIN),
        Some(json!({"max_retries": 2})),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.json["name"], "orders");
    assert_eq!(first.json["spec"]["max_retries"], 2);
    let again = call(
        &app,
        "PUT",
        "/api/queues/orders",
        Some(ADMIN),
        Some(json!({"max_retries": 2})),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    let changed = call(
        &app,
        "PUT",
        "/api/queues/orders",
        Some(ADMIN),
        Some(json!({"max_retries": 3})),
    )
    .await;
    assert_eq!(
        (changed.status, changed.code()),
        (StatusCode::CONFLICT, "queue_exists_different")
    );
    assert!(
        changed.message().contains("max_retries"),
        "{}",
        changed.message()
    );
    let invalid = call(
        &app,
        "PUT",
        "/api/queues/bad%20name",
        Some(ADMIN),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (invalid.status, invalid.code()),
        (StatusCode::BAD_REQUEST, "invalid_name")
    );
    let field = call(
        &app,
        "PUT",
        "/api/queues/q2",
        Some(ADMIN),
        Some(json!({"max_retries": "x"})),
    )
    .await;
    assert_eq!(
        (field.status, field.code()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    assert!(
        field.message().contains("max_retries"),
        "{}",
        field.message()
    );
    let listed = call(&app, "GET", "/api/queues", Some(VIEWER), None).await;
    assert_eq!(listed.json["queues"][0]["name"], "orders");
    let deleted = call(&app, "DELETE", "/api/queues/orders", Some(ADMIN), None).await;
    assert_eq!(deleted.json, json!({"deleted_messages": 0}));
    let gone = call(&app, "GET", "/api/queues/orders", Some(VIEWER), None).await;
    assert_eq!(
        (gone.status, gone.code()),
        (StatusCode::NOT_FOUND, "unknown_queue")
    );
    assert!(gone.message().contains("`orders`"), "{}", gone.message());
}

#[tokio::test]
async fn send_peek_receive_ack_and_stale_leases() {
    let app = server().await;
    call(&app, "PUT", "/api/queues/q", Some(ADMIN), Some(json!({}))).await;
    let sent = call(
        &app,
        "POST",
        "/api/queues/q/messages",
        Some(OPERATOR),
        Some(json!({"payload": {"n": 1}, "correlation_id": "c-1", "headers": {"k": "v"}})),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    assert_eq!(sent.json["duplicate"], false);
    let peeked = call(
        &app,
        "GET",
        "/api/queues/q/messages?limit=10",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(peeked.json["messages"][0]["payload"], json!({"n": 1}));
    assert_eq!(peeked.json["messages"][0]["correlation_id"], "c-1");
    let got = call(
        &app,
        "POST",
        "/api/queues/q/receive",
        Some(OPERATOR),
        Some(json!({"max": 5})),
    )
    .await;
    let delivery = &got.json["deliveries"][0];
    assert_eq!(delivery["attempt"], 1);
    assert_eq!(delivery["message"]["headers"]["k"], "v");
    let lease = delivery["lease"].as_str().expect("lease").to_owned();
    let acked = call(
        &app,
        "POST",
        "/api/ack",
        Some(OPERATOR),
        Some(json!({"leases": [lease, "junk"]})),
    )
    .await;
    assert_eq!(acked.json["results"][0]["ok"], true);
    assert_eq!(acked.json["results"][1]["error"]["code"], "invalid_lease");
    let stale = call(
        &app,
        "POST",
        "/api/nack",
        Some(OPERATOR),
        Some(json!({"lease": lease})),
    )
    .await;
    assert_eq!(
        (stale.status, stale.code()),
        (StatusCode::CONFLICT, "stale_lease")
    );
    assert!(stale.message().contains(&lease), "{}", stale.message());
    let empty = call(
        &app,
        "POST",
        "/api/queues/q/receive",
        Some(OPERATOR),
        Some(json!({})),
    )
    .await;
    assert_eq!(empty.json, json!({"deliveries": []}));
    let binary = call(
        &app,
        "POST",
        "/api/queues/q/messages",
        Some(OPERATOR),
        Some(json!({"payload_base64": "AAEC", "content_type": "application/x-bin"})),
    )
    .await;
    assert_eq!(binary.status, StatusCode::OK);
    let peeked = call(&app, "GET", "/api/queues/q/messages", Some(VIEWER), None).await;
    assert_eq!(peeked.json["messages"][0]["payload_base64"], "AAEC");
    assert_eq!(peeked.json["messages"][0]["payload"], Value::Null);
    let stats = call(&app, "GET", "/api/queues/q", Some(VIEWER), None).await;
    assert_eq!(stats.json["stats"]["ready"], 1);
}

#[tokio::test]
async fn limits_answer_with_the_error_format() {
    let mut config = Config::default();
    config.queue.payload_bytes_max = 16;
    config.queue.batch_messages_max = 2;
    config.http.body_bytes_max = 1024;
    let app = server_with(config).await;
    call(
        &app,
        "PUT",
        "/api/queues/q",
        Some(ADMIN),
        Some(json!({"max_length": 1})),
    )
    .await;
    let big = call(
        &app,
        "POST",
        "/api/queues/q/messages",
        Some(OPERATOR),
        Some(json!({"payload": "x".repeat(40)})),
    )
    .await;
    assert_eq!(
        (big.status, big.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    assert!(big.message().contains("at most 16"), "{}", big.message());
    let huge = call(
        &app,
        "POST",
        "/api/queues/q/messages",
        Some(OPERATOR),
        Some(json!({"payload": "x".repeat(4000)})),
    )
    .await;
    assert_eq!(
        (huge.status, huge.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    assert!(
        huge.message()
            .contains("the limit is 1024 (http.body_bytes_max)"),
        "{}",
        huge.message()
    );
    let batch = call(
        &app,
        "POST",
        "/api/queues/q/batch",
        Some(OPERATOR),
        Some(json!({"messages": [{"payload": 1}, {"payload": 2}, {"payload": 3}]})),
    )
    .await;
    assert_eq!(
        (batch.status, batch.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large")
    );
    let full = call(
        &app,
        "POST",
        "/api/queues/q/batch",
        Some(OPERATOR),
        Some(json!({"messages": [{"payload": 1}, {"payload": 2}]})),
    )
    .await;
    assert_eq!(
        (full.status, full.code()),
        (StatusCode::CONFLICT, "queue_full")
    );
    let stats = call(&app, "GET", "/api/queues/q", Some(VIEWER), None).await;
    assert_eq!(
        stats.json["stats"]["ready"], 0,
        "a refused batch stores nothing"
    );
    let malformed = call_raw(
        &app,
        "POST",
        "/api/queues/q/messages",
        Some(OPERATOR),
        Some("{".to_owned()),
    )
    .await;
    assert_eq!(
        (malformed.status, malformed.code()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let missing = call(
        &app,
        "POST",
        "/api/queues/q/messages",
        Some(OPERATOR),
        Some(json!({})),
    )
    .await;
    assert!(
        missing.message().contains("payload"),
        "{}",
        missing.message()
    );
    let bad_trace = call(
        &app,
        "POST",
        "/api/queues/q/messages",
        Some(OPERATOR),
        Some(json!({"payload": 1, "traceparent": "00-abc-01"})),
    )
    .await;
    assert_eq!(
        (bad_trace.status, bad_trace.code()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    assert!(
        bad_trace.message().contains("`traceparent`")
            && bad_trace.message().contains("\"00-abc-01\""),
        "{}",
        bad_trace.message()
    );
    let traced = call(
        &app,
        "POST",
        "/api/queues/q/messages",
        Some(OPERATOR),
        Some(json!({
            "payload": 1,
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        })),
    )
    .await;
    assert_eq!(traced.status, StatusCode::OK, "{:?}", traced.json);
    let unknown = call(
        &app,
        "POST",
        "/api/queues/nope/messages",
        Some(OPERATOR),
        Some(json!({"payload": 1})),
    )
    .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::NOT_FOUND, "unknown_queue")
    );
}

#[tokio::test]
async fn dead_letters_list_preview_retry_move_and_purge() {
    let app = server().await;
    call(
        &app,
        "PUT",
        "/api/queues/work",
        Some(ADMIN),
        Some(json!({"dead_letter_queue": "work.dlq"})),
    )
    .await;
    call(
        &app,
        "PUT",
        "/api/queues/other",
        Some(ADMIN),
        Some(json!({})),
    )
    .await;
    let batch: Vec<Value> = (0..3).map(|i| json!({"payload": i})).collect();
    call(
        &app,
        "POST",
        "/api/queues/work/batch",
        Some(OPERATOR),
        Some(json!({"messages": batch})),
    )
    .await;
    let got = call(
        &app,
        "POST",
        "/api/queues/work/receive",
        Some(OPERATOR),
        Some(json!({"max": 3})),
    )
    .await;
    for d in got.json["deliveries"].as_array().expect("deliveries") {
        let r = call(
            &app,
            "POST",
            "/api/reject",
            Some(OPERATOR),
            Some(json!({"lease": d["lease"], "error": "bad card"})),
        )
        .await;
        assert_eq!(r.json, json!({"ok": true}));
    }
    for name in ["work", "work.dlq"] {
        let listed = call(
            &app,
            "GET",
            &format!("/api/queues/{name}/dead-letters?reason=rejected&limit=2"),
            Some(VIEWER),
            None,
        )
        .await;
        assert_eq!(listed.json["total"], 3, "{name}: {}", listed.text);
        assert_eq!(
            listed.json["dead_letters"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(listed.json["dead_letters"][0]["reason"], "rejected");
        assert_eq!(listed.json["dead_letters"][0]["original_queue"], "work");
        assert_eq!(listed.json["dead_letters"][0]["last_error"], "bad card");
    }
    let preview = call(
        &app,
        "POST",
        "/api/queues/work/dead-letters/retry",
        Some(OPERATOR),
        Some(json!({"dry_run": true})),
    )
    .await;
    assert_eq!(preview.json, json!({"count": 3}));
    let first_id = call(
        &app,
        "GET",
        "/api/queues/work/dead-letters",
        Some(VIEWER),
        None,
    )
    .await
    .json["dead_letters"][0]["message"]["id"]
        .clone();
    let retried = call(
        &app,
        "POST",
        "/api/queues/work/dead-letters/retry",
        Some(OPERATOR),
        Some(json!({"ids": [first_id]})),
    )
    .await;
    assert_eq!(retried.json, json!({"count": 1}));
    let moved = call(
        &app,
        "POST",
        "/api/queues/work.dlq/dead-letters/move",
        Some(OPERATOR),
        Some(json!({"to": "other", "reason": "rejected", "ids": null})),
    )
    .await;
    assert_eq!(moved.json, json!({"count": 2}), "{}", moved.text);
    let purged = call(
        &app,
        "POST",
        "/api/queues/work/dead-letters/purge",
        Some(OPERATOR),
        Some(json!({})),
    )
    .await;
    assert_eq!(purged.json, json!({"count": 0}));
    let bad_id = call(
        &app,
        "POST",
        "/api/queues/work/dead-letters/purge",
        Some(OPERATOR),
        Some(json!({"ids": ["x"]})),
    )
    .await;
    assert_eq!(bad_id.code(), "invalid_request");
    assert!(bad_id.message().contains("ids[0]"), "{}", bad_id.message());
    let stats = call(&app, "GET", "/api/queues/other", Some(VIEWER), None).await;
    assert_eq!(stats.json["stats"]["ready"], 2);
}

#[tokio::test]
async fn nack_retries_after_its_delay_and_metrics_show_the_queue() {
    let app = server().await;
    call(&app, "PUT", "/api/queues/q", Some(ADMIN), Some(json!({}))).await;
    call(
        &app,
        "POST",
        "/api/queues/q/messages",
        Some(OPERATOR),
        Some(json!({"payload": 1})),
    )
    .await;
    let got = call(
        &app,
        "POST",
        "/api/queues/q/receive",
        Some(OPERATOR),
        Some(json!({})),
    )
    .await;
    let lease = got.json["deliveries"][0]["lease"].clone();
    let nacked = call(
        &app,
        "POST",
        "/api/nack",
        Some(OPERATOR),
        Some(json!({"lease": lease, "delay_ms": 3_600_000})),
    )
    .await;
    assert_eq!(nacked.json, json!({"ok": true}));
    let stats = call(&app, "GET", "/api/queues/q", Some(VIEWER), None).await;
    assert_eq!(stats.json["stats"]["scheduled"], 1);
    let metrics = call(&app, "GET", "/metrics", Some(VIEWER), None).await;
    assert!(
        metrics
            .text
            .contains("switchyard_queue_scheduled{queue=\"q\"} 1"),
        "{}",
        metrics.text
    );
    let overview = call(&app, "GET", "/api/overview", Some(VIEWER), None).await;
    assert_eq!(overview.json["totals"]["scheduled"], 1);
    let config = call(&app, "GET", "/api/config", Some(ADMIN), None).await;
    assert_eq!(config.json["http"]["listen"], "127.0.0.1:7600");
}

#[tokio::test]
async fn every_route_has_an_access_rule_and_every_rule_a_route() {
    let doc: Value = serde_json::from_str(&crate::http::openapi_json()).expect("json");
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    for (method, path) in &documented {
        assert!(
            crate::http::auth::access(&method.parse().expect("method"), path).is_some(),
            "{method} {path} has no row in http::auth::ROUTES"
        );
    }
    for (method, path, _) in crate::http::ROUTES {
        assert!(
            documented.contains(&(method.to_string(), path.to_string())),
            "ROUTES row {method} {path} has no documented route"
        );
    }
}

#[tokio::test]
async fn the_stream_sends_an_overview_then_feed_events_and_takes_a_query_token() {
    use http_body_util::BodyExt;
    let app = server().await;
    call(&app, "PUT", "/api/queues/q", Some(ADMIN), Some(json!({}))).await;
    let req = Request::builder()
        .uri(format!("/api/stream?access_token={VIEWER}"))
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(req).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut text = String::new();
    while !text.contains("event: overview") {
        let frame = body.frame().await.expect("open").expect("frame");
        text.push_str(&String::from_utf8_lossy(frame.data_ref().expect("data")));
    }
    call(
        &app,
        "POST",
        "/api/queues/q/messages",
        Some(OPERATOR),
        Some(json!({"payload": 1})),
    )
    .await;
    while !text.contains("event: feed") {
        let frame = body.frame().await.expect("open").expect("frame");
        text.push_str(&String::from_utf8_lossy(frame.data_ref().expect("data")));
    }
    assert!(text.contains(r#""kind":"sent""#), "{text}");
    // The query token is only for streams.
    let other = call(
        &app,
        "GET",
        &format!("/api/queues?access_token={VIEWER}"),
        None,
        None,
    )
    .await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn slow_requests_and_large_headers_are_refused_and_cors_is_opt_in() {
    let mut config = Config::default();
    config.http.request_timeout_ms = 20;
    config.http.header_bytes_max = 256;
    config.http.cors_origins = vec!["https://console.example".to_owned()];
    let app = server_with(config).await;
    call(&app, "PUT", "/api/queues/q", Some(ADMIN), Some(json!({}))).await;
    let slow = call(
        &app,
        "POST",
        "/api/queues/q/receive",
        Some(OPERATOR),
        Some(json!({"wait_ms": 5000})),
    )
    .await;
    assert_eq!(
        (slow.status, slow.code()),
        (StatusCode::REQUEST_TIMEOUT, "timeout")
    );
    assert!(slow.message().contains("20 ms"), "{}", slow.message());
    let req = Request::builder()
        .uri("/healthz")
        .header("x-big", "x".repeat(300))
        .body(Body::empty())
        .expect("request");
    let big = app.clone().oneshot(req).await.expect("infallible");
    assert_eq!(big.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let req = Request::builder()
        .uri("/healthz")
        .header("origin", "https://console.example")
        .body(Body::empty())
        .expect("request");
    let cors = app.clone().oneshot(req).await.expect("infallible");
    assert_eq!(
        cors.headers()["access-control-allow-origin"],
        "https://console.example"
    );
    let req = Request::builder()
        .uri("/healthz")
        .header("origin", "https://evil.example")
        .body(Body::empty())
        .expect("request");
    let evil = app.clone().oneshot(req).await.expect("infallible");
    assert!(evil.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn head_follows_get_and_a_wrong_method_names_the_right_ones() {
    let app = server().await;
    let head = call(&app, "HEAD", "/healthz", None, None).await;
    assert_eq!(head.status, StatusCode::OK);
    let wrong = call(&app, "POST", "/api/queues", Some(ADMIN), Some(json!({}))).await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    assert!(wrong.message().contains("takes GET"), "{}", wrong.message());
}
