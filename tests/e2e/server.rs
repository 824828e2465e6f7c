//! `switchyard serve` as a real process on port 0: every route through the
//! auth matrix, the WebSocket consumer, the CLI client commands, generated
//! tokens, the loopback rule, `--demo`, and graceful shutdown on SIGTERM.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use switchyard::client::Client;
use switchyard::http::dto::{ConsumeStart, QueueSpec, ReceiveBody, SendBody};
use switchyard_e2e::{ADMIN_TOKEN, OPERATOR_TOKEN, Server, VIEWER_TOKEN, repo_root};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_switchyard-under-test"))
}

fn client(server: &Server, token: &str) -> Client {
    Client::new(server.url.clone(), Some(token.to_owned()))
}

/// The checked-in table: `(method, path) -> [none, bad, viewer, operator, admin]`.
fn auth_matrix() -> Vec<(String, String, [bool; 5])> {
    let text = std::fs::read_to_string(repo_root().join("tests/e2e/auth_matrix.txt"))
        .expect("read auth_matrix.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words.len(), 7, "auth_matrix.txt: malformed row `{line}`");
            let allow = |w: &str| match w {
                "allow" => true,
                "deny" => false,
                other => panic!("auth_matrix.txt: `{other}` is neither allow nor deny"),
            };
            let cells = [
                allow(words[2]),
                allow(words[3]),
                allow(words[4]),
                allow(words[5]),
                allow(words[6]),
            ];
            (words[0].to_owned(), words[1].to_owned(), cells)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_each_identity_as_the_auth_matrix_says() {
    let _alone = switchyard_e2e::HEAVY.lock().await;
    let server = Server::start(bin(), &[]);
    let admin = client(&server, ADMIN_TOKEN);
    let doc: Value = serde_json::from_str(
        &admin
            .raw("GET", "/api/openapi.json", None)
            .await
            .expect("doc")
            .1,
    )
    .expect("json");
    let matrix = auth_matrix();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    for (method, path) in &documented {
        assert!(
            matrix.iter().any(|(m, p, _)| m == method && p == path),
            "{method} {path} is in the OpenAPI document but has no row in tests/e2e/auth_matrix.txt"
        );
    }
    for (method, path, _) in &matrix {
        assert!(
            documented.contains(&(method.clone(), path.clone())),
            "auth_matrix.txt row {method} {path} names no documented route"
        );
    }
    let identities: [(&str, Option<&str>); 5] = [
        ("none", None),
        ("bad", Some("not-a-token")),
        ("viewer", Some(VIEWER_TOKEN)),
        ("operator", Some(OPERATOR_TOKEN)),
        ("admin", Some(ADMIN_TOKEN)),
    ];
    for (method, path, cells) in &matrix {
        for ((who, token), allowed) in identities.iter().zip(cells) {
            // A fresh queue per call, so a DELETE or PUT leaves the next one intact.
            admin
                .declare("matrix", &QueueSpec::default())
                .await
                .expect("declare");
            let caller = Client::new(server.url.clone(), token.map(str::to_owned));
            let body = (*method != "GET" && *method != "DELETE").then(|| "{}".to_owned());
            let (status, text) = caller
                .raw(
                    method,
                    &path
                        .replace("{name}", "matrix")
                        .replace("{id}", "0190c1d2-0000-7000-8000-000000000000"),
                    body,
                )
                .await
                .expect("call");
            let denied = status == 401 || status == 403;
            assert_eq!(
                !denied, *allowed,
                "{method} {path} as {who}: HTTP {status} {text}"
            );
            if denied {
                let code = if token.is_none() || *who == "bad" {
                    "unauthorized"
                } else {
                    "forbidden"
                };
                assert!(text.contains(code), "{method} {path} as {who}: {text}");
            }
        }
    }
}

#[test]
fn the_checked_in_openapi_document_is_current() {
    // UPDATE_OPENAPI=1 rewrites ui/src/api/openapi.json from the code.
    let generated = switchyard::http::openapi_json();
    let file = repo_root().join("ui/src/api/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, &generated).expect("write openapi.json");
    }
    let checked_in = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is stale: run `UPDATE_OPENAPI=1 cargo test -p switchyard-e2e --test e2e openapi` and commit it",
        file.display()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_consumer_gets_at_most_prefetch_and_its_acks_are_confirmed() {
    let _alone = switchyard_e2e::HEAVY.lock().await;
    let server = Server::start(bin(), &[]);
    let admin = client(&server, ADMIN_TOKEN);
    admin
        .declare("ws", &QueueSpec::default())
        .await
        .expect("declare");
    let batch = (0..50).map(|i| SendBody::json(json!({"n": i}))).collect();
    admin.send_batch("ws", batch).await.expect("send");
    let mut consumer = client(&server, OPERATOR_TOKEN)
        .consume(
            "ws",
            &ConsumeStart {
                prefetch: 8,
                ..ConsumeStart::default()
            },
        )
        .await
        .expect("consume");
    let mut unsettled = BTreeSet::new();
    let mut seen = BTreeSet::new();
    while seen.len() < 50 {
        let frame = consumer.next().await.expect("frame").expect("open");
        assert!(frame.error.is_none(), "{:?}", frame.error);
        for lease in &frame.settled {
            assert!(
                unsettled.remove(lease),
                "confirmed a lease we did not hold: {lease}"
            );
        }
        for d in &frame.deliveries {
            seen.insert(d.message.id.clone());
            unsettled.insert(d.lease.clone());
        }
        assert!(
            unsettled.len() <= 8,
            "{} deliveries unsettled with prefetch 8",
            unsettled.len()
        );
        if !frame.deliveries.is_empty() {
            consumer
                .ack(frame.deliveries.iter().map(|d| d.lease.clone()).collect())
                .await
                .expect("ack");
        }
    }
    while !unsettled.is_empty() {
        let frame = consumer.next().await.expect("frame").expect("open");
        for lease in &frame.settled {
            unsettled.remove(lease);
        }
        assert!(frame.failed.is_empty(), "{:?}", frame.failed);
    }
    consumer.close().await.expect("close");
    let stats = admin.queue("ws").await.expect("stats").stats;
    assert_eq!((stats.ready, stats.in_flight), (0, 0));
    // A stale ack over the socket is reported, not fatal.
    admin
        .send("ws", &SendBody::json(json!(1)))
        .await
        .expect("send");
    let mut consumer = client(&server, OPERATOR_TOKEN)
        .consume(
            "ws",
            &ConsumeStart {
                prefetch: 1,
                ..ConsumeStart::default()
            },
        )
        .await
        .expect("consume");
    let frame = consumer.next().await.expect("frame").expect("open");
    let lease = frame.deliveries[0].lease.clone();
    consumer
        .ack(vec![lease.clone(), lease.clone()])
        .await
        .expect("ack");
    let frame = consumer.next().await.expect("frame").expect("open");
    assert_eq!(frame.settled, vec![lease]);
    assert_eq!(
        frame.failed[0].error.as_ref().expect("error").code,
        "stale_lease"
    );
    let unknown = client(&server, OPERATOR_TOKEN)
        .consume(
            "nope",
            &ConsumeStart {
                prefetch: 1,
                ..ConsumeStart::default()
            },
        )
        .await
        .err()
        .expect("unknown queue fails");
    assert_eq!(unknown.code(), Some("unknown_queue"));
}

#[tokio::test(flavor = "multi_thread")]
async fn acks_in_flight_at_sigterm_are_kept() {
    let _alone = switchyard_e2e::HEAVY.lock().await;
    let server = Server::start(bin(), &[]);
    let operator = client(&server, OPERATOR_TOKEN);
    client(&server, ADMIN_TOKEN)
        .declare("drain", &QueueSpec::default())
        .await
        .expect("declare");
    let n = 200;
    let batch = (0..n).map(|i| SendBody::json(json!(i))).collect();
    operator.send_batch("drain", batch).await.expect("send");
    let deliveries = operator
        .receive(
            "drain",
            &ReceiveBody {
                max: n,
                ..ReceiveBody::default()
            },
        )
        .await
        .expect("receive")
        .deliveries;
    assert_eq!(deliveries.len(), n as usize);
    // Ack one lease per request, all at once, and SIGTERM while they run.
    let acks: Vec<_> = deliveries
        .iter()
        .map(|d| {
            let operator = operator.clone();
            let lease = d.lease.clone();
            tokio::spawn(async move { operator.ack(vec![lease]).await })
        })
        .collect();
    tokio::task::yield_now().await;
    let stopped = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .expect("terminate");
    assert!(
        stopped.status.success(),
        "server exit: {}; {:?}",
        stopped.status,
        stopped.lines
    );
    assert!(
        stopped
            .lines
            .iter()
            .any(|l| l.contains("storage closed cleanly")),
        "{:?}",
        stopped.lines
    );
    let mut n_acked = 0u64;
    for ack in acks {
        if let Ok(Ok(results)) = ack.await {
            n_acked += results.results.iter().filter(|r| r.ok).count() as u64;
        }
    }
    let server = Server::start_in(bin(), stopped.data_dir, &[], true);
    let stats = client(&server, VIEWER_TOKEN)
        .queue("drain")
        .await
        .expect("stats")
        .stats;
    let remaining = stats.ready + stats.in_flight + stats.scheduled;
    assert!(
        remaining + n_acked <= u64::from(n),
        "{n_acked} acks were confirmed but {remaining} of {n} messages remain after restart"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_admin_token_is_printed_once_and_kept_hashed() {
    let _alone = switchyard_e2e::HEAVY.lock().await;
    let server = Server::start_in(bin(), tempfile::tempdir().expect("tmp"), &[], false);
    let line = server
        .startup_lines
        .iter()
        .find(|l| l.contains("generated admin token"))
        .expect("the token is printed on first start")
        .clone();
    let token = line.rsplit(' ').next().expect("token").to_owned();
    let admin = Client::new(server.url.clone(), Some(token.clone()));
    assert_eq!(
        admin.whoami().await.expect("whoami").role,
        switchyard::http::dto::RoleDto::Admin
    );
    let stopped = server.terminate();
    let digest = std::fs::read_to_string(stopped.data_dir.path().join("data/admin-token.sha256"))
        .expect("digest file");
    assert!(!digest.contains(&token), "the token itself is not stored");
    let server = Server::start_in(bin(), stopped.data_dir, &[], false);
    assert!(
        !server.startup_lines.iter().any(|l| l.contains(&token)),
        "printed only once: {:?}",
        server.startup_lines
    );
    let admin = Client::new(server.url.clone(), Some(token));
    assert!(admin.whoami().await.is_ok());
    let anonymous = Client::new(server.url.clone(), None);
    assert_eq!(
        anonymous
            .whoami()
            .await
            .err()
            .and_then(|e| e.code().map(str::to_owned))
            .as_deref(),
        Some("unauthorized")
    );
}

#[test]
fn refuses_a_public_address_without_configured_tokens() {
    let dir = tempfile::tempdir().expect("tmp");
    let output = Command::new(bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("SWITCHYARD_ADMIN_TOKEN")
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_runs_against_the_served_engine() {
    let _alone = switchyard_e2e::HEAVY.lock().await;
    let server = Server::start(bin(), &["--demo"]);
    let names: Vec<String> = client(&server, VIEWER_TOKEN)
        .queues()
        .await
        .expect("queues")
        .queues
        .into_iter()
        .map(|q| q.name)
        .collect();
    for queue in ["orders", "payments", "shipping", "orders.dlq"] {
        assert!(
            names.iter().any(|n| n == queue),
            "{queue} missing from {names:?}"
        );
    }
}

fn cli(server: &Server, args: &[&str]) -> String {
    let output = Command::new(bin())
        .args(args)
        .env("SWITCHYARD_URL", &server.url)
        .env("SWITCHYARD_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("run cli");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_client_commands_talk_to_the_server() {
    let _alone = switchyard_e2e::HEAVY.lock().await;
    let server = Server::start(bin(), &[]);
    assert_eq!(
        cli(
            &server,
            &[
                "queues",
                "declare",
                "jobs",
                "--dead-letter-queue",
                "jobs.dlq"
            ]
        ),
        "declared: jobs\n"
    );
    assert!(cli(&server, &["queues", "send", "jobs", r#"{"job": 1}"#]).starts_with("sent "));
    let peek = cli(&server, &["queues", "peek", "jobs"]);
    assert!(peek.contains(r#"{"job":1}"#), "{peek}");
    let list = cli(&server, &["queues", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("jobs ") && l.contains(" 1 ")),
        "{list}"
    );
    let stats: Value =
        serde_json::from_str(&cli(&server, &["queues", "stats", "jobs", "--json"])).expect("json");
    assert_eq!(stats[0]["stats"]["ready"], 1);
    let operator = client(&server, OPERATOR_TOKEN);
    let d = operator
        .receive("jobs", &ReceiveBody::default())
        .await
        .expect("receive")
        .deliveries;
    operator
        .reject(&switchyard::http::dto::RejectBody {
            lease: d[0].lease.clone(),
            error: Some("broken".to_owned()),
        })
        .await
        .expect("reject");
    let dead = cli(&server, &["dead-letters", "list", "jobs"]);
    assert!(
        dead.contains("rejected") && dead.contains("broken"),
        "{dead}"
    );
    assert_eq!(
        cli(&server, &["dead-letters", "retry", "jobs", "--dry-run"]),
        "would retry 1 dead letter(s)\n"
    );
    assert_eq!(
        cli(&server, &["dead-letters", "retry", "jobs"]),
        "retried 1 dead letter(s)\n"
    );
    assert_eq!(
        cli(
            &server,
            &["dead-letters", "purge", "jobs", "--reason", "rejected"]
        ),
        "purged 0 dead letter(s)\n"
    );
    let output = Command::new(bin())
        .args(["queues", "list", "--url", &server.url, "--token", "wrong"])
        .env_remove("SWITCHYARD_TOKEN")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("wrong token"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_consumer_settles_what_it_holds_while_the_server_drains() {
    let _alone = switchyard_e2e::HEAVY.lock().await;
    let server = Server::start(bin(), &[]);
    client(&server, ADMIN_TOKEN)
        .declare("held", &QueueSpec::default())
        .await
        .expect("declare");
    let batch = (0..10).map(|i| SendBody::json(json!(i))).collect();
    client(&server, OPERATOR_TOKEN)
        .send_batch("held", batch)
        .await
        .expect("send");
    let mut consumer = client(&server, OPERATOR_TOKEN)
        .consume(
            "held",
            &ConsumeStart {
                prefetch: 10,
                ..ConsumeStart::default()
            },
        )
        .await
        .expect("consume");
    let mut held = Vec::new();
    while held.len() < 10 {
        let frame = consumer.next().await.expect("frame").expect("open");
        held.extend(frame.deliveries.into_iter().map(|d| d.lease));
    }
    let pid = server.pid();
    let stopping = tokio::task::spawn_blocking(move || server.terminate());
    // The server says it is draining, then still confirms the acks it gets.
    loop {
        let frame = consumer
            .next()
            .await
            .expect("frame")
            .expect("open while draining");
        if frame.draining {
            break;
        }
    }
    consumer.ack(held.clone()).await.expect("ack");
    let mut confirmed = Vec::new();
    while let Some(frame) = consumer.next().await.expect("frame") {
        confirmed.extend(frame.settled);
    }
    assert_eq!(confirmed.len(), 10, "server {pid} confirmed {confirmed:?}");
    let stopped = stopping.await.expect("terminate");
    assert!(stopped.status.success(), "{:?}", stopped.lines);
    let server = Server::start_in(bin(), stopped.data_dir, &[], true);
    let stats = client(&server, VIEWER_TOKEN)
        .queue("held")
        .await
        .expect("stats")
        .stats;
    assert_eq!((stats.ready, stats.in_flight, stats.scheduled), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flow_is_drawn_over_http_and_in_the_terminal() {
    let server = Server::start(bin(), &[]);
    client(&server, ADMIN_TOKEN)
        .declare("flowq", &QueueSpec::default())
        .await
        .expect("declare");
    let operator = client(&server, OPERATOR_TOKEN);
    let sent = operator
        .send(
            "flowq",
            &SendBody {
                correlation_id: Some("order 77/éa".to_owned()),
                ..SendBody::json(json!({"order": 77}))
            },
        )
        .await
        .expect("send");
    let d = operator
        .receive("flowq", &ReceiveBody::default())
        .await
        .expect("receive")
        .deliveries;
    operator.ack(vec![d[0].lease.clone()]).await.expect("ack");
    // Spans reach the store in batches (every 200 ms by default).
    let viewer = client(&server, VIEWER_TOKEN);
    let mut flow = None;
    for _ in 0..100 {
        let f = viewer.flow(&sent.id).await;
        if let Ok(f) = f
            && f.timeline.iter().any(|s| s.name == "ack flowq")
        {
            flow = Some(f);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let flow = flow.expect("the ack span arrives within 5 s");
    assert_eq!(flow.query.kind, "message");
    assert_eq!(flow.correlation_ids, vec!["order 77/éa".to_owned()]);
    let names: BTreeSet<&str> = flow.timeline.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["send flowq", "receive flowq", "ack flowq"])
    );
    let edge = flow
        .edges
        .iter()
        .find(|e| e.from == "queue:flowq" && e.to == "handler:flowq")
        .expect("delivery edge");
    assert_eq!(edge.outcomes.get("acked"), Some(&1));
    // The same flow by correlation id (any text, percent-encoded by the client).
    let by_correlation = viewer.flow("order 77/éa").await.expect("lookup");
    assert_eq!(by_correlation.query.kind, "correlation");
    assert_eq!(by_correlation.timeline.len(), 3);
    let unknown = viewer.flow("nothing-here").await.expect_err("404");
    assert_eq!(unknown.code(), Some("not_found"));
    let bad_trace = viewer
        .raw("GET", "/api/flows/trace/xyz", None)
        .await
        .expect("raw");
    assert_eq!(bad_trace.0, 400, "{}", bad_trace.1);
    // In the terminal: a tree, the ack under the delivery under the send.
    let tree = cli(&server, &["flows", "show", &sent.id]);
    let lines: Vec<&str> = tree.lines().collect();
    let at = |name: &str| {
        lines
            .iter()
            .position(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("`{name}` in\n{tree}"))
    };
    let indent = |i: usize| lines[i].len() - lines[i].trim_start().len();
    let (send, receive, ack) = (at("send flowq"), at("receive flowq #1"), at("ack flowq"));
    assert!(send < receive && receive < ack, "{tree}");
    assert!(
        indent(send) < indent(receive) && indent(receive) < indent(ack),
        "{tree}"
    );
    assert!(lines[receive].contains("-> acked"), "{tree}");
    let recent = cli(&server, &["flows", "list"]);
    assert!(recent.contains("order 77/éa"), "{recent}");
}
