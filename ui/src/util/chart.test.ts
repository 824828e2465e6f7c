import { describe, expect, it } from "vitest";
import { axisLabel, linePath, niceMax, sparkPath } from "./chart";

describe("chart geometry", () => {
  it("draws sparklines scaled to the max", () => {
    expect(sparkPath([0, 5, 10], 100, 20)).toBe("M0,20L50,10L100,0");
    expect(sparkPath([], 100, 20)).toBe("");
    expect(sparkPath([0, 0], 10, 10)).toBe("M0,10L10,10");
  });
  it("draws lines on a time axis", () => {
    expect(linePath([{ t: 0, v: 0 }, { t: 10, v: 4 }], 0, 10, 4, 100, 40)).toBe("M0,40L100,0");
  });
  it("rounds axis maxima", () => {
    expect([0, 0.7, 7, 130, 1000].map(niceMax)).toEqual([1, 1, 10, 200, 1000]);
  });
  it("labels axes without losing small fractions", () => {
    expect([0, 0.5, 1, 2.5, 50, 1500, 2_000_000].map(axisLabel)).toEqual(["0", "0.5", "1", "2.5", "50", "1.5k", "2M"]);
  });
});
