import type { Client } from "./client";
import type { SseEvent } from "./sse";
import type { FeedEvent, Overview } from "./types";

export type StreamEvent =
  | { kind: "feed"; feed: FeedEvent }
  | { kind: "overview"; overview: Overview };

/** Types one SSE event of /api/stream; unknown events and malformed data are dropped. */
export function decodeStreamEvent(ev: SseEvent): StreamEvent | undefined {
  if (ev.event !== "feed" && ev.event !== "overview") return undefined;
  let data: unknown;
  try {
    data = JSON.parse(ev.data);
  } catch {
    return undefined;
  }
  if (typeof data !== "object" || data === null) return undefined;
  return ev.event === "feed"
    ? { kind: "feed", feed: data as FeedEvent }
    : { kind: "overview", overview: data as Overview };
}

export function openStream(
  client: Client, signal: AbortSignal, onEvent: (ev: StreamEvent) => void, onOpen?: () => void,
): Promise<void> {
  return client.stream("/api/stream", {
    signal,
    onOpen,
    onEvent: (raw) => {
      const ev = decodeStreamEvent(raw);
      if (ev) onEvent(ev);
    },
  });
}
