// Live updates: one SSE connection to /api/stream per logged-in console.
//
// - Reads the stream with fetch (client.stream) so the bearer token can be sent.
// - Reconnects with jittered exponential backoff; a stream silent for 10 s (the server
//   sends an overview every second) counts as dead and is reopened.
// - Buffers events and publishes to the store at most every 250 ms, so a burst of thousands
//   of feed events costs one render, not thousands.
// - Keeps a rolling window (5 min) of overview samples for the charts, the newest 200 feed
//   events, and per-queue one-second rate buckets for the queue list's sparklines.

import { ApiError, type Client } from "../api/client";
import { openStream } from "../api/stream";
import type { FeedEvent, Overview } from "../api/types";
import { backoffMs } from "../util/backoff";
import { RateCounter, pushFeed, pushSample } from "../util/rolling";
import { expireSession } from "./session";
import { createStore } from "./store";

export const WINDOW_MS = 5 * 60_000;
export const RATE_SECONDS = 60;
export const FEED_MAX = 200;
const SILENCE_MS = 10_000;
const FLUSH_MS = 250;

export interface LiveState {
  connection: "idle" | "connecting" | "live" | "retrying";
  retryAtMs?: number;
  lastError?: string;
  samples: Overview[];
  latest: Overview | null;
  feed: FeedEvent[];
  /** Bumped on every flush that saw feed events, so rate sparklines re-read the counter. */
  feedVersion: number;
}

const initial: LiveState = { connection: "idle", samples: [], latest: null, feed: [], feedVersion: 0 };
export const live = createStore<LiveState>(initial);
export const rates = new RateCounter(RATE_SECONDS);

/** Which feed kinds count toward a queue's rate: messages leaving the queue successfully. */
export const RATE_KINDS = ["acked"];

let stop: (() => void) | null = null;

export function startLive(client: Client): void {
  stopLive();
  const outer = new AbortController();
  let pendingOverview: Overview[] = [];
  let pendingFeed: FeedEvent[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;

  const flush = () => {
    timer = null;
    const ovs = pendingOverview;
    const feed = pendingFeed;
    pendingOverview = [];
    pendingFeed = [];
    live.set((s) => {
      let samples = s.samples;
      for (const o of ovs) samples = pushSample(samples, o, WINDOW_MS);
      let f = s.feed;
      for (const e of feed) f = pushFeed(f, e, FEED_MAX);
      return {
        ...s,
        samples,
        latest: ovs.length ? ovs[ovs.length - 1] : s.latest,
        feed: f,
        feedVersion: feed.length ? s.feedVersion + 1 : s.feedVersion,
      };
    });
  };
  const schedule = () => {
    if (timer === null) timer = setTimeout(flush, FLUSH_MS);
  };

  const run = async () => {
    let attempt = 0;
    while (!outer.signal.aborted) {
      live.set((s) => ({ ...s, connection: "connecting", retryAtMs: undefined }));
      const conn = new AbortController();
      const onOuterAbort = () => conn.abort();
      outer.signal.addEventListener("abort", onOuterAbort);
      let watchdog: ReturnType<typeof setTimeout> | null = null;
      const pet = () => {
        if (watchdog) clearTimeout(watchdog);
        watchdog = setTimeout(() => conn.abort(), SILENCE_MS);
      };
      try {
        pet();
        await openStream(
          client,
          conn.signal,
          (ev) => {
            pet();
            if (ev.kind === "overview") {
              pendingOverview.push(ev.overview);
            } else {
              pendingFeed.push(ev.feed);
              rates.add(ev.feed.queue, ev.feed.at_ms, RATE_KINDS, ev.feed.kind);
            }
            schedule();
          },
          () => {
            attempt = 0;
            live.set((s) => ({ ...s, connection: "live", lastError: undefined }));
          },
        );
        live.set((s) => ({ ...s, lastError: "the server closed the live stream" }));
      } catch (e) {
        if (outer.signal.aborted) break;
        if (e instanceof ApiError && e.code === "unauthorized") {
          expireSession();
          break;
        }
        const msg = e instanceof ApiError && e.code === "aborted" ? "no live data for 10 s" : e instanceof Error ? e.message : String(e);
        live.set((s) => ({ ...s, lastError: msg }));
      } finally {
        if (watchdog) clearTimeout(watchdog);
        outer.signal.removeEventListener("abort", onOuterAbort);
      }
      if (outer.signal.aborted) break;
      const delay = backoffMs(attempt++);
      live.set((s) => ({ ...s, connection: "retrying", retryAtMs: Date.now() + delay }));
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        outer.signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
      });
    }
  };
  void run();
  stop = () => {
    outer.abort();
    if (timer) clearTimeout(timer);
    live.set(initial);
  };
}

export function stopLive(): void {
  stop?.();
  stop = null;
}

/** Seeds the window with a fetched overview so charts and tables render before the first event. */
export function seedOverview(o: Overview): void {
  live.set((s) => (s.latest ? s : { ...s, latest: o, samples: pushSample(s.samples, o, WINDOW_MS) }));
}
