//! Client commands that talk to a running server through
//! [`crate::client::Client`]: `queues list|declare|send|peek|stats` and
//! `dead-letters list|retry|purge`. Human tables by default, `--json` for
//! the API's JSON. (`flows show` joins them with the flows API.)

use std::io::Read;

use anyhow::Context;
use serde::Serialize;

use crate::client::Client;
use crate::http::dto::{DeadLetterAction, DeadReasonDto, QueueSpec, QueueSummary, SendBody};

/// Where the server is and how to call it.
#[derive(Debug, clap::Args)]
pub(super) struct Remote {
    /// The server's base URL.
    #[arg(
        long,
        env = "SWITCHYARD_URL",
        default_value = "http://127.0.0.1:7600",
        global = true
    )]
    url: String,
    /// Bearer token.
    #[arg(long, env = "SWITCHYARD_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

impl Remote {
    fn client(&self) -> Client {
        Client::new(self.url.clone(), self.token.clone())
    }
}

#[derive(Debug, clap::Args)]
pub(super) struct QueuesArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: QueuesCommand,
}

#[derive(Debug, clap::Subcommand)]
enum QueuesCommand {
    /// Every queue with its counts.
    List,
    /// Declare a queue (or confirm one with the same settings).
    Declare {
        /// Queue name.
        name: String,
        /// Dead-letter queue (declared when missing).
        #[arg(long)]
        dead_letter_queue: Option<String>,
        /// Retries before dead-lettering.
        #[arg(long)]
        max_retries: Option<u32>,
        /// Message time to live in ms.
        #[arg(long)]
        message_ttl_ms: Option<u64>,
        /// Most messages waiting or in flight.
        #[arg(long)]
        max_length: Option<u64>,
        /// Keep in memory only.
        #[arg(long)]
        transient: bool,
    },
    /// Send one message: JSON from the argument, or stdin when absent.
    Send {
        /// Queue name.
        name: String,
        /// JSON payload (a non-JSON argument is sent as a JSON string).
        payload: Option<String>,
        /// Correlation id.
        #[arg(long)]
        correlation_id: Option<String>,
        /// Idempotency key.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Header `name=value` (repeatable).
        #[arg(long = "header", value_parser = parse_header)]
        headers: Vec<(String, String)>,
    },
    /// Show waiting messages without consuming them.
    Peek {
        /// Queue name.
        name: String,
        /// Most messages.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Counts of one queue, or of all.
    Stats {
        /// Queue name (all when absent).
        name: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub(super) struct DeadLettersArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: DeadLettersCommand,
}

/// Which dead letters an action touches.
#[derive(Debug, clap::Args)]
struct Selection {
    /// Queue (its DLQ's letters, or a DLQ's own).
    queue: String,
    /// Only this message id (repeatable).
    #[arg(long = "id")]
    ids: Vec<String>,
    /// Only this reason: rejected, max_retries, expired, overflow.
    #[arg(long, value_parser = parse_reason)]
    reason: Option<DeadReasonDto>,
    /// Count what would change, change nothing.
    #[arg(long)]
    dry_run: bool,
}

impl Selection {
    fn action(&self) -> DeadLetterAction {
        DeadLetterAction {
            ids: (!self.ids.is_empty()).then(|| self.ids.clone()),
            reason: self.reason,
            dry_run: self.dry_run,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum DeadLettersCommand {
    /// List a queue's dead letters.
    List {
        /// Queue name.
        queue: String,
        /// Only this reason: rejected, max_retries, expired, overflow.
        #[arg(long, value_parser = parse_reason)]
        reason: Option<DeadReasonDto>,
        /// Most to list.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Put dead letters back into the queues they came from.
    Retry(Selection),
    /// Delete dead letters for good.
    Purge(Selection),
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not name=value"))
}

fn parse_reason(text: &str) -> Result<DeadReasonDto, String> {
    serde_json::from_value(serde_json::Value::String(text.replace('-', "_")))
        .map_err(|_| format!("`{text}` is not one of rejected, max_retries, expired, overflow"))
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn print_queues(queues: &[QueueSummary]) {
    println!(
        "{:<24} {:>8} {:>9} {:>9} {:>13} {:>9} {:>11}",
        "queue", "ready", "in flight", "scheduled", "dead-lettered", "consumers", "oldest (ms)"
    );
    for q in queues {
        let oldest = q
            .stats
            .oldest_age_ms
            .map(|ms| ms.to_string())
            .unwrap_or_else(|| "-".to_owned());
        println!(
            "{:<24} {:>8} {:>9} {:>9} {:>13} {:>9} {:>11}",
            q.name,
            q.stats.ready,
            q.stats.in_flight,
            q.stats.scheduled,
            q.stats.dead_lettered,
            q.consumers,
            oldest
        );
    }
}

pub(super) async fn queues(args: QueuesArgs) -> anyhow::Result<()> {
    let client = args.remote.client();
    let json = args.remote.json;
    match args.command {
        QueuesCommand::List => {
            let list = client.queues().await?;
            if json {
                return print_json(&list);
            }
            print_queues(&list.queues);
        }
        QueuesCommand::Declare {
            name,
            dead_letter_queue,
            max_retries,
            message_ttl_ms,
            max_length,
            transient,
        } => {
            let spec = QueueSpec {
                durable: !transient,
                dead_letter_queue,
                max_retries,
                message_ttl_ms,
                max_length,
                ..QueueSpec::default()
            };
            let (summary, created) = client.declare(&name, &spec).await?;
            if json {
                return print_json(&summary);
            }
            let verb = if created {
                "declared"
            } else {
                "already declared"
            };
            println!("{verb}: {name}");
        }
        QueuesCommand::Send {
            name,
            payload,
            correlation_id,
            idempotency_key,
            headers,
        } => {
            let text = match payload {
                Some(text) => text,
                None => {
                    let mut text = String::new();
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .context("cannot read the payload from stdin")?;
                    text
                }
            };
            let value = serde_json::from_str(&text)
                .unwrap_or_else(|_| serde_json::Value::String(text.trim_end().to_owned()));
            let body = SendBody {
                correlation_id,
                idempotency_key,
                headers: headers.into_iter().collect(),
                ..SendBody::json(value)
            };
            let sent = client.send(&name, &body).await?;
            if json {
                return print_json(&sent);
            }
            let note = if sent.duplicate { " (duplicate)" } else { "" };
            println!("sent {}{note}", sent.id);
        }
        QueuesCommand::Peek { name, limit } => {
            let list = client.peek(&name, limit).await?;
            if json {
                return print_json(&list);
            }
            println!(
                "{:<36} {:>8} {:<24} payload",
                "id", "attempts", "correlation"
            );
            for m in &list.messages {
                let payload = match &m.payload_base64 {
                    Some(b64) => format!("<{} base64: {b64}>", m.content_type),
                    None => m.payload.to_string(),
                };
                println!(
                    "{:<36} {:>8} {:<24} {}",
                    m.id, m.attempts, m.correlation_id, payload
                );
            }
        }
        QueuesCommand::Stats { name } => {
            let queues = match name {
                Some(name) => vec![client.queue(&name).await?],
                None => client.queues().await?.queues,
            };
            if json {
                return print_json(&queues);
            }
            print_queues(&queues);
        }
    }
    Ok(())
}

pub(super) async fn dead_letters(args: DeadLettersArgs) -> anyhow::Result<()> {
    let client = args.remote.client();
    let json = args.remote.json;
    match args.command {
        DeadLettersCommand::List {
            queue,
            reason,
            limit,
        } => {
            let list = client.dead_letters(&queue, reason, limit).await?;
            if json {
                return print_json(&list);
            }
            println!(
                "{} dead letter(s) ({} shown)",
                list.total,
                list.dead_letters.len()
            );
            println!(
                "{:<36} {:<14} {:<20} {:>8} last error",
                "id", "reason", "from", "attempts"
            );
            for d in &list.dead_letters {
                let reason = serde_json::to_value(d.reason)?;
                println!(
                    "{:<36} {:<14} {:<20} {:>8} {}",
                    d.message.id,
                    reason.as_str().unwrap_or("?"),
                    d.original_queue,
                    d.attempts,
                    d.last_error.as_deref().unwrap_or("-")
                );
            }
        }
        DeadLettersCommand::Retry(selection) => {
            let count = client
                .retry_dead_letters(&selection.queue, &selection.action())
                .await?;
            if json {
                return print_json(&count);
            }
            let verb = if selection.dry_run {
                "would retry"
            } else {
                "retried"
            };
            println!("{verb} {} dead letter(s)", count.count);
        }
        DeadLettersCommand::Purge(selection) => {
            let count = client
                .purge_dead_letters(&selection.queue, &selection.action())
                .await?;
            if json {
                return print_json(&count);
            }
            let verb = if selection.dry_run {
                "would purge"
            } else {
                "purged"
            };
            println!("{verb} {} dead letter(s)", count.count);
        }
    }
    Ok(())
}

/// `switchyard flows ...`.
#[derive(Debug, clap::Args)]
pub(super) struct FlowsArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: FlowsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum FlowsCommand {
    /// Show the flow of a correlation id, message id or trace id as a tree
    /// of spans, with the graph's edges.
    Show {
        /// Correlation id, message id or trace id.
        id: String,
    },
    /// List the flows with the most recent activity.
    List {
        /// Most flows.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

pub(super) async fn flows(args: FlowsArgs) -> anyhow::Result<()> {
    let client = args.remote.client();
    let json = args.remote.json;
    match args.command {
        FlowsCommand::Show { id } => {
            let flow = client.flow(&id).await?;
            if json {
                return print_json(&flow);
            }
            print!("{}", render_flow(&flow));
        }
        FlowsCommand::List { limit } => {
            let list = client.recent_flows(limit).await?;
            if json {
                return print_json(&list);
            }
            println!(
                "{:<38} {:>6} {:>6} {:>5}  queues",
                "correlation id", "spans", "errors", "dead"
            );
            for f in &list.flows {
                println!(
                    "{:<38} {:>6} {:>6} {:>5}  {}",
                    f.correlation_id,
                    f.spans,
                    f.errors,
                    f.dead_lettered,
                    f.queues.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// A flow as text: its edges, then its spans as a tree (children under
/// their parent, by start time), each with its outcome and duration.
pub(super) fn render_flow(flow: &crate::http::dto::Flow) -> String {
    use std::collections::{HashMap, HashSet};
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "flow of {} `{}`: {} spans, correlation {}",
        flow.query.kind,
        flow.query.id,
        flow.timeline.len(),
        flow.correlation_ids.join(", ")
    );
    for e in &flow.edges {
        let outcomes: Vec<String> = e.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(
            out,
            "  {} -> {}: {} message(s), {} failed [{}]",
            e.from,
            e.to,
            e.messages,
            e.failures,
            outcomes.join(", ")
        );
    }
    let ids: HashSet<&str> = flow.timeline.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<Option<&str>, Vec<&crate::http::dto::Span>> = HashMap::new();
    for span in &flow.timeline {
        // A parent outside the flow (a remote caller) makes a root here.
        let parent = span.parent_span_id.as_deref().filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(span);
    }
    fn walk(
        out: &mut String,
        children: &HashMap<Option<&str>, Vec<&crate::http::dto::Span>>,
        parent: Option<&str>,
        depth: usize,
    ) {
        let Some(spans) = children.get(&parent) else {
            return;
        };
        for span in spans {
            let mut line = format!("{}{}", "  ".repeat(depth + 1), span.name);
            if let Some(attempt) = span.attempt {
                line.push_str(&format!(" #{attempt}"));
            }
            if let Some(outcome) = &span.outcome {
                line.push_str(&format!(" -> {outcome}"));
            }
            if span.status == "error" {
                let why = span.status_message.as_deref().unwrap_or("error");
                line.push_str(&format!(" ERROR: {why}"));
            }
            let _ = writeln!(out, "{line} ({} µs)", span.duration_us);
            walk(out, children, Some(span.span_id.as_str()), depth + 1);
        }
    }
    walk(&mut out, &children, None, 0);
    out
}
