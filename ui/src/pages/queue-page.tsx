// One queue: live stats, settings, peeked messages with details, and role-gated actions.

import { useMemo, useState } from "react";
import { ApiError, explain } from "../api/client";
import { deleteQueue, getQueue, peekMessages } from "../api/queues";
import type { Message, QueueSpec, Role } from "../api/types";
import { DeadLetterActionDialog } from "../components/dead-letters/action-dialog";
import { MessageDetail } from "../components/queue/message-detail";
import { MessageHistory } from "../components/queue/message-history";
import { MessageList } from "../components/queue/message-list";
import { Button } from "../kit/button";
import { ConfirmDialog } from "../kit/confirm-dialog";
import { Empty, ErrorState, Loading } from "../kit/states";
import { KeyValues } from "../kit/text-block";
import { useDeadLetterActions } from "../state/dead-letter-actions";
import { live } from "../state/live";
import { useClient, useResource } from "../state/resource";
import { navigate } from "../state/router";
import { useStore } from "../state/store";
import { toast } from "../state/toasts";
import { formatAgeMs, formatCount, plural } from "../util/format";
import { hrefs } from "../util/route";
import { can } from "../util/roles";

const LIMITS = [50, 500, 10_000];

export function QueuePage({ name, role }: { name: string; role: Role }) {
  const client = useClient();
  const q = useResource((c, s) => getQueue(c, name, s), [name]);
  const [limit, setLimit] = useState(500);
  const msgs = useResource((c, s) => peekMessages(c, name, limit, s), [name, limit]);
  const state = useStore(live);
  const [selected, setSelected] = useState<Message | null>(null);
  const [tab, setTab] = useState<"messages" | "settings">("messages");
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [busy, setBusy] = useState(false);

  const dlActions = useDeadLetterActions(() => q.reload());
  const summary = state.latest?.queues.find((x) => x.name === name) ?? q.data;
  if (!summary) {
    if (q.error instanceof ApiError && q.error.code === "unknown_queue") {
      return <Empty title={`Queue ${name} does not exist`}>It may have been deleted. <a href={hrefs.queues()}>See all queues</a>.</Empty>;
    }
    if (q.error) return <ErrorState error={q.error} what={`queue ${name}`} onRetry={q.reload} />;
    return <Loading what={`queue ${name}`} />;
  }
  const st = summary.stats;
  const total = st.ready + st.in_flight + st.scheduled + st.dead_lettered;

  const doDelete = async () => {
    setBusy(true);
    try {
      const n = await deleteQueue(client, name);
      toast("ok", `Deleted queue ${name} and ${plural(n, "message")}`);
      navigate(hrefs.queues());
    } catch (e) {
      toast("error", `Delete failed: ${explain(e)}`);
    } finally {
      setBusy(false);
      setConfirmDelete(false);
    }
  };

  return (
    <div data-testid="queue-page">
      <div className="page-head">
        <h1><span className="muted">queue</span> {name}</h1>
        <div className="actions">
          {st.dead_lettered > 0 && <a className="btn btn-default" href={hrefs.deadLetters(name)}>{plural(st.dead_lettered, "dead letter")} →</a>}
          {st.dead_lettered > 0 && can(role, "retry") && (
            <Button variant="primary" data-testid="queue-retry-all" onClick={() => void dlActions.prepare({ kind: "retry" }, [{ queue: name, selection: {} }], `every dead letter of ${name}`)}>Retry all dead letters</Button>
          )}
          {can(role, "delete") && <Button variant="danger" onClick={() => setConfirmDelete(true)} data-testid="delete-queue">Delete queue</Button>}
        </div>
      </div>
      <div className="stat-cards small">
        <Stat label="Ready" value={formatCount(st.ready)} />
        <Stat label="In flight" value={formatCount(st.in_flight)} />
        <Stat label="Retrying" value={formatCount(st.scheduled)} />
        <Stat label="Dead-lettered" value={formatCount(st.dead_lettered)} bad={st.dead_lettered > 0} />
        <Stat label="Oldest" value={formatAgeMs(st.oldest_age_ms)} />
        <Stat label="Consumers" value={formatCount(summary.consumers)} bad={summary.consumers === 0 && st.ready > 0} />
      </div>
      <div className="tabs" role="tablist">
        <button type="button" role="tab" aria-selected={tab === "messages"} className={tab === "messages" ? "is-active" : ""} onClick={() => setTab("messages")}>Messages</button>
        <button type="button" role="tab" aria-selected={tab === "settings"} className={tab === "settings" ? "is-active" : ""} onClick={() => setTab("settings")}>Settings</button>
        <a href={hrefs.deadLetters(name)} className="tab-link">Dead letters ({formatCount(st.dead_lettered)})</a>
      </div>
      {tab === "settings" ? <Settings spec={summary.spec} /> : (
        <div>
          <div className="toolbar">
            <span>Peek at</span>
            <select value={limit} onChange={(e) => setLimit(Number(e.target.value))} aria-label="how many messages to peek">
              {LIMITS.map((l) => <option key={l} value={l}>{formatCount(l)}</option>)}
            </select>
            <span>messages (read-only, not leased)</span>
            <Button onClick={msgs.reload} disabled={msgs.loading}>{msgs.loading ? "Loading…" : "Refresh"}</Button>
            {msgs.data && !msgs.loading && <span className="muted" data-testid="peek-count">{plural(msgs.data.length, "message")} shown</span>}
          </div>
          {msgs.error ? <ErrorState error={msgs.error} what="messages" onRetry={msgs.reload} /> :
            !msgs.data ? <Loading what="messages" /> :
            msgs.data.length === 0 ? <Empty title="No ready messages">Nothing is waiting in {name}. In-flight and retrying messages are not peekable; see the flows for their history.</Empty> : (
              <div className="split">
                <MessageList messages={msgs.data} selectedId={selected?.id} onSelect={setSelected} />
                <div className="split-detail">
                  {selected ? (
                    <MessageDetail message={selected}><MessageHistory id={selected.id} /></MessageDetail>
                  ) : <Empty title="Select a message">Its payload, headers, attempts and history show here.</Empty>}
                </div>
              </div>
            )}
        </div>
      )}
      <DeadLetterActionDialog actions={dlActions} />
      {confirmDelete && (
        <ConfirmDialog title={`Delete queue ${name}?`} confirmLabel={`Delete queue and ${plural(total, "message")}`} danger busy={busy} onCancel={() => setConfirmDelete(false)} onConfirm={doDelete}>
          <p>This deletes the queue and its {plural(total, "message")} (ready, in flight, retrying and dead-lettered). This cannot be undone.</p>
        </ConfirmDialog>
      )}
    </div>
  );
}

function Stat({ label, value, bad }: { label: string; value: string; bad?: boolean }) {
  return <div className={`stat-card${bad ? " is-bad" : ""}`}><div className="stat-label">{label}</div><div className="stat-value">{value}</div></div>;
}

function Settings({ spec }: { spec: QueueSpec }) {
  const rows = useMemo((): [string, string][] => [
    ["durable", String(spec.durable ?? true)],
    ["exclusive", String(spec.exclusive ?? false)],
    ["auto delete", String(spec.auto_delete ?? false)],
    ["dead-letter queue", spec.dead_letter_queue ?? "–"],
    ["max retries", spec.max_retries == null ? "–" : String(spec.max_retries)],
    ["message TTL", spec.message_ttl_ms == null ? "–" : formatAgeMs(spec.message_ttl_ms)],
    ["max length", spec.max_length == null ? "–" : formatCount(spec.max_length)],
    ["overflow", spec.overflow ?? "–"],
    ["backoff", spec.backoff ? `${formatAgeMs(spec.backoff.initial_ms)} × ${spec.backoff.multiplier} up to ${formatAgeMs(spec.backoff.max_ms)}, jitter ${spec.backoff.jitter}` : "–"],
  ], [spec]);
  return <KeyValues testId="queue-settings" rows={rows} />;
}
