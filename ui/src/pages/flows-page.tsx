// Correlation explorer entry: look up any id, or pick one of the recent flows.

import { useState, type FormEvent } from "react";
import { listFlows } from "../api/flows";
import { Badge } from "../kit/badge";
import { Button } from "../kit/button";
import { Empty, ErrorState, Loading } from "../kit/states";
import { useResource } from "../state/resource";
import { navigate } from "../state/router";
import { formatDateTime, formatDurationUs, formatCount } from "../util/format";
import { hrefs } from "../util/route";

export function FlowsPage() {
  const [id, setId] = useState("");
  const r = useResource((c, s) => listFlows(c, 50, s), []);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (id.trim()) navigate(hrefs.flow(id.trim()));
  };
  return (
    <div data-testid="flows-page">
      <h1>Flows</h1>
      <form className="lookup" onSubmit={submit}>
        <input value={id} onChange={(e) => setId(e.target.value)} placeholder="Correlation id, message id or trace id" aria-label="id to look up" data-testid="flow-lookup" autoFocus />
        <Button type="submit" variant="primary" disabled={!id.trim()}>Show flow</Button>
      </form>
      <h2>Recent flows <Button variant="ghost" onClick={r.reload}>Refresh</Button></h2>
      {r.error ? <ErrorState error={r.error} what="recent flows" onRetry={r.reload} /> :
        !r.data ? <Loading what="recent flows" /> :
        r.data.length === 0 ? <Empty title="No flows recorded yet">Flows appear once messages are sent. Look one up above by id.</Empty> : (
          <table className="table" data-testid="flows-table">
            <thead><tr><th>Correlation id</th><th>Started</th><th className="num">Duration</th><th className="num">Spans</th><th className="num">Failures</th><th className="num">Dead-lettered</th><th>Queues</th></tr></thead>
            <tbody>
              {r.data.map((f) => (
                <tr key={f.correlation_id} data-testid="flow-row">
                  <td><a href={hrefs.flow(f.correlation_id)}>{f.correlation_id}</a></td>
                  <td>{formatDateTime(f.first_us / 1000)}</td>
                  <td className="num">{formatDurationUs(f.last_us - f.first_us)}</td>
                  <td className="num">{formatCount(f.spans)}</td>
                  <td className="num">{f.errors > 0 ? <Badge tone="error">{formatCount(f.errors)}</Badge> : "0"}</td>
                  <td className="num">{f.dead_lettered > 0 ? <Badge tone="error">{formatCount(f.dead_lettered)}</Badge> : "0"}</td>
                  <td>{f.queues.join(", ")}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
    </div>
  );
}
