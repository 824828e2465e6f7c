// A small time-series chart in SVG: a few series on a shared time axis, no library.

import { formatCompact } from "../util/format";
import { linePath, niceMax, type Pt } from "../util/chart";

export interface ChartSeries { name: string; color: string; points: Pt[] }

export function LineChart({ title, series, windowMs, nowMs, unit, height = 120 }: { title: string; series: ChartSeries[]; windowMs: number; nowMs: number; unit?: string; height?: number }) {
  const width = 420;
  const padL = 38;
  const padB = 16;
  const w = width - padL - 6;
  const h = height - padB - 6;
  const t0 = nowMs - windowMs;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p.v))));
  const latest = series.map((s) => s.points[s.points.length - 1]?.v);
  return (
    <figure className="chart">
      <figcaption>
        <span className="chart-title">{title}</span>
        {series.map((s, i) => (
          <span key={s.name} className="chart-legend"><i style={{ background: s.color }} />{s.name} <b>{latest[i] === undefined ? "–" : formatCompact(latest[i]!)}{unit ?? ""}</b></span>
        ))}
      </figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="none" role="img" aria-label={title}>
        <g transform={`translate(${padL},6)`}>
          {[0, 0.5, 1].map((f) => (
            <g key={f}>
              <line x1={0} x2={w} y1={h - f * h} y2={h - f * h} className="chart-grid" />
              <text x={-4} y={h - f * h + 3} textAnchor="end" className="chart-axis">{formatCompact(max * f)}</text>
            </g>
          ))}
          <text x={0} y={h + 13} className="chart-axis">−{Math.round(windowMs / 60_000)} min</text>
          <text x={w} y={h + 13} textAnchor="end" className="chart-axis">now</text>
          {series.map((s) => (
            <path key={s.name} d={linePath(s.points.filter((p) => p.t >= t0), t0, nowMs, max, w, h)} fill="none" stroke={s.color} strokeWidth={1.5} />
          ))}
        </g>
      </svg>
    </figure>
  );
}
