// Everything about one span, as text, with links to where its message lives.

import type { Span } from "../../api/types";
import { Badge } from "../../kit/badge";
import { Button } from "../../kit/button";
import { Copyable } from "../../kit/copy";
import { KeyValues, TextBlock } from "../../kit/text-block";
import { formatClock, formatDurationUs } from "../../util/format";
import { hrefs } from "../../util/route";
import { isErrorSpan } from "../../util/waterfall";

export function SpanDetails({ span, onClose }: { span: Span; onClose?: () => void }) {
  const attrs = Object.entries(span.attributes ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const error = isErrorSpan(span);
  return (
    <aside className="panel span-details" data-testid="span-details">
      <header className="panel-head">
        <h3>{span.name}</h3>
        {onClose && <Button variant="ghost" onClick={onClose} aria-label="close span details">✕</Button>}
      </header>
      <div className="badges">
        <Badge tone={error ? "error" : span.status === "ok" ? "ok" : "neutral"}>{span.status}</Badge>
        <Badge>{span.kind}</Badge>
        {span.operation && <Badge tone={error ? "error" : "info"}>{span.operation}</Badge>}
        {span.attempt ? <Badge tone={span.attempt > 1 ? "warn" : "neutral"}>attempt {span.attempt}</Badge> : null}
      </div>
      {span.status_message && <TextBlock className="error-text" text={span.status_message} testId="span-error" />}
      <div className="link-row">
        {span.message_id && <a href={hrefs.message(span.message_id)}>Open message</a>}
        {span.queue && <a href={hrefs.queue(span.queue)}>Open queue {span.queue}</a>}
        {span.queue && span.message_id && span.operation === "dead_letter" && (
          <a href={hrefs.deadLetters(span.queue, span.message_id)}>Open dead letter</a>
        )}
      </div>
      <KeyValues rows={[
        ["start", `${formatClock(span.start_us / 1000)} UTC`],
        ["duration", formatDurationUs(span.duration_us)],
        ["queue", span.queue ?? "–"],
        ["message id", span.message_id ? <Copyable text={span.message_id} /> : "–"],
        ["correlation id", span.correlation_id ? <a href={hrefs.flow(span.correlation_id)}>{span.correlation_id}</a> : "–"],
        ["causation id", span.causation_id ?? "–"],
        ["outcome", span.outcome ?? "–"],
        ["trace id", <Copyable text={span.trace_id} />],
        ["span id", <Copyable text={span.span_id} />],
        ["parent span", span.parent_span_id ?? "–"],
        ...(span.links ?? []).map((l, i): [string, string] => [`link ${i + 1}`, `${l.trace_id} / ${l.span_id}`]),
      ]} />
      <h4>Attributes ({attrs.length})</h4>
      {attrs.length === 0 ? <p className="muted">No attributes.</p> : (
        <KeyValues testId="span-attributes" rows={attrs.map(([k, v]) => [k, String(v)])} />
      )}
    </aside>
  );
}
