// The span waterfall: one row per span in tree order, bars on a shared time axis.
// Virtualized (only visible rows are in the DOM), so 1,000+ spans scroll smoothly.

import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useMemo, useRef, useState, type KeyboardEvent } from "react";
import type { Span } from "../../api/types";
import { formatDurationUs } from "../../util/format";
import { layoutWaterfall, timeTicks, type WaterfallRow } from "../../util/waterfall";

const ROW_HEIGHT = 26;
const INDENT_PX = 14;
const MAX_INDENT = 24;

export function Waterfall({ spans, selectedKey, highlighted, onSelect, onRendered }: {
  spans: readonly Span[];
  selectedKey?: string;
  /** Keys to emphasise (spans of the selected graph node); others are dimmed. */
  highlighted?: ReadonlySet<string> | null;
  onSelect: (row: WaterfallRow) => void;
  onRendered?: () => void;
}) {
  const [collapsed, setCollapsed] = useState<ReadonlySet<string>>(new Set());
  const w = useMemo(() => layoutWaterfall(spans, collapsed), [spans, collapsed]);
  const ticks = useMemo(() => timeTicks(w.durationUs, 6), [w.durationUs]);
  const scrollRef = useRef<HTMLDivElement>(null);
  const v = useVirtualizer({ count: w.rows.length, getScrollElement: () => scrollRef.current, estimateSize: () => ROW_HEIGHT, overscan: 15 });

  useEffect(() => {
    if (!selectedKey) return;
    const i = w.rows.findIndex((r) => r.key === selectedKey);
    if (i >= 0) v.scrollToIndex(i, { align: "auto" });
    // Only when the selection changes (not on every re-layout), so scrolling stays free.
  }, [selectedKey]);

  const rendered = useRef(false);
  const items = v.getVirtualItems();
  useEffect(() => {
    if (!rendered.current && (items.length > 0 || w.rows.length === 0)) {
      rendered.current = true;
      onRendered?.();
    }
  });

  const toggle = (key: string) =>
    setCollapsed((c) => {
      const n = new Set(c);
      if (n.has(key)) n.delete(key);
      else n.add(key);
      return n;
    });

  const onKey = (e: KeyboardEvent) => {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    e.preventDefault();
    const i = w.rows.findIndex((r) => r.key === selectedKey);
    const next = w.rows[Math.min(w.rows.length - 1, Math.max(0, i + (e.key === "ArrowDown" ? 1 : -1)))];
    if (next) onSelect(next);
  };

  return (
    <div className="waterfall" data-testid="waterfall" data-rows={w.rows.length}>
      <div className="wf-scroll" ref={scrollRef} tabIndex={0} onKeyDown={onKey} role="tree" aria-label="Spans" style={{ height: `min(${(w.rows.length + 1) * ROW_HEIGHT + 4}px, max(260px, calc(100vh - 200px)))` }}>
        {/* The header scrolls with the rows (sticky) so ticks and bars share one width. */}
        <div className="wf-header">
          <div className="wf-name-col">Span <span className="muted">({w.rows.length} shown{w.errors ? `, ${w.errors} failed` : ""})</span></div>
          <div className="wf-time-col">
            {ticks.map((t) => (
              <span key={t} className="wf-tick" style={{ left: `${(t / w.durationUs) * 100}%` }}>{formatDurationUs(t)}</span>
            ))}
          </div>
        </div>
        <div style={{ height: v.getTotalSize(), position: "relative" }}>
          <div className="wf-grid" aria-hidden>
            {ticks.map((t) => <i key={t} style={{ left: `calc(var(--wf-name) + (100% - var(--wf-name) - 12px) * ${t / w.durationUs})` }} />)}
          </div>
          {items.map((item) => {
            const row = w.rows[item.index];
            const dim = highlighted ? !highlighted.has(row.key) : false;
            return (
              <WaterfallRowView
                key={row.key}
                row={row}
                top={item.start}
                selected={row.key === selectedKey}
                dim={dim}
                collapsed={collapsed.has(row.key)}
                onSelect={() => onSelect(row)}
                onToggle={() => toggle(row.key)}
                durationUs={w.durationUs}
              />
            );
          })}
        </div>
      </div>
    </div>
  );
}

const OP_LABEL: Record<string, string> = {
  send: "send", deliver: "deliver", process: "process", ack: "ack", nack: "nack", retry: "retry",
  dead_letter: "dead-letter", expire: "expire", redrive: "redrive", purge: "purge", move: "move",
};

function WaterfallRowView({ row, top, selected, dim, collapsed, onSelect, onToggle, durationUs }: {
  row: WaterfallRow; top: number; selected: boolean; dim: boolean; collapsed: boolean; onSelect: () => void; onToggle: () => void; durationUs: number;
}) {
  const s = row.span;
  const indent = Math.min(row.depth, MAX_INDENT) * INDENT_PX;
  const cls = ["wf-row", `kind-${s.kind}`, row.rootIndex % 2 ? "band" : "", row.error ? "is-error" : "", selected ? "is-selected" : "", dim ? "is-dim" : ""].filter(Boolean).join(" ");
  return (
    <div className={cls} style={{ top, height: ROW_HEIGHT }} onClick={onSelect} role="treeitem" aria-selected={selected} data-testid="span-row" data-span-id={s.span_id} data-error={row.error || undefined}>
      <div className="wf-name-col" style={{ paddingLeft: 6 + indent }}>
        {row.children > 0 ? (
          <button type="button" className="wf-toggle" onClick={(e) => { e.stopPropagation(); onToggle(); }} aria-label={collapsed ? "expand" : "collapse"}>
            {collapsed ? "▸" : "▾"}
          </button>
        ) : <span className="wf-toggle-space" />}
        {row.viaLink && <span className="wf-link" title="follows from (linked span, async hand-off)">↳</span>}
        <span className="wf-name">{s.name}</span>
        {s.operation && <span className={`op op-${s.operation}`}>{OP_LABEL[s.operation] ?? s.operation}</span>}
        {row.attemptLabel && <span className="wf-attempt">{row.attemptLabel}</span>}
        {s.queue && <span className="wf-queue">{s.queue}</span>}
        {collapsed && row.hidden > 0 && <span className="muted"> +{row.hidden}</span>}
      </div>
      <div className="wf-time-col">
        <div className="wf-bar" style={{ left: `${row.offset * 100}%`, width: `max(2px, ${row.width * 100}%)` }} title={`${s.name}: ${formatDurationUs(s.duration_us)}, starts at +${formatDurationUs(row.offset * durationUs)}`} />
        <span className="wf-dur" style={{ left: `min(calc(${(row.offset + row.width) * 100}% + 4px), calc(100% - 64px))` }}>{formatDurationUs(s.duration_us)}</span>
      </div>
    </div>
  );
}
