import type { Client } from "./client";
import type { DeadLetter, DeadLetterReason } from "./types";

const dl = (queue: string) => `/api/queues/${encodeURIComponent(queue)}/dead-letters`;

export interface DeadLetterPage {
  dead_letters: DeadLetter[];
  total: number;
}

export function listDeadLetters(
  client: Client, queue: string, opts: { reason?: DeadLetterReason | ""; limit?: number; signal?: AbortSignal } = {},
): Promise<DeadLetterPage> {
  return client.get<DeadLetterPage>(dl(queue), {
    query: { reason: opts.reason || undefined, limit: opts.limit ?? 100 },
    signal: opts.signal,
  });
}

/**
 * Which dead letters an action applies to: the listed message ids, or (without ids) every
 * dead letter of the queue matching `reason`, all when reason is absent.
 */
export interface Selection {
  ids?: string[];
  reason?: DeadLetterReason;
}

export type DeadLetterAction =
  | { kind: "retry" }
  | { kind: "purge" }
  | { kind: "move"; to: string };

/** Runs an action, or with dryRun only counts what it would touch (the confirmation preview). */
export async function runAction(
  client: Client, queue: string, action: DeadLetterAction, sel: Selection, dryRun: boolean,
): Promise<number> {
  const body: Record<string, unknown> = { dry_run: dryRun };
  if (sel.ids) body.ids = sel.ids;
  if (sel.reason) body.reason = sel.reason;
  if (action.kind === "move") body.to = action.to;
  return (await client.post<{ count: number }>(`${dl(queue)}/${action.kind}`, body)).count;
}
