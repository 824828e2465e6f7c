// Overview: what is happening right now and over the last five minutes, updated live.

import { useEffect, useMemo, useRef } from "react";
import { getOverview } from "../api/queues";
import type { Overview, QueueSummary } from "../api/types";
import { LineChart } from "../kit/line-chart";
import { Sparkline } from "../kit/sparkline";
import { ErrorState, Empty, Loading } from "../kit/states";
import { StatCards } from "../components/overview/stat-cards";
import { LiveFeed } from "../components/overview/live-feed";
import { live, seedOverview, WINDOW_MS } from "../state/live";
import { useResource } from "../state/resource";
import { useStore } from "../state/store";
import { formatAgeMs, formatCount } from "../util/format";
import { series } from "../util/rolling";
import { hrefs } from "../util/route";

export function OverviewPage() {
  const initial = useResource((c, s) => getOverview(c, s), []);
  const state = useStore(live);
  useEffect(() => { if (initial.data) seedOverview(initial.data); }, [initial.data]);
  const ov = state.latest ?? initial.data;

  const marked = useRef(false);
  useEffect(() => {
    if (ov && !marked.current) {
      marked.current = true;
      performance.mark("switchyard:overview-rendered");
    }
  }, [ov]);

  const s = state.samples;
  const charts = useMemo(() => ({
    throughput: [
      { name: "sent/s", color: "var(--c1)", points: series(s, (o) => o.rates.sent_per_s) },
      { name: "acked/s", color: "var(--c2)", points: series(s, (o) => o.rates.acked_per_s) },
    ],
    depth: [
      { name: "ready", color: "var(--c1)", points: series(s, (o) => o.totals.ready) },
      { name: "in flight", color: "var(--c2)", points: series(s, (o) => o.totals.in_flight) },
      { name: "retrying", color: "var(--c3)", points: series(s, (o) => o.totals.scheduled) },
    ],
    dead: [
      { name: "dead-lettered", color: "var(--error)", points: series(s, (o) => o.totals.dead_lettered) },
    ],
    errors: [
      { name: "nacked/s", color: "var(--c3)", points: series(s, (o) => o.rates.nacked_per_s) },
      { name: "dead-lettered/s", color: "var(--error)", points: series(s, (o) => o.rates.dead_lettered_per_s) },
    ],
  }), [s]);

  const deepest = useMemo(() => deepestQueues(ov?.queues ?? [], s), [ov, s]);

  if (!ov) {
    if (initial.error) return <ErrorState error={initial.error} what="the overview" onRetry={initial.reload} />;
    return <Loading what="overview" />;
  }
  const now = ov.at_ms;
  const attention = needsAttention(ov.queues);
  return (
    <div data-testid="overview-page">
      <h1>Overview</h1>
      <StatCards totals={ov.totals} />
      <div className="charts">
        <LineChart title="Throughput" series={charts.throughput} windowMs={WINDOW_MS} nowMs={now} unit="/s" />
        <LineChart title="Queue depth (all queues)" series={charts.depth} windowMs={WINDOW_MS} nowMs={now} />
        <LineChart title="Dead letters" series={charts.dead} windowMs={WINDOW_MS} nowMs={now} />
        <LineChart title="Errors" series={charts.errors} windowMs={WINDOW_MS} nowMs={now} unit="/s" />
      </div>
      {s.length < 2 && <p className="muted small">Charts fill in as live samples arrive (one per second, five minutes kept in this tab).</p>}
      <div className="two-col">
        <section>
          <h2>Needs attention</h2>
          {ov.queues.length === 0 ? (
            <Empty title="No queues yet">Declare a queue (admin) or start a producer; queues appear here as soon as they exist.</Empty>
          ) : attention.length === 0 ? (
            <Empty title="Nothing stuck">No dead letters, nothing retrying, no old messages waiting.</Empty>
          ) : (
            <table className="table" data-testid="attention">
              <thead><tr><th>Queue</th><th className="num">Dead-lettered</th><th className="num">Retrying</th><th className="num">Oldest</th><th className="num">Consumers</th></tr></thead>
              <tbody>
                {attention.map((q) => (
                  <tr key={q.name}>
                    <td><a href={hrefs.queue(q.name)}>{q.name}</a></td>
                    <td className="num">{q.stats.dead_lettered > 0 ? <a className="error-text" href={hrefs.deadLetters(q.name)}>{formatCount(q.stats.dead_lettered)}</a> : "0"}</td>
                    <td className="num">{formatCount(q.stats.scheduled)}</td>
                    <td className="num">{formatAgeMs(q.stats.oldest_age_ms)}</td>
                    <td className={`num${q.consumers === 0 && q.stats.ready > 0 ? " error-text" : ""}`}>{q.consumers}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        <section>
          <h2>Deepest queues</h2>
          {deepest.length === 0 ? <p className="muted">No messages waiting anywhere.</p> : (
            <table className="table" data-testid="deepest">
              <thead><tr><th>Queue</th><th className="num">Waiting</th><th className="num">In flight</th><th className="num">Depth trend</th></tr></thead>
              <tbody>
                {deepest.map(({ q, history }) => (
                  <tr key={q.name}>
                    <td><a href={hrefs.queue(q.name)}>{q.name}</a></td>
                    <td className="num">{formatCount(q.stats.ready + q.stats.scheduled)}</td>
                    <td className="num">{formatCount(q.stats.in_flight)}</td>
                    <td className="num spark-cell"><Sparkline values={history} width={140} label={`${q.name}: depth over the live window (up to five minutes)`} /></td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h2>Live events</h2>
          <LiveFeed feed={state.feed} />
        </section>
      </div>
    </div>
  );
}

/** Queues an operator should look at first: dead letters, retries, old messages, no consumers. */
function needsAttention(queues: QueueSummary[]): QueueSummary[] {
  const score = (q: QueueSummary) =>
    q.stats.dead_lettered * 1000 + q.stats.scheduled * 10 + (q.stats.oldest_age_ms ?? 0) / 1000 + (q.consumers === 0 && q.stats.ready > 0 ? 500 : 0);
  return queues
    .filter((q) => q.stats.dead_lettered > 0 || q.stats.scheduled > 0 || (q.stats.oldest_age_ms ?? 0) > 60_000 || (q.consumers === 0 && q.stats.ready > 0))
    .sort((a, b) => score(b) - score(a))
    .slice(0, 12);
}

const depth = (q: QueueSummary) => q.stats.ready + q.stats.in_flight + q.stats.scheduled;

/** The eight deepest queues now, each with its depth over the sampled window. */
function deepestQueues(queues: QueueSummary[], samples: readonly Overview[]): { q: QueueSummary; history: number[] }[] {
  const top = queues.filter((q) => depth(q) > 0).sort((a, b) => depth(b) - depth(a)).slice(0, 8);
  const names = new Map(top.map((q, i) => [q.name, i]));
  const histories = top.map(() => [] as number[]);
  for (const o of samples) {
    const row = top.map(() => 0);
    for (const q of o.queues) {
      const i = names.get(q.name);
      if (i !== undefined) row[i] = depth(q);
    }
    row.forEach((v, i) => histories[i].push(v));
  }
  return top.map((q, i) => ({ q, history: histories[i] }));
}
