// Who is logged in. The token lives in sessionStorage (gone when the tab closes); the role
// comes from GET /api/whoami and only decides which buttons show: the server enforces it.

import { ApiError, Client, explain, type FetchFn } from "../api/client";
import { whoami } from "../api/session";
import type { Role } from "../api/types";
import type { Platform } from "../platform";
import { createStore } from "./store";

export type Session =
  | { status: "starting" }
  | { status: "logged-out"; reason?: string }
  | { status: "checking" }
  | { status: "ready"; role: Role; client: Client };

const TOKEN_KEY = "switchyard.token";

export const session = createStore<Session>({ status: "starting" });
let platform: Platform = { kind: "web", baseUrl: "", token: null };
let base = new Client({ baseUrl: "" });

function storage(): Storage | null {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}

export async function startSession(p: Platform, fetchFn?: FetchFn): Promise<void> {
  platform = p;
  base = new Client({ baseUrl: p.baseUrl, fetch: fetchFn });
  const token = p.token ?? storage()?.getItem(TOKEN_KEY) ?? null;
  if (!token) {
    session.set({ status: "logged-out" });
    return;
  }
  await login(token);
}

/** Checks a token with whoami; on success keeps it for this tab. Answers an error text or null. */
export async function login(token: string): Promise<string | null> {
  const client = base.withToken(token.trim());
  session.set({ status: "checking" });
  try {
    const role = await whoami(client);
    if (platform.kind === "web") storage()?.setItem(TOKEN_KEY, token.trim());
    session.set({ status: "ready", role, client });
    return null;
  } catch (e) {
    const msg = e instanceof ApiError && e.code === "unauthorized" ? "That token was not accepted. Check it and try again." : explain(e);
    storage()?.removeItem(TOKEN_KEY);
    session.set({ status: "logged-out", reason: msg });
    return msg;
  }
}

export function logout(reason?: string): void {
  storage()?.removeItem(TOKEN_KEY);
  session.set({ status: "logged-out", reason });
}

/** Called when any request answers 401: the token expired or was revoked. */
export function expireSession(): void {
  logout("The server no longer accepts your token. Log in again.");
}
