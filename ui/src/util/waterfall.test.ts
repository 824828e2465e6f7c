import { describe, expect, it } from "vitest";
import type { Span } from "../api/types";
import { layoutWaterfall, timeTicks } from "./waterfall";

const T1 = "a".repeat(32);
const T2 = "b".repeat(32);

function span(id: string, start: number, dur: number, extra: Partial<Span> = {}): Span {
  return { trace_id: T1, span_id: id, name: id, kind: "internal", start_us: start, duration_us: dur, status: "ok", attributes: {}, links: [], ...extra };
}

describe("layoutWaterfall", () => {
  it("orders rows depth-first by start time and indents children", () => {
    const w = layoutWaterfall([
      span("c2", 300, 100, { parent_span_id: "root" }),
      span("root", 0, 1000),
      span("c1", 100, 100, { parent_span_id: "root" }),
      span("g1", 150, 10, { parent_span_id: "c1" }),
    ]);
    expect(w.rows.map((r) => [r.span.span_id, r.depth])).toEqual([["root", 0], ["c1", 1], ["g1", 2], ["c2", 1]]);
    expect(w.startUs).toBe(0);
    expect(w.durationUs).toBe(1000);
    expect(w.rows[1]).toMatchObject({ offset: 0.1, width: 0.1 });
    expect(w.rows[0].children).toBe(2);
  });

  it("hangs a consumer span in another trace under its linked producer span", () => {
    const w = layoutWaterfall([
      span("send", 0, 50, { kind: "producer" }),
      span("proc", 100, 50, { trace_id: T2, kind: "consumer", links: [{ trace_id: T1, span_id: "send" }] }),
    ]);
    expect(w.rows.map((r) => [r.span.span_id, r.depth, r.viaLink])).toEqual([["send", 0, false], ["proc", 1, true]]);
    expect(w.rows.map((r) => r.rootIndex)).toEqual([0, 0]);
    expect(w.traces).toBe(2);
  });

  it("shows retries as separate attempts and counts errors", () => {
    const w = layoutWaterfall([
      span("send", 0, 10),
      span("p1", 20, 10, { parent_span_id: "send", attempt: 1, status: "error", operation: "process" }),
      span("p2", 40, 10, { parent_span_id: "send", attempt: 2, status: "error", operation: "process" }),
      span("dl", 60, 1, { parent_span_id: "send", operation: "dead_letter" }),
    ]);
    expect(w.rows.map((r) => r.attemptLabel)).toEqual([undefined, undefined, "attempt 2", undefined]);
    expect(w.rows.map((r) => r.error)).toEqual([false, true, true, true]);
    expect(w.errors).toBe(3);
  });

  it("keeps orphans as roots and survives parent cycles", () => {
    const w = layoutWaterfall([
      span("x", 5, 1, { parent_span_id: "y" }),
      span("y", 6, 1, { parent_span_id: "x" }),
      span("orphan", 0, 1, { parent_span_id: "missing" }),
    ]);
    expect(w.rows.map((r) => r.span.span_id).sort()).toEqual(["orphan", "x", "y"]);
    expect(w.rows[0].span.span_id).toBe("orphan");
    expect(w.rows[0].rootIndex).toBe(0);
    expect(new Set(w.rows.map((r) => r.rootIndex)).size).toBe(2);
  });

  it("collapses a subtree and reports how many rows it hides", () => {
    const spans = [span("r", 0, 10), span("a", 1, 1, { parent_span_id: "r" }), span("b", 2, 1, { parent_span_id: "a" })];
    const w = layoutWaterfall(spans, new Set([`${T1}:r`]));
    expect(w.rows.map((r) => r.span.span_id)).toEqual(["r"]);
    expect(w.rows[0].hidden).toBe(2);
  });

  it("lays out a 1,000-deep chain and 10,000 spans quickly", () => {
    const chain = Array.from({ length: 1000 }, (_, i) => span(`s${i}`, i, 1, i ? { parent_span_id: `s${i - 1}` } : {}));
    expect(layoutWaterfall(chain).rows.at(-1)?.depth).toBe(999);
    const wide = Array.from({ length: 10_000 }, (_, i) => span(`w${i}`, i, 1, i ? { parent_span_id: "w0" } : {}));
    const t = performance.now();
    expect(layoutWaterfall(wide).rows).toHaveLength(10_000);
    expect(performance.now() - t).toBeLessThan(500);
  });

  it("handles an empty flow", () => {
    expect(layoutWaterfall([])).toMatchObject({ rows: [], startUs: 0, errors: 0 });
  });
});

describe("timeTicks", () => {
  it("picks round steps", () => {
    expect(timeTicks(1000, 5)).toEqual([0, 200, 400, 600, 800, 1000]);
    expect(timeTicks(0)).toEqual([0]);
    expect(timeTicks(7300, 6)).toEqual([0, 2000, 4000, 6000]);
  });
});
