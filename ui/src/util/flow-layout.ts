// Flow graph: the server's nodes and edges → positioned boxes and labelled edges.
// dagre lays the graph out left to right (producers → queues → handlers → dead-letter
// queues), which reads like the message path; React Flow only draws what we computed here.

import { Graph, layout } from "@dagrejs/dagre";
import type { Flow, FlowEdge, FlowNode, Span } from "../api/types";
import { formatCount, formatDurationUs } from "./format";

export const NODE_WIDTH = 190;
export const NODE_HEIGHT = 56;

export interface GraphNode {
  id: string;
  node: FlowNode;
  x: number;
  y: number;
  /** Messages in and out, failures out, summed over the node's edges. */
  messagesIn: number;
  messagesOut: number;
  failures: number;
}

export interface GraphEdge {
  id: string;
  edge: FlowEdge;
  /** Drawn on the edge; `title` adds the maximum latency. */
  label: string;
  title: string;
  failed: boolean;
}

export interface GraphLayout {
  nodes: GraphNode[];
  edges: GraphEdge[];
  width: number;
  height: number;
}

/** One line per edge: "12 msgs · 3 failed · avg 4.2 ms · max 10 ms" (short: without max). */
export function edgeLabel(e: FlowEdge, short = false): string {
  const parts = [`${formatCount(e.messages)} msg${e.messages === 1 ? "" : "s"}`];
  if (e.failures > 0) parts.push(`${formatCount(e.failures)} failed`);
  if (e.latency_us_avg !== undefined && e.latency_us_avg !== null) parts.push(`avg ${formatDurationUs(e.latency_us_avg)}`);
  if (!short && e.latency_us_max !== undefined && e.latency_us_max !== null) parts.push(`max ${formatDurationUs(e.latency_us_max)}`);
  return parts.join(" · ");
}

/** The graph input: known nodes only, edges between known nodes, with labels and failure flags. */
export function graphInput(flow: Pick<Flow, "nodes" | "edges">): { nodes: FlowNode[]; edges: GraphEdge[] } {
  const ids = new Set(flow.nodes.map((n) => n.id));
  const edges = flow.edges
    .filter((e) => ids.has(e.from) && ids.has(e.to))
    .map((e, i) => ({ id: `e${i}:${e.from}->${e.to}`, edge: e, label: edgeLabel(e, true), title: edgeLabel(e), failed: e.failures > 0 || isDlq(flow.nodes, e.to) }));
  return { nodes: flow.nodes, edges };
}

function isDlq(nodes: FlowNode[], id: string): boolean {
  return nodes.some((n) => n.id === id && n.kind === "dead_letter_queue");
}

const RANK_HINT: Record<FlowNode["kind"], number> = { producer: 0, queue: 1, handler: 2, dead_letter_queue: 3 };

export function layoutFlowGraph(flow: Pick<Flow, "nodes" | "edges">): GraphLayout {
  const { nodes, edges } = graphInput(flow);
  const g = new Graph({ multigraph: true });
  g.setGraph({ rankdir: "LR", nodesep: 28, ranksep: 200, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  // Stable order: by kind rank then label, so the same flow always looks the same.
  const sorted = [...nodes].sort((a, b) => RANK_HINT[a.kind] - RANK_HINT[b.kind] || a.label.localeCompare(b.label));
  for (const n of sorted) g.setNode(n.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const e of edges) g.setEdge(e.edge.from, e.edge.to, { weight: Math.max(1, Math.log2(1 + e.edge.messages)), minlen: 1 }, e.id);
  layout(g);
  const messagesIn = new Map<string, number>();
  const messagesOut = new Map<string, number>();
  const failures = new Map<string, number>();
  for (const e of edges) {
    messagesIn.set(e.edge.to, (messagesIn.get(e.edge.to) ?? 0) + e.edge.messages);
    messagesOut.set(e.edge.from, (messagesOut.get(e.edge.from) ?? 0) + e.edge.messages);
    failures.set(e.edge.from, (failures.get(e.edge.from) ?? 0) + e.edge.failures);
  }
  const out: GraphNode[] = sorted.map((n) => {
    const p = g.node(n.id) as { x: number; y: number };
    return {
      id: n.id, node: n,
      // dagre answers centres; React Flow wants top-left corners.
      x: p.x - NODE_WIDTH / 2, y: p.y - NODE_HEIGHT / 2,
      messagesIn: messagesIn.get(n.id) ?? 0,
      messagesOut: messagesOut.get(n.id) ?? 0,
      failures: failures.get(n.id) ?? 0,
    };
  });
  const gg = g.graph() as { width?: number; height?: number };
  return { nodes: out, edges, width: gg.width ?? 0, height: gg.height ?? 0 };
}

/**
 * The spans a graph node stands for, to highlight them in the waterfall. The API does not
 * say how node ids map to spans, so this matches on what a node's label names: the queue
 * (span.queue), the handler or producer (span.name, or any attribute equal to the label).
 */
export function spansForNode(node: FlowNode, spans: readonly Span[]): Span[] {
  return spans.filter((s) => {
    if (node.kind === "queue") return s.queue === node.label && s.operation !== "dead_letter";
    if (node.kind === "dead_letter_queue") {
      return s.queue === node.label || s.operation === "dead_letter" && (node.label.includes(s.queue ?? "\0") || Object.values(s.attributes ?? {}).includes(node.label));
    }
    return s.name === node.label || Object.values(s.attributes ?? {}).includes(node.label);
  });
}
