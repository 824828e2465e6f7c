// The console's one door to the server: the only module that calls fetch.
// It takes an injectable fetch so unit tests pass fakes and assert URLs, headers and bodies.

import type { ErrorBody } from "./types";
import { SseParser, type SseEvent } from "./sse";

export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

/**
 * Every failure of an API call. `code` is the server's stable code from docs/api.md
 * (`unauthorized`, `forbidden`, `unknown_queue`, ...), or one of the client's own:
 * `network` (no answer at all), `bad_response` (an answer that is not the documented JSON),
 * `aborted` (the caller cancelled).
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

export interface ClientOptions {
  /** "" for same origin (the web console), or e.g. "http://127.0.0.1:8080" (desktop). */
  baseUrl: string;
  token?: string | null;
  fetch?: FetchFn;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined | null>;
  body?: unknown;
  signal?: AbortSignal;
}

export interface StreamOptions {
  signal: AbortSignal;
  onEvent: (event: SseEvent) => void;
  /** Called once the server answered 200 and the body is being read. */
  onOpen?: () => void;
}

export class Client {
  readonly baseUrl: string;
  readonly token: string | null;
  private readonly fetchFn: FetchFn;

  constructor(opts: ClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.token = opts.token ?? null;
    // Bind so a global fetch is not called with the client as `this` (TypeError in browsers).
    this.fetchFn = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  withToken(token: string | null): Client {
    return new Client({ baseUrl: this.baseUrl, token, fetch: this.fetchFn });
  }

  url(path: string, query?: RequestOptions["query"]): string {
    let url = this.baseUrl + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) {
        if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
      }
      const qs = params.toString();
      if (qs) url += "?" + qs;
    }
    return url;
  }

  private headers(json: boolean, accept = "application/json"): Record<string, string> {
    const h: Record<string, string> = { accept };
    if (json) h["content-type"] = "application/json";
    if (this.token) h["authorization"] = `Bearer ${this.token}`;
    return h;
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const hasBody = opts.body !== undefined;
    const res = await this.send(this.url(path, opts.query), {
      method,
      headers: this.headers(hasBody),
      body: hasBody ? JSON.stringify(opts.body) : undefined,
      signal: opts.signal,
    });
    if (!res.ok) throw await errorFrom(res);
    const text = await res.text();
    if (text === "") return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(res.status, "bad_response", `${method} ${path}: answer is not JSON`);
    }
  }

  get<T>(path: string, opts?: RequestOptions): Promise<T> {
    return this.request<T>("GET", path, opts);
  }
  post<T>(path: string, body: unknown, opts?: RequestOptions): Promise<T> {
    return this.request<T>("POST", path, { ...opts, body });
  }
  put<T>(path: string, body: unknown, opts?: RequestOptions): Promise<T> {
    return this.request<T>("PUT", path, { ...opts, body });
  }
  delete<T>(path: string, opts?: RequestOptions): Promise<T> {
    return this.request<T>("DELETE", path, opts);
  }

  /**
   * Reads a server-sent-events stream until it ends, the signal aborts, or the network fails.
   * Resolves when the server closes the stream; rejects with ApiError otherwise (code
   * `aborted` after the signal fired). Reconnecting is the caller's job (state/live.ts).
   */
  async stream(path: string, opts: StreamOptions): Promise<void> {
    const res = await this.send(this.url(path), {
      method: "GET",
      headers: this.headers(false, "text/event-stream"),
      signal: opts.signal,
      cache: "no-store",
    });
    if (!res.ok) throw await errorFrom(res);
    if (!res.body) throw new ApiError(res.status, "bad_response", `${path}: no response body`);
    opts.onOpen?.();
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (const ev of parser.push(decoder.decode(value, { stream: true }))) opts.onEvent(ev);
      }
      for (const ev of parser.push(decoder.decode() + "\n\n")) opts.onEvent(ev);
    } catch (e) {
      throw toApiError(e, opts.signal);
    } finally {
      reader.releaseLock?.();
    }
  }

  private async send(url: string, init: RequestInit): Promise<Response> {
    try {
      return await this.fetchFn(url, init);
    } catch (e) {
      throw toApiError(e, init.signal ?? undefined);
    }
  }
}

function toApiError(e: unknown, signal?: AbortSignal): ApiError {
  if (e instanceof ApiError) return e;
  if (signal?.aborted || (e instanceof Error && e.name === "AbortError")) {
    return new ApiError(0, "aborted", "request cancelled");
  }
  const detail = e instanceof Error ? e.message : String(e);
  return new ApiError(0, "network", `cannot reach the server (${detail})`);
}

/** Maps a non-2xx answer to ApiError, trusting the documented `{"error":{code,message}}` body. */
export async function errorFrom(res: Response): Promise<ApiError> {
  let text = "";
  try {
    text = await res.text();
  } catch {
    // body unreadable: fall through to the status-based error
  }
  try {
    const body = JSON.parse(text) as Partial<ErrorBody>;
    if (body && body.error && typeof body.error.code === "string") {
      return new ApiError(res.status, body.error.code, String(body.error.message ?? body.error.code));
    }
  } catch {
    // not JSON: a proxy page or a plain-text panic; use the status
  }
  return new ApiError(res.status, codeForStatus(res.status), text.trim().slice(0, 300) || `HTTP ${res.status}`);
}

function codeForStatus(status: number): string {
  switch (status) {
    case 400: return "invalid_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 409: return "conflict";
    case 413: return "payload_too_large";
    case 503: return "unavailable";
    default: return status >= 500 ? "internal" : "bad_response";
  }
}

/** What to tell an operator about an error, in one sentence that says what to do. */
export function explain(e: unknown): string {
  if (!(e instanceof ApiError)) return e instanceof Error ? e.message : String(e);
  switch (e.code) {
    case "unauthorized": return "The token was refused. Log in again with a valid token.";
    case "forbidden": return `Your role may not do this (${e.message}). Ask an admin for an operator or admin token.`;
    case "network": return `${e.message}. Check that switchyard serve is running and reachable.`;
    case "unavailable": return "The server is shutting down or not ready. Try again in a moment.";
    default: return e.message;
  }
}
