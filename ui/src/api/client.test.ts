import { describe, expect, it } from "vitest";
import { ApiError, Client, explain, type FetchFn } from "./client";
import { listDeadLetters, runAction } from "./dead-letters";
import { lookupFlow } from "./flows";
import { openStream, type StreamEvent } from "./stream";

interface Call { url: string; init: RequestInit }

function fakeFetch(answer: (call: Call) => Response | Promise<Response>): { fetch: FetchFn; calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    fetch: async (url, init = {}) => {
      const call = { url, init };
      calls.push(call);
      return answer(call);
    },
  };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

describe("Client", () => {
  it("sends the bearer token, JSON body and query to the base URL", async () => {
    const f = fakeFetch(() => json(200, { count: 3 }));
    const c = new Client({ baseUrl: "http://h:1/", token: "s3cret", fetch: f.fetch });
    const n = await runAction(c, "orders", { kind: "retry" }, { reason: "max_retries" }, true);
    expect(n).toBe(3);
    expect(f.calls[0].url).toBe("http://h:1/api/queues/orders/dead-letters/retry");
    expect(f.calls[0].init.method).toBe("POST");
    const h = f.calls[0].init.headers as Record<string, string>;
    expect(h.authorization).toBe("Bearer s3cret");
    expect(h["content-type"]).toBe("application/json");
    expect(JSON.parse(String(f.calls[0].init.body))).toEqual({ dry_run: true, reason: "max_retries" });
  });

  it("omits authorization without a token and encodes path segments and query", async () => {
    const f = fakeFetch(() => json(200, { dead_letters: [], total: 0 }));
    const c = new Client({ baseUrl: "", fetch: f.fetch });
    await listDeadLetters(c, "a b/c", { reason: "", limit: 10 });
    expect(f.calls[0].url).toBe("/api/queues/a%20b%2Fc/dead-letters?limit=10");
    expect((f.calls[0].init.headers as Record<string, string>).authorization).toBeUndefined();
    await lookupFlow(c, "id#1");
    expect(f.calls[1].url).toBe("/api/flows/lookup/id%231");
  });

  it("maps the documented error body to ApiError with status and code", async () => {
    const f = fakeFetch(() => json(404, { error: { code: "unknown_queue", message: "queue `x` does not exist" } }));
    const c = new Client({ baseUrl: "", token: "t", fetch: f.fetch });
    const err = await c.get("/api/queues/x").catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 404, code: "unknown_queue", message: "queue `x` does not exist" });
  });

  it("maps a non-JSON error answer by status", async () => {
    const f = fakeFetch(() => new Response("Bad Gateway", { status: 502 }));
    const err = await new Client({ baseUrl: "", fetch: f.fetch }).get("/api/overview").catch((e) => e);
    expect(err).toMatchObject({ status: 502, code: "internal", message: "Bad Gateway" });
    const f401 = fakeFetch(() => new Response("", { status: 401 }));
    const e401 = await new Client({ baseUrl: "", fetch: f401.fetch }).get("/api/whoami").catch((e) => e);
    expect(e401).toMatchObject({ status: 401, code: "unauthorized" });
    expect(explain(e401)).toMatch(/Log in again/);
  });

  it("maps a network failure and a non-JSON success", async () => {
    const down = new Client({ baseUrl: "", fetch: async () => { throw new TypeError("Failed to fetch"); } });
    expect(await down.get("/api/overview").catch((e) => e)).toMatchObject({ status: 0, code: "network" });
    const html = new Client({ baseUrl: "", fetch: async () => new Response("<html>", { status: 200 }) });
    expect(await html.get("/api/overview").catch((e) => e)).toMatchObject({ code: "bad_response" });
  });
});

function streamResponse(chunks: string[]): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(ctrl) {
      for (const c of chunks) ctrl.enqueue(enc.encode(c));
      ctrl.close();
    },
  });
  return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
}

describe("Client.stream", () => {
  it("parses feed and overview events across chunk boundaries, with the auth header", async () => {
    const overview = { at_ms: 1, totals: { ready: 1, in_flight: 0, scheduled: 0, dead_lettered: 0 }, queues: [], rates: { sent_per_s: 1, acked_per_s: 1, nacked_per_s: 0, dead_lettered_per_s: 0 } };
    const feed = { at_ms: 2, kind: "sent", queue: "orders", message_id: "m1" };
    const wire = `: hello\n\nevent: overview\ndata: ${JSON.stringify(overview)}\n\nevent: feed\ndata: ${JSON.stringify(feed)}\n\nevent: other\ndata: {}\n\nevent: feed\ndata: not json\n\n`;
    const f = fakeFetch(() => streamResponse([wire.slice(0, 7), wire.slice(7, 40), wire.slice(40)]));
    const c = new Client({ baseUrl: "", token: "tok", fetch: f.fetch });
    const got: StreamEvent[] = [];
    let opened = false;
    await openStream(c, new AbortController().signal, (e) => got.push(e), () => (opened = true));
    expect(opened).toBe(true);
    expect(got).toEqual([{ kind: "overview", overview }, { kind: "feed", feed }]);
    const h = f.calls[0].init.headers as Record<string, string>;
    expect(h.authorization).toBe("Bearer tok");
    expect(h.accept).toBe("text/event-stream");
  });

  it("rejects with the typed error when the stream is refused", async () => {
    const f = fakeFetch(() => json(401, { error: { code: "unauthorized", message: "bad token" } }));
    const c = new Client({ baseUrl: "", token: "x", fetch: f.fetch });
    const err = await openStream(c, new AbortController().signal, () => {}).catch((e) => e);
    expect(err).toMatchObject({ status: 401, code: "unauthorized" });
  });
});
