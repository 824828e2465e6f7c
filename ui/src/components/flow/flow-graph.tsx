// The flow graph: producers → queues → handlers → dead-letter queues, with message counts,
// failures and latencies on the edges. Layout comes from util/flow-layout (dagre); React
// Flow draws it and gives pan/zoom. Nodes are read-only and clickable.

import { Background, Controls, Handle, MarkerType, Position, ReactFlow, type Edge, type Node, type NodeProps } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { memo, useMemo } from "react";
import type { Flow, FlowNode } from "../../api/types";
import { formatCompact } from "../../util/format";
import { layoutFlowGraph, type GraphNode } from "../../util/flow-layout";

type FlowNodeData = { g: GraphNode; selected: boolean; active: boolean };

const KIND_LABEL: Record<FlowNode["kind"], string> = {
  producer: "producer", queue: "queue", handler: "handler", dead_letter_queue: "dead letters",
};

const FlowNodeView = memo(function FlowNodeView({ data }: NodeProps<Node<FlowNodeData>>) {
  const { g, selected, active } = data;
  const cls = ["fg-node", `fg-${g.node.kind}`, g.failures > 0 ? "has-failures" : "", selected ? "is-selected" : "", active ? "is-active" : ""].filter(Boolean).join(" ");
  return (
    <div className={cls} data-testid="flow-node" data-kind={g.node.kind} title={g.node.label}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="fg-kind">{KIND_LABEL[g.node.kind]}</div>
      <div className="fg-label">{g.node.label}</div>
      <div className="fg-counts">
        {g.messagesIn > 0 && <span>in {formatCompact(g.messagesIn)}</span>}
        {g.messagesOut > 0 && <span>out {formatCompact(g.messagesOut)}</span>}
        {g.failures > 0 && <span className="fg-fail">{formatCompact(g.failures)} failed</span>}
      </div>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
});

const nodeTypes = { flow: FlowNodeView };

export function FlowGraph({ flow, selectedNodeId, activeNodeIds, onSelectNode }: {
  flow: Pick<Flow, "nodes" | "edges">;
  selectedNodeId: string | null;
  /** Nodes the selected span belongs to. */
  activeNodeIds: ReadonlySet<string>;
  onSelectNode: (node: FlowNode | null) => void;
}) {
  const layout = useMemo(() => layoutFlowGraph(flow), [flow]);
  const nodes = useMemo<Node<FlowNodeData>[]>(() => layout.nodes.map((g) => ({
    id: g.id,
    type: "flow",
    position: { x: g.x, y: g.y },
    data: { g, selected: g.id === selectedNodeId, active: activeNodeIds.has(g.id) },
    draggable: false,
    connectable: false,
  })), [layout, selectedNodeId, activeNodeIds]);
  const edges = useMemo<Edge[]>(() => layout.edges.map((e) => {
    const color = e.failed ? "var(--error)" : "var(--edge)";
    return {
      id: e.id,
      source: e.edge.from,
      target: e.edge.to,
      label: e.label,
      ariaLabel: e.title,
      labelBgPadding: [4, 2] as [number, number],
      labelBgBorderRadius: 3,
      labelStyle: { fill: e.failed ? "var(--error)" : "var(--text)", fontSize: 11, fontWeight: e.failed ? 600 : 400 },
      labelBgStyle: { fill: "var(--panel)" },
      style: { stroke: color, strokeWidth: 1 + Math.min(4, Math.log10(1 + e.edge.messages)) },
      markerEnd: { type: MarkerType.ArrowClosed, color },
      animated: e.failed,
    };
  }), [layout]);

  if (flow.nodes.length === 0) {
    return <div className="flow-graph flow-graph-empty">No graph: the server reported no producers, queues or handlers for this flow.</div>;
  }
  const height = Math.min(420, Math.max(180, layout.height + 40));
  return (
    <div className="flow-graph" style={{ height }} data-testid="flow-graph">
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        fitView
        fitViewOptions={{ padding: 0.06, maxZoom: 1.2 }}
        minZoom={0.2}
        nodesDraggable={false}
        nodesConnectable={false}
        elementsSelectable={false}
        onNodeClick={(_, n) => onSelectNode(n.id === selectedNodeId ? null : (n.data as FlowNodeData).g.node)}
        onPaneClick={() => onSelectNode(null)}
      >
        <Background gap={24} size={1} />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
