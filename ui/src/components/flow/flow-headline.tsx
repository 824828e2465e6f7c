// The answer first: which messages failed, where, and what became of them.

import { useMemo } from "react";
import type { Span } from "../../api/types";
import { Badge } from "../../kit/badge";
import { diagnose, type Finding } from "../../util/diagnosis";
import { formatDurationUs, plural, shortId } from "../../util/format";
import { hrefs } from "../../util/route";

const MAX_SHOWN = 5;

export function FlowHeadline({ spans, onShowSpan }: { spans: readonly Span[]; onShowSpan: (spanId: string) => void }) {
  const d = useMemo(() => diagnose(spans), [spans]);
  if (d.findings.length === 0) {
    return (
      <div className="headline headline-ok" data-testid="flow-headline">
        <Badge tone="ok">healthy</Badge> {d.messages > 0 ? `All ${plural(d.messages, "message")} handled without a failure.` : "No message spans yet."}
        {d.slowest && <> Slowest step: <button type="button" className="linklike" onClick={() => onShowSpan(d.slowest!.span_id)}>{d.slowest.name}</button> ({formatDurationUs(d.slowest.duration_us)}).</>}
      </div>
    );
  }
  const counts = { "dead-lettered": 0, failing: 0, recovered: 0 };
  for (const f of d.findings) counts[f.kind]++;
  return (
    <div className="headline" data-testid="flow-headline">
      <div className="headline-summary">
        {counts["dead-lettered"] > 0 && <Badge tone="error">{plural(counts["dead-lettered"], "message")} dead-lettered</Badge>}
        {counts.failing > 0 && <Badge tone="warn">{plural(counts.failing, "message")} still failing</Badge>}
        {counts.recovered > 0 && <Badge>{plural(counts.recovered, "message")} recovered after retries</Badge>}
        <span className="muted">of {plural(d.messages, "message")} in this flow</span>
      </div>
      <ul>
        {d.findings.slice(0, MAX_SHOWN).map((f) => <FindingLine key={f.messageId} f={f} onShowSpan={onShowSpan} />)}
      </ul>
      {d.findings.length > MAX_SHOWN && <div className="muted small">and {d.findings.length - MAX_SHOWN} more; tick “only failures” below to see them all.</div>}
    </div>
  );
}

function FindingLine({ f, onShowSpan }: { f: Finding; onShowSpan: (spanId: string) => void }) {
  const msg = <a href={hrefs.message(f.messageId)} title={f.messageId}><code>{shortId(f.messageId, 6)}</code></a>;
  const where = f.queue ? <> on <a href={hrefs.queue(f.queue)}>{f.queue}</a></> : null;
  const show = <button type="button" className="linklike" onClick={() => onShowSpan(f.spanId)}>show span</button>;
  const error = f.error ? <span className="headline-error">{f.error}</span> : null;
  switch (f.kind) {
    case "dead-lettered":
      return (
        <li className="finding-dead">
          Message {msg} dead-lettered{where} after {plural(f.attempts, "attempt")}: {error}{" "}
          {f.queue && <a href={hrefs.deadLetters(f.queue, f.messageId)}>open dead letter</a>} · {show}
        </li>
      );
    case "failing":
      return <li className="finding-failing">Message {msg} failing{where}: {plural(f.failedAttempts, "failed attempt")} so far, last: {error} · {show}</li>;
    case "recovered":
      return <li className="finding-recovered">Message {msg} recovered{where} after {plural(f.failedAttempts, "failed attempt")} ({error}) · {show}</li>;
  }
}
