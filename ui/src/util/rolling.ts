// Client-side rolling windows for live charts: the server sends a fresh Overview every
// second and a FeedEvent per message event; the console keeps the last few minutes.

import type { FeedEvent, Overview } from "../api/types";

/** Appends an overview sample, drops samples older than `windowMs` and out-of-order repeats. */
export function pushSample(samples: readonly Overview[], next: Overview, windowMs: number): Overview[] {
  const last = samples[samples.length - 1];
  if (last && next.at_ms <= last.at_ms) return samples as Overview[];
  const cutoff = next.at_ms - windowMs;
  let i = 0;
  while (i < samples.length && samples[i].at_ms < cutoff) i++;
  const kept = samples.slice(i);
  kept.push(next);
  return kept;
}

/** Keeps the newest `max` feed events, newest first. */
export function pushFeed(feed: readonly FeedEvent[], ev: FeedEvent, max: number): FeedEvent[] {
  const out = [ev, ...feed];
  if (out.length > max) out.length = max;
  return out;
}

/**
 * Per-queue event counts in one-second buckets, for the queue list's rate sparklines.
 * Counts what the feed reports; if the server samples the feed, rates are lower bounds.
 */
export class RateCounter {
  private readonly buckets = new Map<string, Map<number, number>>();
  constructor(private readonly seconds: number) {}

  add(queue: string, atMs: number, kinds: readonly string[], kind: string): void {
    if (!kinds.includes(kind)) return;
    const sec = Math.floor(atMs / 1000);
    let q = this.buckets.get(queue);
    if (!q) this.buckets.set(queue, (q = new Map()));
    q.set(sec, (q.get(sec) ?? 0) + 1);
    if (q.size > this.seconds * 2) {
      const cutoff = sec - this.seconds;
      for (const k of q.keys()) if (k < cutoff) q.delete(k);
    }
  }

  /**
   * Counts per second for the `seconds` whole seconds before `nowMs`, oldest first. The
   * current second is still filling up, so it is left out rather than drawn as a dip.
   */
  series(queue: string, nowMs: number): number[] {
    const q = this.buckets.get(queue);
    const end = Math.floor(nowMs / 1000) - 1;
    const out: number[] = [];
    for (let s = end - this.seconds + 1; s <= end; s++) out.push(q?.get(s) ?? 0);
    return out;
  }
}

export interface SeriesPoint { t: number; v: number }

/** Picks one numeric series out of overview samples. */
export function series(samples: readonly Overview[], pick: (o: Overview) => number): SeriesPoint[] {
  return samples.map((o) => ({ t: o.at_ms, v: pick(o) }));
}
