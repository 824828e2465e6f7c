import { describe, expect, it } from "vitest";
import type { Span } from "../api/types";
import { diagnose } from "./diagnosis";

let n = 0;
function span(message_id: string, operation: Span["operation"], extra: Partial<Span> = {}): Span {
  n++;
  return { trace_id: "t", span_id: `s${n}`, name: String(operation), kind: "internal", start_us: n * 10, duration_us: 5, status: "ok", attributes: {}, links: [], message_id, queue: "orders", operation, ...extra };
}

describe("diagnose", () => {
  it("reports a dead-lettered message with its attempts and last error, first", () => {
    const d = diagnose([
      span("ok1", "send"), span("ok1", "ack"),
      span("m1", "send"),
      span("m1", "process", { attempt: 1, status: "error", status_message: "timeout" }),
      span("m1", "process", { attempt: 2, status: "error", status_message: "timeout again" }),
      span("m1", "dead_letter", { status: "error", status_message: "max retries" }),
      span("m2", "send"),
      span("m2", "process", { attempt: 1, status: "error", status_message: "flaky" }),
      span("m2", "ack", { attempt: 2 }),
    ]);
    expect(d.messages).toBe(3);
    expect(d.findings.map((f) => [f.kind, f.messageId])).toEqual([["dead-lettered", "m1"], ["recovered", "m2"]]);
    expect(d.findings[0]).toMatchObject({ attempts: 2, error: "max retries", queue: "orders" });
    expect(d.findings[1]).toMatchObject({ failedAttempts: 1, error: "flaky" });
  });

  it("treats a dead letter retried and acked as recovered", () => {
    const d = diagnose([
      span("m", "process", { attempt: 1, status: "error", status_message: "declined" }),
      span("m", "dead_letter"),
      span("m", "redrive"),
      span("m", "ack", { attempt: 2 }),
    ]);
    expect(d.findings).toMatchObject([{ kind: "recovered", messageId: "m" }]);
  });

  it("reports messages still failing and a clean flow", () => {
    expect(diagnose([span("m", "nack", { status: "error", attempt: 1 })]).findings).toMatchObject([{ kind: "failing" }]);
    const clean = diagnose([span("a", "send", { duration_us: 9 }), span("a", "ack")]);
    expect(clean.findings).toEqual([]);
    expect(clean.slowest?.operation).toBe("send");
  });
});
