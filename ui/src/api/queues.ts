import type { Client } from "./client";
import type { Delivery, Message, Overview, QueueSpec, QueueSummary, SendBody } from "./types";

const q = (name: string) => `/api/queues/${encodeURIComponent(name)}`;

export function getOverview(client: Client, signal?: AbortSignal): Promise<Overview> {
  return client.get<Overview>("/api/overview", { signal });
}

export async function listQueues(client: Client, signal?: AbortSignal): Promise<QueueSummary[]> {
  return (await client.get<{ queues: QueueSummary[] }>("/api/queues", { signal })).queues;
}

export function getQueue(client: Client, name: string, signal?: AbortSignal): Promise<QueueSummary> {
  return client.get<QueueSummary>(q(name), { signal });
}

export function declareQueue(client: Client, name: string, spec: QueueSpec): Promise<QueueSummary> {
  return client.put<QueueSummary>(q(name), spec);
}

export async function deleteQueue(client: Client, name: string): Promise<number> {
  return (await client.delete<{ deleted_messages: number }>(q(name))).deleted_messages;
}

/** Peeks at up to `limit` messages without leasing them. */
export async function peekMessages(client: Client, name: string, limit: number, signal?: AbortSignal): Promise<Message[]> {
  return (await client.get<{ messages: Message[] }>(`${q(name)}/messages`, { query: { limit }, signal })).messages;
}

export function sendMessage(client: Client, name: string, body: SendBody): Promise<{ id: string; duplicate: boolean }> {
  return client.post(`${q(name)}/messages`, body);
}

export async function sendBatch(client: Client, name: string, messages: SendBody[]): Promise<string[]> {
  return (await client.post<{ ids: string[] }>(`${q(name)}/batch`, { messages })).ids;
}

export async function receive(client: Client, name: string, max: number, opts: { lease_ms?: number; wait_ms?: number } = {}): Promise<Delivery[]> {
  return (await client.post<{ deliveries: Delivery[] }>(`${q(name)}/receive`, { max, ...opts })).deliveries;
}

export async function ack(client: Client, leases: string[]): Promise<{ lease: string; ok: boolean; error?: string }[]> {
  return (await client.post<{ results: { lease: string; ok: boolean; error?: string }[] }>("/api/ack", { leases })).results;
}
