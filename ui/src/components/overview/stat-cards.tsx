import type { QueueStats } from "../../api/types";
import { formatCount } from "../../util/format";
import { hrefs } from "../../util/route";

export function StatCards({ totals }: { totals: QueueStats }) {
  const cards: [string, number, string, string?][] = [
    ["Ready", totals.ready, "waiting for a consumer"],
    ["In flight", totals.in_flight, "leased, not yet acked"],
    ["Retrying", totals.scheduled, "waiting for a backoff or delay"],
    ["Dead-lettered", totals.dead_lettered, "need an operator", hrefs.deadLetters()],
  ];
  return (
    <div className="stat-cards" data-testid="stat-cards">
      {cards.map(([label, n, hint, link]) => {
        const body = (
          <>
            <div className="stat-label">{label}</div>
            <div className="stat-value">{formatCount(n)}</div>
            <div className="stat-hint">{hint}</div>
          </>
        );
        const bad = label === "Dead-lettered" && n > 0;
        return link ? (
          <a key={label} className={`stat-card${bad ? " is-bad" : ""}`} href={link}>{body}</a>
        ) : (
          <div key={label} className="stat-card">{body}</div>
        );
      })}
    </div>
  );
}
