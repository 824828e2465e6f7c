/**
 * Reconnection delay after `attempt` consecutive failures: exponential from `baseMs`, capped
 * at `maxMs`, with "full jitter" in the upper half so many consoles do not reconnect in step.
 */
export function backoffMs(attempt: number, baseMs = 500, maxMs = 15_000, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
