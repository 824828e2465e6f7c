// A message by id: where it is now (queue, dead letters, or consumed), its content when the
// server still holds it, and its flow.

import { useState } from "react";
import { ApiError } from "../api/client";
import { listDeadLetters } from "../api/dead-letters";
import { flowOfMessage } from "../api/flows";
import { getQueue, peekMessages } from "../api/queues";
import type { DeadLetter, Flow, Message } from "../api/types";
import { DeadLetterDetail } from "../components/dead-letters/dead-letter-detail";
import { FlowView } from "../components/flow/flow-view";
import { MessageDetail } from "../components/queue/message-detail";
import { Badge } from "../kit/badge";
import { Empty, ErrorState, Loading } from "../kit/states";
import { useResource } from "../state/resource";
import { hrefs } from "../util/route";

type Where =
  | { at: "dead-letters"; queue: string; dl: DeadLetter }
  | { at: "queue"; queue: string; message: Message }
  | { at: "gone"; queue?: string; lastOperation?: string };

export function MessagePage({ id }: { id: string }) {
  const [span, setSpan] = useState<string | undefined>();
  const r = useResource(async (c, signal): Promise<{ flow: Flow; where: Where }> => {
    const flow = await flowOfMessage(c, id, signal);
    const mine = flow.timeline.filter((s) => s.message_id === id);
    const last = mine[mine.length - 1];
    const queue = last?.queue ?? mine.find((s) => s.queue)?.queue ?? undefined;
    if (!queue) return { flow, where: { at: "gone", lastOperation: last?.operation ?? undefined } };
    // Look where the message is held now; all lookups are bounded peeks. Its dead letter may
    // be listed under the queue or under that queue's dead-letter queue.
    const dlq = await getQueue(c, queue, signal).then((q) => q.spec.dead_letter_queue ?? null, () => null);
    const [dls, dlqDls, msgs] = await Promise.all([
      listDeadLetters(c, queue, { limit: 1000, signal }).catch(() => null),
      dlq ? listDeadLetters(c, dlq, { limit: 1000, signal }).catch(() => null) : null,
      peekMessages(c, queue, 1000, signal).catch(() => null),
    ]);
    const dl = dls?.dead_letters.find((d) => d.message.id === id);
    if (dl) return { flow, where: { at: "dead-letters", queue, dl } };
    const held = dlqDls?.dead_letters.find((d) => d.message.id === id);
    if (held && dlq) return { flow, where: { at: "dead-letters", queue: dlq, dl: held } };
    const m = msgs?.find((x) => x.id === id);
    if (m) return { flow, where: { at: "queue", queue, message: m } };
    return { flow, where: { at: "gone", queue, lastOperation: last?.operation ?? undefined } };
  }, [id]);

  if (r.error instanceof ApiError && r.error.code === "not_found") {
    return <Empty title={`No message ${id}`}>No spans mention this id. It may be older than the span retention, or mistyped. <a href={hrefs.flows()}>Look up a flow</a>.</Empty>;
  }
  if (r.error) return <ErrorState error={r.error} what={`message ${id}`} onRetry={r.reload} />;
  if (!r.data) return <Loading what={`message ${id}`} />;
  const { flow, where } = r.data;
  return (
    <div data-testid="message-page">
      <h1><span className="muted">message</span> {id}</h1>
      <div className="where" data-testid="message-where">
        {where.at === "dead-letters" && <><Badge tone="error">dead-lettered</Badge> in <a href={hrefs.deadLetters(where.queue, id)}>{where.queue} dead letters</a></>}
        {where.at === "queue" && <><Badge tone="info">waiting</Badge> in <a href={hrefs.queue(where.queue)}>{where.queue}</a></>}
        {where.at === "gone" && <><Badge tone="ok">not held</Badge> {where.lastOperation ? `last seen: ${where.lastOperation}` : ""}{where.queue ? <> on <a href={hrefs.queue(where.queue)}>{where.queue}</a></> : null} — consumed, in flight, or beyond the peek limit; its spans are below.</>}
        {flow.correlation_ids[0] && <> · <a href={hrefs.flow(flow.correlation_ids[0])}>whole correlation flow</a></>}
      </div>
      {where.at === "dead-letters" && <details open><summary>Dead letter</summary><DeadLetterDetail dl={where.dl} /></details>}
      {where.at === "queue" && <details open><summary>Message</summary><MessageDetail message={where.message} /></details>}
      <h2>Flow of this message</h2>
      <FlowView flow={flow} selectedSpanId={span} onSelectSpan={setSpan} />
    </div>
  );
}
