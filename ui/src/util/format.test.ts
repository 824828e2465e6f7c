import { describe, expect, it } from "vitest";
import { formatAgeMs, formatClock, formatCompact, formatCount, formatDateTime, formatDurationUs, formatRate, plural, shortId } from "./format";

describe("format", () => {
  it("counts", () => {
    expect(formatCount(1234567)).toBe("1,234,567");
    expect(formatCount(undefined)).toBe("–");
    expect(formatCompact(950)).toBe("950");
    expect(formatCompact(12_345)).toBe("12.3k");
    expect(formatCompact(4_500_000)).toBe("4.5M");
    expect(formatCompact(150_000)).toBe("150k");
  });
  it("rates", () => {
    expect(formatRate(0)).toBe("0/s");
    expect(formatRate(2.46)).toBe("2.5/s");
    expect(formatRate(3)).toBe("3/s");
    expect(formatRate(1500)).toBe("1.5k/s");
    expect(formatRate(NaN)).toBe("–");
  });
  it("span durations in µs", () => {
    expect(formatDurationUs(850)).toBe("850 µs");
    expect(formatDurationUs(4200)).toBe("4.2 ms");
    expect(formatDurationUs(1000)).toBe("1 ms");
    expect(formatDurationUs(1_250_000)).toBe("1.25 s");
    expect(formatDurationUs(125_000_000)).toBe("2m 05s");
  });
  it("ages in ms", () => {
    expect(formatAgeMs(12)).toBe("12 ms");
    expect(formatAgeMs(42_000)).toBe("42s");
    expect(formatAgeMs(302_000)).toBe("5m 02s");
    expect(formatAgeMs(3 * 3600_000 + 7 * 60_000)).toBe("3h 07m");
    expect(formatAgeMs(52 * 3600_000)).toBe("2d 4h");
    expect(formatAgeMs(null)).toBe("–");
  });
  it("times and words", () => {
    expect(formatClock(Date.UTC(2026, 10, 26, 23, 4, 5, 123))).toBe("23:04:05.123");
    expect(formatDateTime(Date.UTC(2026, 10, 26, 23, 4, 5))).toBe("2026-11-26 23:04:05Z");
    expect(plural(1, "dead letter")).toBe("1 dead letter");
    expect(plural(1200, "dead letter")).toBe("1,200 dead letters");
    expect(shortId("0123456789abcdef0123456789abcdef")).toBe("01234567…89abcdef");
    expect(shortId("short")).toBe("short");
  });
});
