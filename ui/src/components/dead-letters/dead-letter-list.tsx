import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useRef } from "react";
import type { DeadLetter } from "../../api/types";
import { Badge } from "../../kit/badge";
import { formatAgeMs, shortId } from "../../util/format";

const ROW = 52;

export interface ListedDeadLetter {
  dl: DeadLetter;
  /** The queue whose dead-letter route listed it; actions go to the same route. */
  listedFrom: string;
}

export function DeadLetterList({ items, selectedId, checked, onSelect, onCheck, nowMs }: {
  items: ListedDeadLetter[];
  selectedId?: string;
  checked: ReadonlySet<string>;
  onSelect: (item: ListedDeadLetter) => void;
  onCheck: ((id: string, on: boolean) => void) | null;
  nowMs: number;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const v = useVirtualizer({ count: items.length, getScrollElement: () => ref.current, estimateSize: () => ROW, overscan: 10 });
  useEffect(() => {
    if (!selectedId) return;
    const i = items.findIndex((x) => x.dl.message.id === selectedId);
    if (i >= 0) v.scrollToIndex(i, { align: "auto" });
    // Only when the selection or the list length changes, so scrolling stays free.
  }, [selectedId, items.length]);
  return (
    <div className="vlist" ref={ref} data-testid="dead-letter-list" role="listbox" aria-label="Dead letters">
      <div style={{ height: v.getTotalSize(), position: "relative" }}>
        {v.getVirtualItems().map((it) => {
          const { dl, listedFrom } = items[it.index];
          const id = dl.message.id;
          return (
            <div key={`${listedFrom}:${id}`} className={`vrow${id === selectedId ? " is-selected" : ""}`} style={{ top: it.start, height: ROW }} onClick={() => onSelect(items[it.index])} role="option" aria-selected={id === selectedId} data-testid="dead-letter-row" data-message-id={id} data-queue={listedFrom}>
              <div className="vrow-line">
                {onCheck && (
                  <input type="checkbox" checked={checked.has(id)} onClick={(e) => e.stopPropagation()} onChange={(e) => onCheck(id, e.target.checked)} aria-label={`select ${id}`} />
                )}
                <code>{shortId(id)}</code>
                <Badge tone="error">{dl.reason.replace(/_/g, " ")}</Badge>
                <span>{dl.original_queue}</span>
                <span className="muted">attempts {dl.attempts}</span>
                <span className="muted">{formatAgeMs(nowMs - dl.dead_lettered_ms)} ago</span>
              </div>
              <div className="vrow-preview error-text">{dl.last_error ?? "(no error recorded)"}</div>
            </div>
          );
        })}
      </div>
    </div>
  );
}
