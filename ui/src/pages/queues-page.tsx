import { useMemo, useState } from "react";
import { listQueues } from "../api/queues";
import { QueueTable } from "../components/queue/queue-table";
import { DeclareQueueForm } from "../components/queue/declare-queue-form";
import { Button } from "../kit/button";
import { Empty, ErrorState, Loading } from "../kit/states";
import { live, rates } from "../state/live";
import { useResource } from "../state/resource";
import { useStore } from "../state/store";
import type { Role } from "../api/types";
import { can } from "../util/roles";

export function QueuesPage({ role }: { role: Role }) {
  const r = useResource((c, s) => listQueues(c, s), []);
  const state = useStore(live);
  const [declaring, setDeclaring] = useState(false);
  // Live overviews carry every queue's stats; use them once they arrive.
  const queues = state.latest?.queues ?? r.data;
  const now = state.latest?.at_ms ?? Date.now();
  const version = state.feedVersion;
  // A new function whenever `now` or `version` (new feed events counted) changes, so the
  // table re-reads the counter; the counter itself is mutable and not a dependency.
  const rateOf = useMemo(() => {
    void version;
    return (name: string) => rates.series(name, now);
  }, [now, version]);

  return (
    <div data-testid="queues-page">
      <div className="page-head">
        <h1>Queues</h1>
        {can(role, "declare") && <Button onClick={() => setDeclaring((d) => !d)} data-testid="declare-toggle">{declaring ? "Close" : "Declare queue"}</Button>}
      </div>
      {declaring && <DeclareQueueForm onDone={() => { setDeclaring(false); r.reload(); }} />}
      {!queues ? (
        r.error ? <ErrorState error={r.error} what="queues" onRetry={r.reload} /> : <Loading what="queues" />
      ) : queues.length === 0 ? (
        <Empty title="No queues yet">{can(role, "declare") ? "Declare one above, or start a producer." : "Queues appear here once a producer or an admin declares them."}</Empty>
      ) : (
        <QueueTable queues={queues} rateOf={rateOf} />
      )}
    </div>
  );
}
