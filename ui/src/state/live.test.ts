import { afterEach, describe, expect, it, vi } from "vitest";
import { Client, type FetchFn } from "../api/client";
import { live, rates, startLive, stopLive } from "./live";

const overview = (at_ms: number) => ({
  at_ms, queues: [], totals: { ready: 1, in_flight: 0, scheduled: 0, dead_lettered: 0 },
  rates: { sent_per_s: 1, acked_per_s: 1, nacked_per_s: 0, dead_lettered_per_s: 0 },
});

/** A stream that sends `text` and then stays open until aborted. */
function openStream(text: string, signal?: AbortSignal | null): Response {
  const body = new ReadableStream<Uint8Array>({
    start(ctrl) {
      ctrl.enqueue(new TextEncoder().encode(text));
      signal?.addEventListener("abort", () => ctrl.error(new DOMException("aborted", "AbortError")));
    },
  });
  return new Response(body, { status: 200 });
}

afterEach(() => {
  stopLive();
  vi.useRealTimers();
});

describe("live stream", () => {
  it("reconnects after a failure, then publishes overview samples and feed rates", async () => {
    vi.useFakeTimers();
    let calls = 0;
    const fetchFn: FetchFn = async (_url, init) => {
      calls++;
      if (calls === 1) throw new TypeError("connection refused");
      const feed = { at_ms: 5_000, kind: "acked", queue: "orders", message_id: "m1" };
      return openStream(`event: overview\ndata: ${JSON.stringify(overview(5_000))}\n\nevent: feed\ndata: ${JSON.stringify(feed)}\n\n`, init?.signal);
    };
    startLive(new Client({ baseUrl: "", token: "t", fetch: fetchFn }));
    await vi.advanceTimersByTimeAsync(0);
    expect(live.get().connection).toBe("retrying");
    expect(live.get().lastError).toMatch(/connection refused/);
    await vi.advanceTimersByTimeAsync(600); // backoff for attempt 0 is at most 500 ms
    expect(calls).toBe(2);
    expect(live.get().connection).toBe("live");
    await vi.advanceTimersByTimeAsync(300); // the 250 ms publish tick
    const s = live.get();
    expect(s.latest?.at_ms).toBe(5_000);
    expect(s.samples).toHaveLength(1);
    expect(s.feed.map((e) => e.message_id)).toEqual(["m1"]);
    expect(rates.series("orders", 6_000).at(-1)).toBe(1);
  });

  it("treats a silent stream as dead and reconnects", async () => {
    vi.useFakeTimers();
    let calls = 0;
    const fetchFn: FetchFn = async (_url, init) => {
      calls++;
      return openStream(": hello\n\n", init?.signal);
    };
    startLive(new Client({ baseUrl: "", token: "t", fetch: fetchFn }));
    await vi.advanceTimersByTimeAsync(0);
    expect(live.get().connection).toBe("live");
    await vi.advanceTimersByTimeAsync(10_100);
    expect(live.get().lastError).toMatch(/no live data/);
    await vi.advanceTimersByTimeAsync(600);
    expect(calls).toBe(2);
  });

  it("stops for good on 401 and ends the session", async () => {
    const { session } = await import("./session");
    const fetchFn: FetchFn = async () => new Response(JSON.stringify({ error: { code: "unauthorized", message: "bad token" } }), { status: 401 });
    startLive(new Client({ baseUrl: "", token: "t", fetch: fetchFn }));
    await vi.waitFor(() => expect(session.get()).toMatchObject({ status: "logged-out" }));
  });
});
