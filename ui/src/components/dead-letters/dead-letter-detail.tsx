import type { ReactNode } from "react";
import type { DeadLetter } from "../../api/types";
import { Badge } from "../../kit/badge";
import { KeyValues, TextBlock } from "../../kit/text-block";
import { formatClock, formatDateTime } from "../../util/format";
import { hrefs } from "../../util/route";
import { MessageDetail } from "../queue/message-detail";

export function DeadLetterDetail({ dl, actions }: { dl: DeadLetter; actions?: ReactNode }) {
  return (
    <div className="dead-letter-detail" data-testid="dead-letter-detail">
      <div className="badges">
        <Badge tone="error">{dl.reason.replace(/_/g, " ")}</Badge>
        <span>from <a href={hrefs.queue(dl.original_queue)}>{dl.original_queue}</a></span>
        <span className="muted">after {dl.attempts} attempts, {formatDateTime(dl.dead_lettered_ms)}</span>
      </div>
      {actions}
      <h4>Last error</h4>
      {dl.last_error ? <TextBlock className="error-text" text={dl.last_error} testId="last-error" /> : <p className="muted">No error recorded (reason: {dl.reason}).</p>}
      <div className="link-row">
        <a href={hrefs.flow(dl.message.correlation_id)} data-testid="open-flow">Open its flow</a>
        <a href={hrefs.message(dl.message.id)}>Message history</a>
      </div>
      {(dl.history ?? []).length > 0 && (
        <>
          <h4>History</h4>
          <KeyValues rows={dl.history.map((h) => [formatClock(h.at_ms), `${h.event}${h.detail ? ` — ${h.detail}` : ""}`])} />
        </>
      )}
      <MessageDetail message={dl.message} links={false} />
    </div>
  );
}
