import { ApiError } from "../api/client";
import { lookupFlow } from "../api/flows";
import { FlowView } from "../components/flow/flow-view";
import { Empty, ErrorState, Loading } from "../kit/states";
import { useResource } from "../state/resource";
import { navigate } from "../state/router";
import { hrefs } from "../util/route";

export function FlowPage({ id, span }: { id: string; span?: string }) {
  const r = useResource((c, s) => lookupFlow(c, id, s), [id]);
  const kind = r.data?.query.kind;
  return (
    <div data-testid="flow-page">
      <h1><span className="muted">{kind ? `flow by ${kind} id` : "flow"}</span> {id}</h1>
      {r.error instanceof ApiError && r.error.code === "not_found" ? (
        <Empty title={`Nothing found for ${id}`}>No correlation id, message id or trace id matches. Check the id, or pick one of the <a href={hrefs.flows()}>recent flows</a>.</Empty>
      ) : r.error ? <ErrorState error={r.error} what="this flow" onRetry={r.reload} /> :
        !r.data ? <Loading what="flow" /> :
        r.data.timeline.length === 0 && r.data.nodes.length === 0 ? <Empty title="This flow has no spans yet">Spans appear as its messages are sent and handled.</Empty> : (
          <FlowView
            flow={r.data}
            selectedSpanId={span}
            onSelectSpan={(s) => navigate(hrefs.flow(id, s), true)}
            onRendered={() => performance.mark("switchyard:flow-rendered")}
          />
        )}
    </div>
  );
}
