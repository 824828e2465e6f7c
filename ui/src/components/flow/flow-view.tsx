// A flow at a glance: summary line, graph on top, waterfall below, details on the right.
// Clicking a graph node highlights its spans; clicking a span opens its details (and puts
// it in the URL, so a pasted link opens the same span).

import { lazy, Suspense, useMemo, useState } from "react";
import type { Flow, FlowNode } from "../../api/types";
import { Badge } from "../../kit/badge";
import { Button } from "../../kit/button";
import { Copyable } from "../../kit/copy";
import { formatDurationUs, formatDateTime, plural } from "../../util/format";
import { spansForNode } from "../../util/flow-layout";
import { hrefs } from "../../util/route";
import { isErrorSpan, spanKey } from "../../util/waterfall";
import { FlowHeadline } from "./flow-headline";
import { SpanDetails } from "./span-details";
import { Waterfall } from "./waterfall";

// The graph library is the biggest part of the bundle; load it with the first flow view so
// the overview (the landing page) does not pay for it.
const FlowGraph = lazy(() => import("./flow-graph").then((m) => ({ default: m.FlowGraph })));

export function FlowView({ flow, selectedSpanId, onSelectSpan, onRendered }: {
  flow: Flow;
  selectedSpanId?: string;
  onSelectSpan: (spanId: string | undefined) => void;
  onRendered?: () => void;
}) {
  const [node, setNode] = useState<FlowNode | null>(null);
  const [onlyNode, setOnlyNode] = useState(false);
  const [onlyErrors, setOnlyErrors] = useState(false);
  const spans = flow.timeline ?? [];

  const nodeSpans = useMemo(() => (node ? spansForNode(node, spans) : null), [node, spans]);
  const highlighted = useMemo(() => (nodeSpans ? new Set(nodeSpans.map((s) => spanKey(s.trace_id, s.span_id))) : null), [nodeSpans]);
  const shown = useMemo(() => {
    let list = spans;
    if (onlyNode && nodeSpans) list = nodeSpans;
    if (onlyErrors) list = list.filter(isErrorSpan);
    return list;
  }, [spans, onlyNode, nodeSpans, onlyErrors]);
  const selected = useMemo(() => spans.find((s) => s.span_id === selectedSpanId), [spans, selectedSpanId]);
  const activeNodes = useMemo(() => {
    if (!selected) return new Set<string>();
    return new Set(flow.nodes.filter((n) => spansForNode(n, [selected]).length > 0).map((n) => n.id));
  }, [selected, flow.nodes]);

  const stats = useMemo(() => {
    let start = Infinity;
    let end = -Infinity;
    let errors = 0;
    let deadLettered = 0;
    let retries = 0;
    const messages = new Set<string>();
    for (const s of spans) {
      start = Math.min(start, s.start_us);
      end = Math.max(end, s.start_us + s.duration_us);
      if (isErrorSpan(s)) errors++;
      if (s.operation === "dead_letter") deadLettered++;
      if (s.operation === "retry" || s.operation === "nack") retries++;
      if (s.message_id) messages.add(s.message_id);
    }
    return { start, end, errors, deadLettered, retries, messages: messages.size };
  }, [spans]);

  return (
    <div className="flow-view">
      <div className="flow-summary" data-testid="flow-summary">
        <span>{plural(spans.length, "span")}</span>
        <span>{plural(stats.messages, "message")}</span>
        <span>{plural((flow.trace_ids ?? []).length, "trace")}</span>
        {spans.length > 0 && <span>{formatDurationUs(stats.end - stats.start)} from {formatDateTime(stats.start / 1000)}</span>}
        {stats.errors > 0 ? <Badge tone="error">{plural(stats.errors, "failure")}</Badge> : <Badge tone="ok">no failures</Badge>}
        {stats.retries > 0 && <Badge tone="warn">{plural(stats.retries, "retry", "retries")}</Badge>}
        {stats.deadLettered > 0 && <Badge tone="error">{plural(stats.deadLettered, "dead letter")}</Badge>}
        {(flow.correlation_ids ?? []).map((c) => <span key={c} className="muted">correlation <Copyable text={c} /></span>)}
      </div>
      {flow.truncated && (
        <div className="notice warn">This flow is larger than the server returns at once; the graph and timeline show the first part only.</div>
      )}
      <FlowHeadline spans={spans} onShowSpan={(id) => { setOnlyErrors(false); setOnlyNode(false); onSelectSpan(id); }} />
      <Suspense fallback={<div className="flow-graph flow-graph-empty">Drawing the graph…</div>}>
        <FlowGraph flow={flow} selectedNodeId={node?.id ?? null} activeNodeIds={activeNodes} onSelectNode={(n) => { setNode(n); if (!n) setOnlyNode(false); }} />
      </Suspense>
      {node && (
        <div className="node-bar" data-testid="node-bar">
          <strong>{node.label}</strong> <span className="muted">{node.kind.replace(/_/g, " ")}</span>
          <span>{plural(nodeSpans?.length ?? 0, "span")} highlighted</span>
          <label><input type="checkbox" checked={onlyNode} onChange={(e) => setOnlyNode(e.target.checked)} /> only these</label>
          {node.kind === "queue" && <a href={hrefs.queue(node.label)}>Open queue</a>}
          {node.kind === "queue" && <a href={hrefs.deadLetters(node.label)}>Its dead letters</a>}
          {node.kind === "dead_letter_queue" && <a href={hrefs.deadLetters()}>Browse dead letters</a>}
          <Button variant="ghost" onClick={() => { setNode(null); setOnlyNode(false); }}>Clear</Button>
        </div>
      )}
      <div className="flow-lower">
        <div className="flow-timeline">
          <div className="toolbar">
            <label><input type="checkbox" checked={onlyErrors} onChange={(e) => setOnlyErrors(e.target.checked)} /> only failures</label>
            <span className="muted">Click a span for details · ↑/↓ to move · ↳ marks an async hand-off (linked span)</span>
          </div>
          {shown.length === 0 ? (
            <div className="state state-empty"><div className="state-title">No spans match</div><div className="state-hint">Clear the filters above.</div></div>
          ) : (
            <Waterfall
              spans={shown}
              selectedKey={selected ? spanKey(selected.trace_id, selected.span_id) : undefined}
              highlighted={onlyNode ? null : highlighted}
              onSelect={(row) => onSelectSpan(row.span.span_id)}
              onRendered={onRendered}
            />
          )}
        </div>
        {selected && <SpanDetails span={selected} onClose={() => onSelectSpan(undefined)} />}
      </div>
    </div>
  );
}
