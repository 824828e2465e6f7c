// A message's history, read from its spans: sent, delivered, retried, dead-lettered, acked.

import { flowOfMessage } from "../../api/flows";
import { Badge } from "../../kit/badge";
import { ErrorState, Loading } from "../../kit/states";
import { useResource } from "../../state/resource";
import { formatClock, formatDurationUs } from "../../util/format";
import { hrefs } from "../../util/route";
import { isErrorSpan } from "../../util/waterfall";

export function MessageHistory({ id }: { id: string }) {
  const r = useResource((c, s) => flowOfMessage(c, id, s), [id]);
  if (r.loading && !r.data) return <Loading what="history" />;
  if (r.error) return <ErrorState error={r.error} what="this message's history" onRetry={r.reload} />;
  const spans = (r.data?.timeline ?? []).filter((s) => !s.message_id || s.message_id === id);
  if (spans.length === 0) return <p className="muted">No recorded spans for this message yet.</p>;
  return (
    <div>
      <h4>History ({spans.length} spans)</h4>
      <ol className="history" data-testid="message-history">
        {spans.slice(0, 200).map((s) => (
          <li key={`${s.trace_id}:${s.span_id}`} className={isErrorSpan(s) ? "error-text" : ""}>
            <span className="muted">{formatClock(s.start_us / 1000)}</span>{" "}
            <Badge tone={isErrorSpan(s) ? "error" : "neutral"}>{s.operation ?? s.kind}</Badge>{" "}
            <a href={hrefs.flow(s.correlation_id ?? id, s.span_id)}>{s.name}</a>
            {s.attempt ? <span className="muted"> · attempt {s.attempt}</span> : null}
            <span className="muted"> · {formatDurationUs(s.duration_us)}</span>
            {s.status_message && <div className="history-error">{s.status_message}</div>}
          </li>
        ))}
      </ol>
    </div>
  );
}
