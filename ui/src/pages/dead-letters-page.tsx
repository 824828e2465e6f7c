// Dead letters: browse by queue and reason, read the last error, then retry, purge or move
// one, the selected, or all matching, each after a confirmation that states the count.

import { useEffect, useMemo, useRef, useState } from "react";
import { listDeadLetters, type DeadLetterAction } from "../api/dead-letters";
import { listQueues } from "../api/queues";
import type { DeadLetterReason, Role } from "../api/types";
import { DeadLetterActionDialog } from "../components/dead-letters/action-dialog";
import { DeadLetterDetail } from "../components/dead-letters/dead-letter-detail";
import { DeadLetterList, type ListedDeadLetter } from "../components/dead-letters/dead-letter-list";
import { Button } from "../kit/button";
import { Empty, ErrorState, Loading } from "../kit/states";
import { useDeadLetterActions, type ActionGroup } from "../state/dead-letter-actions";
import { live } from "../state/live";
import { useResource } from "../state/resource";
import { navigate } from "../state/router";
import { useStore } from "../state/store";
import { formatCount, plural } from "../util/format";
import { countReasons, errorShape, groupErrors } from "../util/group-errors";
import { href, hrefs } from "../util/route";
import { can } from "../util/roles";

const REASONS: DeadLetterReason[] = ["rejected", "max_retries", "expired", "overflow"];
const LIMITS = [100, 1000, 10_000];

export function DeadLettersPage({ queue, id, reason, role }: { queue?: string; id?: string; reason?: DeadLetterReason; role: Role }) {
  const state = useStore(live);
  const queuesRes = useResource((c, s) => listQueues(c, s), []);
  const queues = state.latest?.queues ?? queuesRes.data ?? [];
  const withDead = queues.filter((q) => q.stats.dead_lettered > 0);
  const [limit, setLimit] = useState(1000);
  const [text, setText] = useState("");
  const [shape, setShape] = useState<string | null>(null);
  const [checked, setChecked] = useState<ReadonlySet<string>>(new Set());
  const [moveTo, setMoveTo] = useState("");

  // Which queues to list: the one in the URL, or every queue that has dead letters plus the
  // dead-letter queues they name (docs/api.md leaves open whether {name} is the origin or
  // the queue holding them; listing both and de-duplicating works either way).
  const known = new Set(queues.map((q) => q.name));
  const sources = queue !== undefined ? [queue] : [...new Set(withDead.flatMap((q) => {
    const dlq = q.spec.dead_letter_queue;
    return dlq && known.has(dlq) ? [q.name, dlq] : [q.name];
  }))];
  const sourcesKey = sources.join("\u0000");
  const list = useResource(async (c, signal) => {
    const pages = await Promise.all(sources.map(async (name) => ({ name, page: await listDeadLetters(c, name, { reason, limit, signal }) })));
    const seen = new Set<string>();
    const items: ListedDeadLetter[] = [];
    for (const { name, page } of pages) {
      for (const dl of page.dead_letters) {
        if (seen.has(dl.message.id)) continue;
        seen.add(dl.message.id);
        items.push({ dl, listedFrom: name });
      }
    }
    items.sort((a, b) => b.dl.dead_lettered_ms - a.dl.dead_lettered_ms);
    // With both an origin and its DLQ listed, the same dead letters may be counted twice.
    const total = queue !== undefined ? pages[0]?.page.total ?? 0 : Math.max(items.length, withDead.reduce((n, q) => n + q.stats.dead_lettered, 0));
    return { items, total };
  }, [sourcesKey, reason, limit]);

  const actions = useDeadLetterActions(() => { setChecked(new Set()); list.reload(); queuesRes.reload(); });

  const items = useMemo(() => {
    const t = text.trim().toLowerCase();
    let all = list.data?.items ?? [];
    if (shape !== null) all = all.filter(({ dl }) => errorShape(dl.last_error) === shape);
    if (!t) return all;
    return all.filter(({ dl }) => (dl.last_error ?? "").toLowerCase().includes(t) || dl.message.id.toLowerCase().includes(t) || dl.message.correlation_id.toLowerCase().includes(t));
  }, [list.data, text, shape]);
  const causes = useMemo(() => {
    const dls = (list.data?.items ?? []).map((x) => x.dl);
    return { reasons: countReasons(dls), errors: groupErrors(dls) };
  }, [list.data]);
  const selected = items.find((x) => x.dl.message.id === id) ?? list.data?.items.find((x) => x.dl.message.id === id);
  const mayAct = can(role, "retry");

  const go = (next: { queue?: string; id?: string; reason?: DeadLetterReason }) => navigate(href({ page: "dead-letters", ...next }), true);

  const selectedGroups = (): ActionGroup[] => groupsOf((list.data?.items ?? []).filter((x) => checked.has(x.dl.message.id)));
  // With a client-side filter (error group or text) "matching" means the rows shown, by id;
  // otherwise it is the server-side selection by reason, which also covers rows not loaded.
  const filtered = shape !== null || text.trim() !== "";
  const groupsOf = (list: ListedDeadLetter[]): ActionGroup[] => {
    const byQueue = new Map<string, string[]>();
    for (const x of list) byQueue.set(x.listedFrom, [...(byQueue.get(x.listedFrom) ?? []), x.dl.message.id]);
    return [...byQueue].map(([q, ids]) => ({ queue: q, selection: { ids } }));
  };
  const matchingGroups = (): ActionGroup[] => filtered ? groupsOf(items) : sources.map((q) => ({ queue: q, selection: reason ? { reason } : {} }));
  const matchingLabel = filtered ? `the ${plural(items.length, "dead letter")} shown by the current filter` : reason ? `all dead letters with reason ${reason.replace(/_/g, " ")}` : "all dead letters";
  const matchingWord = filtered ? "shown" : "matching";
  const moveAction = (): DeadLetterAction | null => (moveTo ? { kind: "move", to: moveTo } : null);

  const bulk = (kind: "retry" | "purge" | "move", scope: "selected" | "matching") => {
    const action: DeadLetterAction | null = kind === "move" ? moveAction() : { kind };
    if (!action) return;
    const groups = scope === "selected" ? selectedGroups() : matchingGroups();
    void actions.prepare(action, groups, scope === "selected" ? `${checked.size} selected` : matchingLabel);
  };
  const one = (kind: "retry" | "purge" | "move", x: ListedDeadLetter) => {
    const action: DeadLetterAction | null = kind === "move" ? moveAction() : { kind };
    if (!action) return;
    void actions.prepare(action, [{ queue: x.listedFrom, selection: { ids: [x.dl.message.id] } }], `message ${x.dl.message.id}`);
  };

  const scopeName = queue ?? "all queues";
  // Live counts from the overview stream, to say when the loaded list is out of date.
  const liveTotal = state.latest
    ? queue !== undefined
      ? state.latest.queues.find((q) => q.name === queue)?.stats.dead_lettered ?? null
      : withDead.reduce((n, q) => n + q.stats.dead_lettered, 0)
    : null;
  // The live count when the list arrived; a change since then means the list is out of date.
  // (Comparing against the list's own total would depend on whether the server counts dead
  // letters on the origin queue or on the queue holding them.)
  const [totalAtLoad, setTotalAtLoad] = useState<number | null>(null);
  const liveTotalRef = useRef(liveTotal);
  liveTotalRef.current = liveTotal;
  useEffect(() => { setTotalAtLoad(liveTotalRef.current); }, [list.data]);
  const dlqOf = (name: string) => queues.find((q) => q.name === name)?.spec.dead_letter_queue ?? undefined;
  return (
    <div data-testid="dead-letters-page">
      <div className="page-head">
        <h1>Dead letters <span className="muted">· {scopeName}</span></h1>
      </div>
      <div className="toolbar">
        <select value={queue ?? ""} onChange={(e) => go({ queue: e.target.value || undefined, reason })} aria-label="queue" data-testid="dl-queue">
          <option value="">All queues with dead letters ({withDead.length})</option>
          {queues.map((q) => <option key={q.name} value={q.name}>{q.name} ({formatCount(q.stats.dead_lettered)})</option>)}
          {queue && !queues.some((q) => q.name === queue) && <option value={queue}>{queue}</option>}
        </select>
        <select value={reason ?? ""} onChange={(e) => go({ queue, reason: (e.target.value || undefined) as DeadLetterReason | undefined })} aria-label="reason" data-testid="dl-reason">
          <option value="">Any reason</option>
          {REASONS.map((r) => <option key={r} value={r}>{r.replace(/_/g, " ")}</option>)}
        </select>
        <input className="filter" placeholder="Filter by error text, message or correlation id" value={text} onChange={(e) => setText(e.target.value)} aria-label="filter dead letters" />
        <select value={limit} onChange={(e) => setLimit(Number(e.target.value))} aria-label="how many to load per queue">
          {LIMITS.map((l) => <option key={l} value={l}>load {formatCount(l)}/queue</option>)}
        </select>
        <Button onClick={list.reload} disabled={list.loading}>{list.loading ? "Loading…" : "Refresh"}</Button>
      </div>
      {mayAct && (
        <div className="toolbar action-bar" data-testid="dl-actions">
          <span className="muted">{checked.size > 0 ? `${checked.size} selected:` : "Select rows, or act on"}</span>
          {checked.size > 0 ? (
            <>
              <Button variant="primary" onClick={() => bulk("retry", "selected")} data-testid="retry-selected">Retry selected</Button>
              <Button variant="danger" onClick={() => bulk("purge", "selected")}>Purge selected</Button>
              <Button onClick={() => bulk("move", "selected")} disabled={!moveTo}>Move selected</Button>
              <Button variant="ghost" onClick={() => setChecked(new Set())}>Clear selection</Button>
            </>
          ) : (
            <>
              <Button variant="primary" onClick={() => bulk("retry", "matching")} disabled={sources.length === 0} data-testid="retry-matching">Retry all {matchingWord}</Button>
              <Button variant="danger" onClick={() => bulk("purge", "matching")} disabled={sources.length === 0}>Purge all {matchingWord}</Button>
              <Button onClick={() => bulk("move", "matching")} disabled={!moveTo || sources.length === 0}>Move all {matchingWord}</Button>
            </>
          )}
          <label>to queue <select value={moveTo} onChange={(e) => setMoveTo(e.target.value)} aria-label="move target">
            <option value="">(pick for move)</option>
            {queues.map((q) => <option key={q.name} value={q.name}>{q.name}</option>)}
          </select></label>
        </div>
      )}
      {list.error ? <ErrorState error={list.error} what="dead letters" onRetry={list.reload} /> :
        !list.data ? (queue === undefined && !queuesRes.data && !state.latest ? <Loading what="queues" /> : <Loading what="dead letters" />) :
        list.data.items.length === 0 ? (
          <Empty title={reason ? `No dead letters with reason ${reason.replace(/_/g, " ")}` : "No dead letters"}>
            {queue ? <>
              Nothing failed for good in {queue}.{" "}
              {dlqOf(queue) && <>Its dead-letter queue is <a href={hrefs.deadLetters(dlqOf(queue)!)}>{dlqOf(queue)}</a>. </>}
              <a href={hrefs.deadLetters()}>Look across all queues</a>.
            </> : "Every message was either acked or is still being retried. Nothing needs an operator."}
          </Empty>
        ) : (
          <>
            <div className="causes" data-testid="dl-causes">
              <span className="muted">Reasons:</span>
              {causes.reasons.map(([r, n]) => (
                <button key={r} type="button" className={`chip${reason === r ? " is-active" : ""}`} onClick={() => go({ queue, reason: reason === r ? undefined : r })}>
                  {r.replace(/_/g, " ")} <b>{formatCount(n)}</b>
                </button>
              ))}
              <span className="muted">Errors:</span>
              {causes.errors.map((g) => (
                <button key={g.shape} type="button" className={`chip chip-error${shape === g.shape ? " is-active" : ""}`} title={g.example} onClick={() => setShape(shape === g.shape ? null : g.shape)}>
                  {g.shape.length > 70 ? `${g.shape.slice(0, 70)}…` : g.shape} <b>{formatCount(g.count)}</b>
                </button>
              ))}
              {shape !== null && <Button variant="ghost" onClick={() => setShape(null)}>Clear error filter</Button>}
            </div>
            {liveTotal !== null && totalAtLoad !== null && liveTotal !== totalAtLoad && !list.loading && (
              <div className="notice info" data-testid="dl-stale">
                {liveTotal > totalAtLoad ? `${plural(liveTotal - totalAtLoad, "new dead letter")} since this list was loaded.` : `${plural(totalAtLoad - liveTotal, "dead letter")} handled since this list was loaded.`}{" "}
                <Button onClick={list.reload}>Refresh</Button>
              </div>
            )}
            <p className="muted small">{plural(items.length, "dead letter")} shown of {formatCount(list.data.total)}{list.data.items.length < list.data.total ? " (raise the load limit to see more; 'all matching' actions cover every one)" : ""}.</p>
            <div className="split">
              <DeadLetterList
                items={items}
                selectedId={id}
                checked={checked}
                nowMs={state.latest?.at_ms ?? Date.now()}
                onSelect={(x) => go({ queue, id: x.dl.message.id, reason })}
                onCheck={mayAct ? (mid, on) => setChecked((c) => { const n = new Set(c); if (on) n.add(mid); else n.delete(mid); return n; }) : null}
              />
              <div className="split-detail">
                {selected ? (
                  <DeadLetterDetail dl={selected.dl} actions={mayAct ? (
                    <div className="toolbar" data-testid="dl-one-actions">
                      <Button variant="primary" onClick={() => one("retry", selected)} data-testid="retry-one">Retry</Button>
                      <Button variant="danger" onClick={() => one("purge", selected)}>Purge</Button>
                      <Button onClick={() => one("move", selected)} disabled={!moveTo} title={moveTo ? `move to ${moveTo}` : "pick a target queue in the bar above"}>Move{moveTo ? ` to ${moveTo}` : ""}</Button>
                    </div>
                  ) : null} />
                ) : id ? (
                  <Empty title="This dead letter is not in the list">It may have been retried or purged already, or it is beyond the load limit. <a href={hrefs.message(id)}>See its history</a>.</Empty>
                ) : (
                  <Empty title="Select a dead letter">Its last error, history, payload and headers show here{mayAct ? ", with retry, purge and move" : ""}.</Empty>
                )}
              </div>
            </div>
          </>
        )}
      <DeadLetterActionDialog actions={actions} />
    </div>
  );
}
