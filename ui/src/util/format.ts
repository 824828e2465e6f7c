// Formatting for operators: short, unit-suffixed, and stable in width where it matters.

const nf = new Intl.NumberFormat("en-US");

export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "–";
  return nf.format(Math.round(n));
}

/** 950 → "950", 12_345 → "12.3k", 4_500_000 → "4.5M". */
export function formatCompact(n: number): string {
  const a = Math.abs(n);
  if (a < 1000) return String(Math.round(n));
  if (a < 1e6) return `${trim(n / 1e3)}k`;
  if (a < 1e9) return `${trim(n / 1e6)}M`;
  return `${trim(n / 1e9)}G`;
}

function trim(x: number): string {
  return (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(1)).replace(/\.0$/, "");
}

export function formatRate(perSecond: number | null | undefined): string {
  if (perSecond === null || perSecond === undefined || !Number.isFinite(perSecond)) return "–";
  if (perSecond === 0) return "0/s";
  if (perSecond < 10) return `${perSecond.toFixed(1).replace(/\.0$/, "")}/s`;
  return `${formatCompact(perSecond)}/s`;
}

/** A span duration in microseconds: "850 µs", "4.2 ms", "1.25 s", "2m 05s". */
export function formatDurationUs(us: number | null | undefined): string {
  if (us === null || us === undefined || !Number.isFinite(us)) return "–";
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 1e6) return `${sig(us / 1000)} ms`;
  if (us < 60e6) return `${sig(us / 1e6)} s`;
  return formatAgeMs(us / 1000);
}

function sig(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1).replace(/\.0$/, "") : x.toFixed(2).replace(/\.?0+$/, "");
}

/** An age or duration in ms, two units at most: "850 ms", "42s", "5m 02s", "3h 07m", "2d 4h". */
export function formatAgeMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "–";
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad(s % 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${pad(m % 60)}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

const pad = (n: number) => String(n).padStart(2, "0");

/** Wall-clock time of day in UTC with ms, for timelines: "23:04:05.123". */
export function formatClock(ms: number): string {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return "–";
  return d.toISOString().slice(11, 23);
}

/** Date and time in UTC: "2026-11-26 23:04:05Z". */
export function formatDateTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "–";
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return "–";
  return d.toISOString().slice(0, 19).replace("T", " ") + "Z";
}

/** "3 dead letters", "1 dead letter". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/** Shortens long ids in the middle so both ends stay recognisable. */
export function shortId(id: string, keep = 8): string {
  return id.length <= keep * 2 + 1 ? id : `${id.slice(0, keep)}…${id.slice(-keep)}`;
}
