// Wire types of the HTTP API, written by hand from docs/api.md.
//
// Where docs/api.md is silent, the console assumes (keep in step with the server):
// - dead-letter routes' `{name}` may be the origin queue or the queue holding the dead
//   letters; the all-queues view lists both and de-duplicates by message id;
// - `limit` on peek and dead-letter listings accepts up to 10,000 (a lower server cap is fine);
// - `/api/flows/lookup/{id}` answers 404 `not_found` when nothing matches;
// - a FlowNode's `label` is the queue name for queue / dead-letter-queue nodes and the span
//   name (or an attribute value) for handlers and producers (used to highlight spans);
// - `Span.attempt` is 1-based; feed kinds include "acked" (queue rate sparklines);
// - `/api/stream` sends an `overview` about every second (10 s of silence → reconnect).
//
// Every type is a named export with the schema's name, so that once the server writes
// src/api/openapi.json and `npm run gen:api` produces schema.d.ts, this file shrinks to
// `export type QueueSpec = components["schemas"]["QueueSpec"];` lines and nothing else changes.

export type Role = "viewer" | "operator" | "admin";

export interface Backoff {
  initial_ms: number;
  multiplier: number;
  max_ms: number;
  jitter: number;
}

export interface QueueSpec {
  name?: string;
  durable?: boolean;
  exclusive?: boolean;
  auto_delete?: boolean;
  dead_letter_queue?: string | null;
  max_retries?: number | null;
  message_ttl_ms?: number | null;
  max_length?: number | null;
  overflow?: "reject_publish" | "dead_letter_oldest" | null;
  backoff?: Backoff | null;
}

export interface QueueStats {
  ready: number;
  in_flight: number;
  scheduled: number;
  dead_lettered: number;
  oldest_age_ms?: number | null;
}

export interface QueueSummary {
  name: string;
  spec: QueueSpec;
  stats: QueueStats;
  consumers: number;
}

export type HeaderValue = string | number | boolean | null;

export interface Message {
  id: string;
  queue: string;
  payload: unknown;
  payload_base64?: string | null;
  content_type: string;
  correlation_id: string;
  causation_id?: string | null;
  source?: string | null;
  reply_to?: string | null;
  headers: Record<string, HeaderValue>;
  timestamp_ms: number;
  attempts: number;
  traceparent?: string | null;
  tracestate?: string | null;
  /** Error of the last failed attempt. */
  last_error?: string | null;
  /** Provenance: dead-lettering and operator actions, oldest first. */
  history?: HistoryEntry[];
}

export interface Delivery {
  lease: string;
  redelivered: boolean;
  attempt: number;
  message: Message;
}

export type DeadLetterReason = "rejected" | "max_retries" | "expired" | "overflow";

export interface HistoryEntry {
  at_ms: number;
  event: string;
  detail?: string | null;
}

export interface DeadLetter {
  message: Message;
  reason: DeadLetterReason;
  original_queue: string;
  attempts: number;
  last_error?: string | null;
  dead_lettered_ms: number;
  history: HistoryEntry[];
}

export interface SendBody {
  payload?: unknown;
  payload_base64?: string;
  content_type?: string;
  correlation_id?: string;
  causation_id?: string;
  source?: string;
  reply_to?: string;
  headers?: Record<string, HeaderValue>;
  idempotency_key?: string;
  delay_ms?: number;
  ttl_ms?: number;
  traceparent?: string;
  tracestate?: string;
}

export type SpanKind = "producer" | "consumer" | "internal";
export type SpanStatus = "ok" | "error" | "unset";
export type SpanOperation =
  | "send" | "deliver" | "process" | "ack" | "nack" | "retry"
  | "dead_letter" | "expire" | "redrive" | "purge" | "move";

export interface SpanLink {
  trace_id: string;
  span_id: string;
}

export interface Span {
  trace_id: string;
  span_id: string;
  parent_span_id?: string | null;
  name: string;
  kind: SpanKind;
  start_us: number;
  duration_us: number;
  status: SpanStatus;
  status_message?: string | null;
  operation?: SpanOperation | null;
  queue?: string | null;
  message_id?: string | null;
  correlation_id?: string | null;
  causation_id?: string | null;
  attempt?: number | null;
  outcome?: string | null;
  attributes: Record<string, string | number | boolean>;
  links: SpanLink[];
}

export type FlowNodeKind = "producer" | "queue" | "handler" | "dead_letter_queue";

export interface FlowNode {
  id: string;
  kind: FlowNodeKind;
  label: string;
}

export interface FlowEdge {
  from: string;
  to: string;
  messages: number;
  failures: number;
  latency_us_avg?: number | null;
  latency_us_max?: number | null;
  outcomes: Record<string, number>;
}

export interface Flow {
  query: { kind: "correlation" | "trace" | "message"; id: string };
  correlation_ids: string[];
  trace_ids: string[];
  nodes: FlowNode[];
  edges: FlowEdge[];
  timeline: Span[];
  truncated: boolean;
}

export interface FlowSummary {
  correlation_id: string;
  first_us: number;
  last_us: number;
  spans: number;
  errors: number;
  dead_lettered: number;
  queues: string[];
}

export interface FeedEvent {
  at_ms: number;
  kind: string;
  queue: string;
  message_id: string;
  attempt?: number | null;
  detail?: string | null;
}

export interface Rates {
  sent_per_s: number;
  acked_per_s: number;
  nacked_per_s: number;
  dead_lettered_per_s: number;
}

export interface Overview {
  at_ms: number;
  totals: QueueStats;
  queues: QueueSummary[];
  rates: Rates;
}

/** The body of every error answer: `{"error": {"code", "message"}}`. */
export interface ErrorBody {
  error: { code: string; message: string };
}
