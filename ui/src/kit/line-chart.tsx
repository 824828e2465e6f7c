// A small time-series chart in SVG: a few series on a shared time axis, no library.
// The axis spans the samples this tab has seen, up to `windowMs`, so a fresh tab shows
// its first seconds across the full width instead of a sliver at the right edge.

import { useEffect, useRef, useState } from "react";
import { formatAgeMs, formatCompact } from "../util/format";
import { axisLabel, linePath, niceMax, type Pt } from "../util/chart";

export interface ChartSeries { name: string; color: string; points: Pt[] }

export function LineChart({ title, series, windowMs, nowMs, unit, height = 120 }: { title: string; series: ChartSeries[]; windowMs: number; nowMs: number; unit?: string; height?: number }) {
  // Draw in real pixels (no stretched text): follow the figure's width.
  const ref = useRef<HTMLElement>(null);
  const [width, setWidth] = useState(420);
  useEffect(() => {
    const el = ref.current;
    if (!el || typeof ResizeObserver === "undefined") return;
    const ro = new ResizeObserver(([e]) => setWidth(Math.max(160, Math.floor(e.contentRect.width))));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const padL = 38;
  const padB = 16;
  const w = width - padL - 6;
  const h = height - padB - 6;
  const first = Math.min(...series.map((s) => s.points[0]?.t ?? nowMs));
  const t0 = Math.max(nowMs - windowMs, Math.min(first, nowMs - 10_000));
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p.v))));
  const latest = series.map((s) => s.points[s.points.length - 1]?.v);
  return (
    <figure className="chart" ref={ref}>
      <figcaption>
        <span className="chart-title">{title}</span>
        {series.map((s, i) => (
          <span key={s.name} className="chart-legend"><i style={{ background: s.color }} />{s.name} <b>{latest[i] === undefined ? "–" : formatCompact(latest[i]!)}{unit ?? ""}</b></span>
        ))}
      </figcaption>
      <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title}>
        <g transform={`translate(${padL},6)`}>
          {[0, 0.5, 1].map((f) => (
            <g key={f}>
              <line x1={0} x2={w} y1={h - f * h} y2={h - f * h} className="chart-grid" />
              <text x={-4} y={h - f * h + 3} textAnchor="end" className="chart-axis">{axisLabel(max * f)}</text>
            </g>
          ))}
          <text x={0} y={h + 13} className="chart-axis">−{formatAgeMs(nowMs - t0)}</text>
          <text x={w} y={h + 13} textAnchor="end" className="chart-axis">now</text>
          {series.map((s) => {
            const pts = s.points.filter((p) => p.t >= t0);
            const last = pts[pts.length - 1];
            return (
              <g key={s.name}>
                <path d={linePath(pts, t0, nowMs, max, w, h)} fill="none" stroke={s.color} strokeWidth={1.5} />
                {last && <circle cx={((last.t - t0) / Math.max(1, nowMs - t0)) * w} cy={h - (Math.max(0, last.v) / max) * h} r={2.5} fill={s.color} />}
              </g>
            );
          })}
        </g>
      </svg>
    </figure>
  );
}
