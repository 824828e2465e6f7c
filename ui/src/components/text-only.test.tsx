// The text-only rule: whatever comes from messages (payloads, headers, names, errors) is
// rendered as text, never as HTML. These render the components that show message content
// with hostile input and check that the markup carries it escaped.

import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import type { DeadLetter, Message, Span } from "../api/types";
import { DeadLetterDetail } from "./dead-letters/dead-letter-detail";
import { FlowHeadline } from "./flow/flow-headline";
import { SpanDetails } from "./flow/span-details";
import { LiveFeed } from "./overview/live-feed";
import { MessageDetail } from "./queue/message-detail";

const EVIL = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">`;

const message: Message = {
  id: "m-1", queue: "orders", payload: { note: EVIL }, content_type: "application/json",
  correlation_id: `c-${EVIL}`, source: EVIL, headers: { [EVIL]: EVIL }, timestamp_ms: 0, attempts: 3,
};

function expectInert(html: string) {
  expect(html).not.toMatch(/<script/i);
  expect(html).not.toMatch(/<img/i);
  expect(html).toContain("&lt;script&gt;window.__pwned=1&lt;/script&gt;");
}

describe("message content renders as text", () => {
  it("in the message detail (payload, headers, source, correlation id)", () => {
    const html = renderToStaticMarkup(<MessageDetail message={message} />);
    expectInert(html);
  });

  it("in a dead letter (last error, history)", () => {
    const dl: DeadLetter = {
      message, reason: "max_retries", original_queue: "orders", attempts: 3, last_error: EVIL,
      dead_lettered_ms: 0, history: [{ at_ms: 0, event: "nack", detail: EVIL }],
    };
    expectInert(renderToStaticMarkup(<DeadLetterDetail dl={dl} />));
  });

  it("in span details (name, status message, attributes)", () => {
    const span: Span = {
      trace_id: "t".repeat(32), span_id: "s".repeat(16), name: EVIL, kind: "consumer", start_us: 0, duration_us: 5,
      status: "error", status_message: EVIL, queue: "orders", message_id: "m-1", attributes: { [EVIL]: EVIL }, links: [],
    };
    expectInert(renderToStaticMarkup(<SpanDetails span={span} />));
  });

  it("in the flow headline (last error)", () => {
    const span: Span = {
      trace_id: "t".repeat(32), span_id: "s1", name: "process", kind: "consumer", start_us: 0, duration_us: 5,
      status: "error", status_message: EVIL, operation: "dead_letter", queue: "orders", message_id: "m-1", attributes: {}, links: [],
    };
    expectInert(renderToStaticMarkup(<FlowHeadline spans={[span]} onShowSpan={() => {}} />));
  });

  it("in the live feed (detail)", () => {
    expectInert(renderToStaticMarkup(<LiveFeed feed={[{ at_ms: 0, kind: "nacked", queue: "orders", message_id: "m-1", detail: EVIL }]} />));
  });
});

describe("no HTML injection sinks in the source", () => {
  const root = path.resolve(__dirname, "..");
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      const p = path.join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(ts|tsx)$/.test(f) && !f.endsWith(".test.tsx")) files.push(p);
    }
  };
  walk(root);
  it.each(["dangerouslySetInnerHTML", ".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval("])("nobody uses %s", (sink) => {
    const offenders = files.filter((f) => readFileSync(f, "utf8").includes(sink));
    expect(offenders).toEqual([]);
  });
});

describe("one door to the server", () => {
  it("only api/client.ts calls fetch or opens sockets", () => {
    const root = path.resolve(__dirname, "..");
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const f of readdirSync(dir)) {
        const p = path.join(dir, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.(ts|tsx)$/.test(f) && !/\.test\.tsx?$/.test(f) && path.relative(root, p) !== path.join("api", "client.ts")) {
          if (/\bfetch\(|new WebSocket|new EventSource|XMLHttpRequest/.test(readFileSync(p, "utf8"))) offenders.push(path.relative(root, p));
        }
      }
    };
    walk(root);
    expect(offenders).toEqual([]);
  });
});
