// Hash routes: every view has a URL an operator can paste. The hash keeps the server
// simple (it serves index.html at `/` only) and works unchanged from a file:// Tauri page.

import type { DeadLetterReason } from "../api/types";

export type Route =
  | { page: "overview" }
  | { page: "queues" }
  | { page: "queue"; name: string }
  | { page: "dead-letters"; queue?: string; id?: string; reason?: DeadLetterReason }
  | { page: "flows" }
  | { page: "flow"; id: string; span?: string }
  | { page: "message"; id: string }
  | { page: "not-found"; path: string };

const REASONS: DeadLetterReason[] = ["rejected", "max_retries", "expired", "overflow"];

export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, "");
  const [pathPart, queryPart = ""] = raw.split("?", 2);
  const query = new URLSearchParams(queryPart);
  let segs: string[];
  try {
    segs = pathPart.split("/").filter((s) => s !== "").map(decodeURIComponent);
  } catch {
    return { page: "not-found", path: raw };
  }
  const reasonParam = query.get("reason");
  const reason = REASONS.find((r) => r === reasonParam);
  const withReason = <T extends object>(r: T): T => (reason ? { ...r, reason } : r);
  const [a, b, c, d, ...rest] = segs;
  if (rest.length > 0) return { page: "not-found", path: raw };
  if (a === undefined) return { page: "overview" };
  if (a === "queues") {
    if (b === undefined) return { page: "queues" };
    if (c === undefined) return { page: "queue", name: b };
    if (c === "dead-letters") return withReason(d === undefined ? { page: "dead-letters", queue: b } : { page: "dead-letters", queue: b, id: d });
  }
  if (a === "dead-letters" && c === undefined) return withReason(b === undefined ? { page: "dead-letters" } : { page: "dead-letters", id: b });
  if (a === "flows") {
    if (b === undefined) return { page: "flows" };
    if (c === undefined) {
      const span = query.get("span");
      return span ? { page: "flow", id: b, span } : { page: "flow", id: b };
    }
  }
  if (a === "messages" && b !== undefined && c === undefined) return { page: "message", id: b };
  return { page: "not-found", path: raw };
}

const enc = encodeURIComponent;

export function href(route: Route): string {
  switch (route.page) {
    case "overview": return "#/";
    case "queues": return "#/queues";
    case "queue": return `#/queues/${enc(route.name)}`;
    case "dead-letters": {
      const id = route.id ? `/${enc(route.id)}` : "";
      const base = route.queue === undefined ? `#/dead-letters${id}` : `#/queues/${enc(route.queue)}/dead-letters${id}`;
      return route.reason ? `${base}?reason=${route.reason}` : base;
    }
    case "flows": return "#/flows";
    case "flow": return `#/flows/${enc(route.id)}${route.span ? `?span=${enc(route.span)}` : ""}`;
    case "message": return `#/messages/${enc(route.id)}`;
    case "not-found": return `#/${route.path}`;
  }
}

export const hrefs = {
  overview: () => href({ page: "overview" }),
  queues: () => href({ page: "queues" }),
  queue: (name: string) => href({ page: "queue", name }),
  deadLetters: (queue?: string, id?: string) => href({ page: "dead-letters", queue, id }),
  flows: () => href({ page: "flows" }),
  flow: (id: string, span?: string) => href({ page: "flow", id, span }),
  message: (id: string) => href({ page: "message", id }),
};
