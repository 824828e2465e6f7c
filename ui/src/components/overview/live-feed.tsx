import type { FeedEvent } from "../../api/types";
import { formatClock, shortId } from "../../util/format";
import { hrefs } from "../../util/route";

const BAD = new Set(["nacked", "dead_lettered", "expired", "rejected"]);

export function LiveFeed({ feed, max = 60 }: { feed: FeedEvent[]; max?: number }) {
  if (feed.length === 0) return <p className="muted">No message events yet. Events appear here as producers send and consumers ack.</p>;
  return (
    <ol className="feed" data-testid="live-feed">
      {feed.slice(0, max).map((e, i) => (
        <li key={`${e.at_ms}-${e.message_id}-${e.kind}-${i}`} className={BAD.has(e.kind) ? "error-text" : ""}>
          <span className="muted">{formatClock(e.at_ms)}</span>{" "}
          <span className="feed-kind">{e.kind.replace(/_/g, " ")}</span>{" "}
          <a href={hrefs.queue(e.queue)}>{e.queue}</a>{" "}
          <a href={hrefs.message(e.message_id)}><code>{shortId(e.message_id, 6)}</code></a>
          {e.attempt ? <span className="muted"> attempt {e.attempt}</span> : null}
          {e.detail ? <span className="muted"> — {e.detail}</span> : null}
        </li>
      ))}
    </ol>
  );
}
