// The flow's headline: what went wrong, where, and what became of each failing message,
// so an operator reads the answer before reading the graph or the waterfall.

import type { Span } from "../api/types";
import { isErrorSpan } from "./waterfall";

export type Finding =
  | { kind: "dead-lettered"; messageId: string; queue: string | null; attempts: number; error: string | null; spanId: string }
  | { kind: "recovered"; messageId: string; queue: string | null; failedAttempts: number; error: string | null; spanId: string }
  | { kind: "failing"; messageId: string; queue: string | null; failedAttempts: number; error: string | null; spanId: string };

export interface Diagnosis {
  findings: Finding[];
  /** Messages that failed at least once. */
  troubled: number;
  messages: number;
  /** The slowest span overall, for "where did the time go". */
  slowest: Span | null;
}

const SETTLED_OK = new Set(["ack"]);

export function diagnose(spans: readonly Span[]): Diagnosis {
  const byMessage = new Map<string, Span[]>();
  let slowest: Span | null = null;
  for (const s of spans) {
    if (!slowest || s.duration_us > slowest.duration_us) slowest = s;
    if (!s.message_id) continue;
    const list = byMessage.get(s.message_id);
    if (list) list.push(s);
    else byMessage.set(s.message_id, [s]);
  }
  const findings: Finding[] = [];
  for (const [messageId, list] of byMessage) {
    const ordered = [...list].sort((a, b) => a.start_us - b.start_us);
    const errors = ordered.filter((s) => isErrorSpan(s) && s.operation !== "dead_letter" && s.operation !== "expire");
    const failedAttempts = new Set(errors.map((s) => s.attempt ?? s.span_id)).size;
    const lastError = [...ordered].reverse().find((s) => s.status_message)?.status_message ?? null;
    const dead = [...ordered].reverse().find((s) => s.operation === "dead_letter" || s.operation === "expire");
    const lastDeadIndex = dead ? ordered.lastIndexOf(dead) : -1;
    const ackedAfter = ordered.slice(lastDeadIndex + 1).find((s) => s.operation && SETTLED_OK.has(s.operation));
    if (dead && !ackedAfter) {
      const attempts = Math.max(0, ...ordered.map((s) => s.attempt ?? 0)) || failedAttempts;
      findings.push({ kind: "dead-lettered", messageId, queue: dead.queue ?? null, attempts, error: dead.status_message ?? lastError, spanId: dead.span_id });
    } else if (failedAttempts > 0) {
      const firstError = errors[0];
      findings.push({
        kind: ackedAfter || ordered.some((s) => s.operation === "ack" && s.start_us > firstError.start_us) ? "recovered" : "failing",
        messageId, queue: firstError.queue ?? null, failedAttempts, error: lastError, spanId: errors[errors.length - 1].span_id,
      });
    }
  }
  const rank = { "dead-lettered": 0, failing: 1, recovered: 2 } as const;
  findings.sort((a, b) => rank[a.kind] - rank[b.kind]);
  return { findings, troubled: findings.length, messages: byMessage.size, slowest };
}
