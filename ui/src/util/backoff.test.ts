import { describe, expect, it } from "vitest";
import { backoffMs } from "./backoff";

describe("backoffMs", () => {
  it("doubles up to the cap, jittered within the upper half", () => {
    const lo = () => 0;
    const hi = () => 1;
    expect([0, 1, 2, 3].map((a) => backoffMs(a, 500, 15_000, hi))).toEqual([500, 1000, 2000, 4000]);
    expect([0, 1, 2, 3].map((a) => backoffMs(a, 500, 15_000, lo))).toEqual([250, 500, 1000, 2000]);
    expect(backoffMs(20, 500, 15_000, hi)).toBe(15_000);
    expect(backoffMs(50, 500, 15_000, lo)).toBe(7_500);
  });
});
