import type { Client } from "./client";
import type { Flow, FlowSummary } from "./types";

export async function listFlows(client: Client, limit = 50, signal?: AbortSignal): Promise<FlowSummary[]> {
  return (await client.get<{ flows: FlowSummary[] }>("/api/flows", { query: { limit }, signal })).flows;
}

/** Looks an id up as a correlation id, then a message id, then a trace id. */
export function lookupFlow(client: Client, id: string, signal?: AbortSignal): Promise<Flow> {
  return client.get<Flow>(`/api/flows/lookup/${encodeURIComponent(id)}`, { signal });
}

export function flowOfMessage(client: Client, id: string, signal?: AbortSignal): Promise<Flow> {
  return client.get<Flow>(`/api/flows/message/${encodeURIComponent(id)}`, { signal });
}
