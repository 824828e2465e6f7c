// Waterfall layout: spans → rows in tree order with depth and a horizontal bar.
//
// Asynchronous flows rarely form one tree: a consumer span usually starts a new trace and
// *links* to the producer span instead of naming it as parent. So a span hangs under its
// parent when the parent is in the flow, else under its first linked span that is in the
// flow (drawn as a dashed "follows from" edge), else it is a root. Every span appears
// exactly once; a cycle in bad data cannot loop or drop spans.

import type { Span } from "../api/types";

export interface WaterfallRow {
  span: Span;
  /** Stable key across re-layouts: trace_id:span_id. */
  key: string;
  depth: number;
  /** Attached through a link rather than parent_span_id. */
  viaLink: boolean;
  /** Bar start and width as fractions 0..1 of the flow's time range. */
  offset: number;
  width: number;
  error: boolean;
  /** Number of direct children, for the collapse toggle. */
  children: number;
  /** Count of hidden descendants when collapsed. */
  hidden: number;
  /** "attempt 2" for redeliveries, so retries read as separate attempts. */
  attemptLabel?: string;
  /** Index of the root this row descends from, to band each message's rows together. */
  rootIndex: number;
}

export interface Waterfall {
  rows: WaterfallRow[];
  startUs: number;
  endUs: number;
  durationUs: number;
  errors: number;
  traces: number;
}

export const spanKey = (traceId: string, spanId: string) => `${traceId}:${spanId}`;

export function isErrorSpan(s: Span): boolean {
  return s.status === "error" || s.operation === "dead_letter" || s.operation === "expire";
}

export function layoutWaterfall(spans: readonly Span[], collapsed: ReadonlySet<string> = new Set()): Waterfall {
  const byKey = new Map<string, Span>();
  const bySpanId = new Map<string, Span>();
  for (const s of spans) {
    byKey.set(spanKey(s.trace_id, s.span_id), s);
    if (!bySpanId.has(s.span_id)) bySpanId.set(s.span_id, s);
  }

  // Parent of each span within the flow, and whether it came from a link.
  const parentOf = new Map<string, { key: string; viaLink: boolean }>();
  for (const s of spans) {
    const k = spanKey(s.trace_id, s.span_id);
    if (s.parent_span_id) {
      const p = byKey.get(spanKey(s.trace_id, s.parent_span_id));
      if (p && p !== s) {
        parentOf.set(k, { key: spanKey(p.trace_id, p.span_id), viaLink: false });
        continue;
      }
    }
    for (const l of s.links ?? []) {
      const p = byKey.get(spanKey(l.trace_id, l.span_id));
      if (p && p !== s) {
        parentOf.set(k, { key: spanKey(p.trace_id, p.span_id), viaLink: true });
        break;
      }
    }
  }

  const children = new Map<string, Span[]>();
  const roots: Span[] = [];
  for (const s of spans) {
    const p = parentOf.get(spanKey(s.trace_id, s.span_id));
    if (p) {
      const list = children.get(p.key);
      if (list) list.push(s);
      else children.set(p.key, [s]);
    } else {
      roots.push(s);
    }
  }
  const order = (a: Span, b: Span) => a.start_us - b.start_us || a.name.localeCompare(b.name);
  roots.sort(order);
  for (const list of children.values()) list.sort(order);

  let startUs = Infinity;
  let endUs = -Infinity;
  let errors = 0;
  const traces = new Set<string>();
  for (const s of spans) {
    startUs = Math.min(startUs, s.start_us);
    endUs = Math.max(endUs, s.start_us + Math.max(0, s.duration_us));
    if (isErrorSpan(s)) errors++;
    traces.add(s.trace_id);
  }
  if (spans.length === 0) {
    startUs = 0;
    endUs = 0;
  }
  const durationUs = Math.max(1, endUs - startUs);

  const rows: WaterfallRow[] = [];
  const visited = new Set<string>();
  const countDescendants = (key: string): number => {
    let n = 0;
    const stack = [...(children.get(key) ?? [])];
    const seen = new Set<string>();
    while (stack.length) {
      const c = stack.pop()!;
      const ck = spanKey(c.trace_id, c.span_id);
      if (seen.has(ck)) continue;
      seen.add(ck);
      n++;
      stack.push(...(children.get(ck) ?? []));
    }
    return n;
  };
  let rootIndex = -1;
  const walk = (root: Span) => {
    rootIndex++;
    // Iterative DFS: a 1,000-deep retry chain must not overflow the stack.
    const stack: { span: Span; depth: number }[] = [{ span: root, depth: 0 }];
    while (stack.length) {
      const { span, depth } = stack.pop()!;
      const key = spanKey(span.trace_id, span.span_id);
      if (visited.has(key)) continue;
      visited.add(key);
      const kids = children.get(key) ?? [];
      const isCollapsed = collapsed.has(key);
      const row: WaterfallRow = {
        span,
        key,
        depth,
        viaLink: parentOf.get(key)?.viaLink ?? false,
        offset: (span.start_us - startUs) / durationUs,
        width: Math.max(0, span.duration_us) / durationUs,
        error: isErrorSpan(span),
        children: kids.length,
        hidden: isCollapsed ? countDescendants(key) : 0,
        rootIndex,
      };
      if (span.attempt && span.attempt > 1) row.attemptLabel = `attempt ${span.attempt}`;
      rows.push(row);
      if (!isCollapsed) {
        for (let i = kids.length - 1; i >= 0; i--) stack.push({ span: kids[i], depth: depth + 1 });
      }
    }
  };
  for (const r of roots) walk(r);
  // Spans caught in a parent cycle have no root; show them rather than lose them.
  for (const s of [...spans].sort(order)) {
    const k = spanKey(s.trace_id, s.span_id);
    if (!visited.has(k) && !isHiddenByCollapse(k, parentOf, collapsed)) walk(s);
  }
  return { rows, startUs, endUs, durationUs, errors, traces: traces.size };
}

function isHiddenByCollapse(key: string, parentOf: Map<string, { key: string }>, collapsed: ReadonlySet<string>): boolean {
  const seen = new Set<string>();
  let cur = parentOf.get(key)?.key;
  while (cur && !seen.has(cur)) {
    if (collapsed.has(cur)) return true;
    seen.add(cur);
    cur = parentOf.get(cur)?.key;
  }
  return false;
}

/** Round tick positions for a time axis of `durationUs`, about `count` of them. */
export function timeTicks(durationUs: number, count = 6): number[] {
  if (!(durationUs > 0)) return [0];
  const raw = durationUs / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = 0; t <= durationUs + 1e-9; t += step) ticks.push(t);
  return ticks;
}
