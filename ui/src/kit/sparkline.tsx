import { sparkPath } from "../util/chart";

export function Sparkline({ values, width = 96, height = 22, label }: { values: number[]; width?: number; height?: number; label: string }) {
  const d = sparkPath(values, width, height - 2);
  const last = values[values.length - 1] ?? 0;
  return (
    <svg className="sparkline" width={width} height={height} role="img" aria-label={label}>
      <title>{label}</title>
      <path d={d} transform="translate(0,1)" fill="none" stroke="currentColor" strokeWidth={1.25} />
      {values.length > 0 && <circle cx={width} cy={1 + (height - 2) - (last / Math.max(...values, 1e-9)) * (height - 2)} r={1.8} fill="currentColor" />}
    </svg>
  );
}
