// Tiny SVG chart geometry (no chart library: a few polylines are all the console draws).

export interface Pt { t: number; v: number }

/** Path data for a line through `values` (evenly spaced) in a w×h box; max scales to top. */
export function sparkPath(values: readonly number[], w: number, h: number, max?: number): string {
  if (values.length === 0) return "";
  const top = Math.max(max ?? 0, ...values, 1e-9);
  const dx = values.length > 1 ? w / (values.length - 1) : 0;
  return values
    .map((v, i) => `${i === 0 ? "M" : "L"}${round(i * dx)},${round(h - (Math.max(0, v) / top) * h)}`)
    .join("");
}

/** Path data for points on a time axis [t0, t1] scaled to [0, max]. */
export function linePath(points: readonly Pt[], t0: number, t1: number, max: number, w: number, h: number): string {
  const span = Math.max(1, t1 - t0);
  const top = Math.max(max, 1e-9);
  return points
    .map((p, i) => `${i === 0 ? "M" : "L"}${round(((p.t - t0) / span) * w)},${round(h - (Math.max(0, p.v) / top) * h)}`)
    .join("");
}

/** A round upper bound for a y axis: 0.7 → 1, 7 → 10, 130 → 200, 0 → 1. */
export function niceMax(x: number): number {
  if (!(x > 0)) return 1;
  const mag = 10 ** Math.floor(Math.log10(x));
  return ([1, 2, 5, 10].map((m) => m * mag).find((m) => m >= x) ?? 10 * mag);
}

const round = (x: number) => Math.round(x * 10) / 10;

/** Axis tick text: integers compact ("12k"), small fractions with one decimal ("0.5"). */
export function axisLabel(x: number): string {
  if (x === 0) return "0";
  if (Math.abs(x) < 10 && !Number.isInteger(x)) return x.toFixed(1);
  const a = Math.abs(x);
  if (a < 1000) return String(Math.round(x));
  if (a < 1e6) return `${+(x / 1e3).toFixed(1)}k`;
  return `${+(x / 1e6).toFixed(1)}M`;
}
