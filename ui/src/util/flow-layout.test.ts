import { describe, expect, it } from "vitest";
import type { Flow, Span } from "../api/types";
import { edgeLabel, graphInput, layoutFlowGraph, spansForNode } from "./flow-layout";

const flow: Pick<Flow, "nodes" | "edges"> = {
  nodes: [
    { id: "h:billing", kind: "handler", label: "billing" },
    { id: "p:shop", kind: "producer", label: "shop" },
    { id: "q:orders", kind: "queue", label: "orders" },
    { id: "d:orders.dlq", kind: "dead_letter_queue", label: "orders.dlq" },
  ],
  edges: [
    { from: "p:shop", to: "q:orders", messages: 12, failures: 0, latency_us_avg: 4200, outcomes: { sent: 12 } },
    { from: "q:orders", to: "h:billing", messages: 12, failures: 3, latency_us_avg: 850, latency_us_max: 10_000, outcomes: { acked: 9, nacked: 3 } },
    { from: "h:billing", to: "d:orders.dlq", messages: 1, failures: 0, outcomes: { dead_lettered: 1 } },
    { from: "q:orders", to: "nowhere", messages: 1, failures: 0, outcomes: {} },
  ],
};

describe("flow graph", () => {
  it("labels edges with counts, failures and latencies", () => {
    expect(edgeLabel(flow.edges[0])).toBe("12 msgs · avg 4.2 ms");
    expect(edgeLabel(flow.edges[1])).toBe("12 msgs · 3 failed · avg 850 µs · max 10 ms");
    expect(edgeLabel(flow.edges[2])).toBe("1 msg");
  });

  it("drops edges to unknown nodes and flags failing and dead-letter edges", () => {
    const g = graphInput(flow);
    expect(g.edges.map((e) => [e.edge.from, e.edge.to, e.failed])).toEqual([
      ["p:shop", "q:orders", false],
      ["q:orders", "h:billing", true],
      ["h:billing", "d:orders.dlq", true],
    ]);
  });

  it("lays the path out left to right without overlaps", () => {
    const l = layoutFlowGraph(flow);
    const x = Object.fromEntries(l.nodes.map((n) => [n.id, n.x]));
    expect(x["p:shop"]).toBeLessThan(x["q:orders"]);
    expect(x["q:orders"]).toBeLessThan(x["h:billing"]);
    expect(x["h:billing"]).toBeLessThan(x["d:orders.dlq"]);
    const q = l.nodes.find((n) => n.id === "q:orders")!;
    expect(q).toMatchObject({ messagesIn: 12, messagesOut: 12, failures: 3 });
    expect(l.width).toBeGreaterThan(0);
  });

  it("maps nodes to the spans they stand for", () => {
    const s = (id: string, extra: Partial<Span>): Span => ({ trace_id: "t", span_id: id, name: id, kind: "internal", start_us: 0, duration_us: 1, status: "ok", attributes: {}, links: [], ...extra });
    const spans = [
      s("send", { queue: "orders", operation: "send" }),
      s("billing", { queue: "orders", operation: "process" }),
      s("dl", { queue: "orders", operation: "dead_letter" }),
      s("x", { attributes: { "messaging.source": "shop" } }),
    ];
    expect(spansForNode(flow.nodes[2], spans).map((x) => x.span_id)).toEqual(["send", "billing"]);
    expect(spansForNode(flow.nodes[0], spans).map((x) => x.span_id)).toEqual(["billing"]);
    expect(spansForNode(flow.nodes[3], spans).map((x) => x.span_id)).toEqual(["dl"]);
    expect(spansForNode(flow.nodes[1], spans).map((x) => x.span_id)).toEqual(["x"]);
  });
});
