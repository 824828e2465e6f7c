import { useMemo, useState } from "react";
import type { QueueSummary } from "../../api/types";
import { Sparkline } from "../../kit/sparkline";
import { formatAgeMs, formatCount, formatRate } from "../../util/format";
import { hrefs } from "../../util/route";

export type SortKey = "name" | "ready" | "in_flight" | "scheduled" | "dead_lettered" | "oldest" | "rate";

export function QueueTable({ queues, rateOf }: { queues: QueueSummary[]; rateOf: (name: string) => number[] }) {
  const [filter, setFilter] = useState("");
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: "name", desc: false });
  const rows = useMemo(() => {
    const f = filter.trim().toLowerCase();
    const list = queues.filter((q) => !f || q.name.toLowerCase().includes(f));
    const val = (q: QueueSummary): number | string => {
      switch (sort.key) {
        case "name": return q.name;
        case "oldest": return q.stats.oldest_age_ms ?? -1;
        case "rate": { const r = rateOf(q.name); return r.slice(-10).reduce((a, b) => a + b, 0); }
        default: return q.stats[sort.key];
      }
    };
    return [...list].sort((a, b) => {
      const x = val(a);
      const y = val(b);
      const c = typeof x === "string" ? x.localeCompare(String(y)) : (x as number) - (y as number);
      return sort.desc ? -c : c;
    });
  }, [queues, filter, sort, rateOf]);
  const th = (key: SortKey, label: string, title?: string) => (
    <th className={key === "name" ? "" : "num"} title={title} aria-sort={sort.key === key ? (sort.desc ? "descending" : "ascending") : "none"}>
      <button type="button" className="th-sort" onClick={() => setSort((s) => ({ key, desc: s.key === key ? !s.desc : key !== "name" }))}>
        {label}{sort.key === key ? (sort.desc ? " ↓" : " ↑") : ""}
      </button>
    </th>
  );
  return (
    <div>
      <div className="toolbar">
        <input className="filter" placeholder="Filter queues by name" value={filter} onChange={(e) => setFilter(e.target.value)} aria-label="Filter queues" />
        <span className="muted">{formatCount(rows.length)} of {formatCount(queues.length)} queues</span>
      </div>
      <table className="table" data-testid="queue-table">
        <thead>
          <tr>
            {th("name", "Queue")}
            {th("ready", "Ready")}
            {th("in_flight", "In flight", "leased to a consumer, not yet acked")}
            {th("scheduled", "Retrying", "scheduled: waiting for a retry backoff or a delay")}
            {th("dead_lettered", "Dead-lettered")}
            {th("oldest", "Oldest", "age of the oldest ready message")}
            <th className="num">Consumers</th>
            {th("rate", "Acked/s (1 min)")}
          </tr>
        </thead>
        <tbody>
          {rows.map((q) => {
            const r = rateOf(q.name);
            const now = r.slice(-5).reduce((a, b) => a + b, 0) / 5;
            return (
              <tr key={q.name} data-testid="queue-row" data-queue={q.name}>
                <td><a href={hrefs.queue(q.name)}>{q.name}</a></td>
                <td className="num">{formatCount(q.stats.ready)}</td>
                <td className="num">{formatCount(q.stats.in_flight)}</td>
                <td className={`num${q.stats.scheduled > 0 ? " warn-text" : ""}`}>{formatCount(q.stats.scheduled)}</td>
                <td className="num">{q.stats.dead_lettered > 0 ? <a className="error-text" href={hrefs.deadLetters(q.name)}>{formatCount(q.stats.dead_lettered)}</a> : "0"}</td>
                <td className="num">{q.stats.oldest_age_ms == null ? "–" : formatAgeMs(q.stats.oldest_age_ms)}</td>
                <td className="num">{formatCount(q.consumers)}</td>
                <td className="num spark-cell"><Sparkline values={r} label={`${q.name}: acked per second over the last minute`} /> <span>{formatRate(now)}</span></td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
