// One message, all of it, as text: fields, headers, pretty-printed payload and history.

import type { ReactNode } from "react";
import type { Message } from "../../api/types";
import { Badge } from "../../kit/badge";
import { Copyable } from "../../kit/copy";
import { KeyValues, TextBlock } from "../../kit/text-block";
import { formatDateTime } from "../../util/format";
import { payloadText } from "../../util/payload";
import { hrefs } from "../../util/route";

export function MessageDetail({ message, children, links = true }: { message: Message; children?: ReactNode; links?: boolean }) {
  const p = payloadText(message);
  const headers = Object.entries(message.headers ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return (
    <div className="message-detail" data-testid="message-detail">
      {links && (
        <div className="link-row">
          <a href={hrefs.message(message.id)}>Open message page</a>
          <a href={hrefs.flow(message.correlation_id)}>Open its flow</a>
        </div>
      )}
      <KeyValues rows={[
        ["id", <Copyable text={message.id} />],
        ["queue", <a href={hrefs.queue(message.queue)}>{message.queue}</a>],
        ["correlation id", <a href={hrefs.flow(message.correlation_id)}>{message.correlation_id}</a>],
        ["causation id", message.causation_id ?? "–"],
        ["source", message.source ?? "–"],
        ["reply to", message.reply_to ?? "–"],
        ["sent", formatDateTime(message.timestamp_ms)],
        ["attempts", String(message.attempts)],
        ["content type", message.content_type],
        ["traceparent", message.traceparent ?? "–"],
      ]} />
      <h4>Headers ({headers.length})</h4>
      {headers.length === 0 ? <p className="muted">No headers.</p> : (
        <KeyValues testId="message-headers" rows={headers.map(([k, v]) => [k, v === null ? "null" : String(v)])} />
      )}
      <h4>Payload <Badge>{p.kind}{p.bytes !== undefined ? `, ${p.bytes} bytes` : ""}</Badge></h4>
      {p.kind === "empty" ? <p className="muted">Empty payload.</p> : <TextBlock text={p.text} testId="message-payload" />}
      {children}
    </div>
  );
}
