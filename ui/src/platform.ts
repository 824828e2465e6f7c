// Where the engine is. The web console is served by `switchyard serve` itself, so the API
// is same-origin (base ""). The Tauri desktop app loads the same build from disk and asks
// its host for the engine's URL and a token with the `engine_url` command.
//
// Tauri 2 injects `window.__TAURI_INTERNALS__.invoke`; we call it directly rather than
// depending on @tauri-apps/api, so the web build carries no desktop code.

export interface Platform {
  kind: "web" | "desktop";
  baseUrl: string;
  /** A token the host provides (desktop); the web console asks the operator for one. */
  token: string | null;
}

interface TauriInternals {
  invoke: (cmd: string, args?: Record<string, unknown>) => Promise<unknown>;
}

export async function resolvePlatform(win: { __TAURI_INTERNALS__?: TauriInternals } = window as never): Promise<Platform> {
  const tauri = win.__TAURI_INTERNALS__;
  if (tauri && typeof tauri.invoke === "function") {
    const answer = (await tauri.invoke("engine_url")) as { base_url?: unknown; token?: unknown } | null;
    if (!answer || typeof answer.base_url !== "string") {
      throw new Error("the desktop host answered engine_url without a base_url");
    }
    return { kind: "desktop", baseUrl: answer.base_url, token: typeof answer.token === "string" ? answer.token : null };
  }
  return { kind: "web", baseUrl: "", token: null };
}
