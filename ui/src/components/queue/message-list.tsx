// A virtualized list of messages: 10,000 peeked messages cost ~30 DOM rows.

import { useVirtualizer } from "@tanstack/react-virtual";
import { useRef } from "react";
import type { Message } from "../../api/types";
import { formatClock, shortId } from "../../util/format";
import { payloadPreview } from "../../util/payload";

const ROW = 44;

export function MessageList({ messages, selectedId, onSelect }: { messages: Message[]; selectedId?: string; onSelect: (m: Message) => void }) {
  const ref = useRef<HTMLDivElement>(null);
  const v = useVirtualizer({ count: messages.length, getScrollElement: () => ref.current, estimateSize: () => ROW, overscan: 10 });
  return (
    <div className="vlist" ref={ref} data-testid="message-list" role="listbox" aria-label="Messages">
      <div style={{ height: v.getTotalSize(), position: "relative" }}>
        {v.getVirtualItems().map((it) => {
          const m = messages[it.index];
          return (
            <div key={m.id} className={`vrow${m.id === selectedId ? " is-selected" : ""}`} style={{ top: it.start, height: ROW }} onClick={() => onSelect(m)} role="option" aria-selected={m.id === selectedId} data-testid="message-row">
              <div className="vrow-line">
                <code>{shortId(m.id)}</code>
                <span className="muted">{formatClock(m.timestamp_ms)}</span>
                {m.attempts > 0 && <span className={m.attempts > 1 ? "warn-text" : "muted"}>attempts {m.attempts}</span>}
                {m.source && <span className="muted">from {m.source}</span>}
              </div>
              <div className="vrow-preview">{payloadPreview(m)}</div>
            </div>
          );
        })}
      </div>
    </div>
  );
}
