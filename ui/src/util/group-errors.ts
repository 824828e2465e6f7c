// Groups dead letters by what went wrong, so 10,000 dead letters read as a handful of causes.

import type { DeadLetter } from "../api/types";

/** An error with its variable parts (numbers, ids, quoted values) blanked, for grouping. */
export function errorShape(error: string | null | undefined): string {
  if (!error) return "(no error recorded)";
  return error
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, "<id>")
    .replace(/"[^"]*"|'[^']*'|`[^`]*`/g, "<…>")
    .replace(/\d+(\.\d+)?/g, "#")
    .replace(/\s+/g, " ")
    .trim();
}

export interface ErrorGroup { shape: string; count: number; example: string }

export function groupErrors(dls: readonly DeadLetter[], max = 6): ErrorGroup[] {
  const groups = new Map<string, ErrorGroup>();
  for (const d of dls) {
    const shape = errorShape(d.last_error);
    const g = groups.get(shape);
    if (g) g.count++;
    else groups.set(shape, { shape, count: 1, example: d.last_error ?? "" });
  }
  return [...groups.values()].sort((a, b) => b.count - a.count || a.shape.localeCompare(b.shape)).slice(0, max);
}

export function countReasons(dls: readonly DeadLetter[]): [DeadLetter["reason"], number][] {
  const counts = new Map<DeadLetter["reason"], number>();
  for (const d of dls) counts.set(d.reason, (counts.get(d.reason) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]);
}
