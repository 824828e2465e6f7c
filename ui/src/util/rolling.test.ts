import { describe, expect, it } from "vitest";
import type { Overview } from "../api/types";
import { RateCounter, pushFeed, pushSample, series } from "./rolling";

const ov = (at_ms: number, ready = 0): Overview => ({
  at_ms, queues: [], totals: { ready, in_flight: 0, scheduled: 0, dead_lettered: 0 },
  rates: { sent_per_s: 0, acked_per_s: 0, nacked_per_s: 0, dead_lettered_per_s: 0 },
});

describe("rolling windows", () => {
  it("keeps only the window and ignores stale samples", () => {
    let s: Overview[] = [];
    for (let t = 0; t <= 10_000; t += 1000) s = pushSample(s, ov(t, t / 1000), 5000);
    expect(s.map((o) => o.at_ms)).toEqual([5000, 6000, 7000, 8000, 9000, 10000]);
    expect(pushSample(s, ov(9500), 5000)).toBe(s);
    expect(series(s, (o) => o.totals.ready).map((p) => p.v)).toEqual([5, 6, 7, 8, 9, 10]);
  });

  it("caps the feed, newest first", () => {
    let f = pushFeed([], { at_ms: 1, kind: "sent", queue: "q", message_id: "a" }, 2);
    f = pushFeed(f, { at_ms: 2, kind: "sent", queue: "q", message_id: "b" }, 2);
    f = pushFeed(f, { at_ms: 3, kind: "sent", queue: "q", message_id: "c" }, 2);
    expect(f.map((e) => e.message_id)).toEqual(["c", "b"]);
  });

  it("counts per-queue events per second", () => {
    const r = new RateCounter(3);
    r.add("q", 10_100, ["acked"], "acked");
    r.add("q", 10_900, ["acked"], "acked");
    r.add("q", 12_000, ["acked"], "acked");
    r.add("q", 12_000, ["acked"], "sent");
    expect(r.series("q", 13_500)).toEqual([2, 0, 1]);
    expect(r.series("q", 12_500)).toEqual([0, 2, 0]); // second 12 is not complete yet
    expect(r.series("other", 13_500)).toEqual([0, 0, 0]);
  });
});
