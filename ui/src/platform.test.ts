import { describe, expect, it } from "vitest";
import { resolvePlatform } from "./platform";

describe("resolvePlatform", () => {
  it("uses the same origin on the web", async () => {
    expect(await resolvePlatform({})).toEqual({ kind: "web", baseUrl: "", token: null });
  });
  it("asks the Tauri host for the engine URL and token", async () => {
    const calls: string[] = [];
    const win = { __TAURI_INTERNALS__: { invoke: async (cmd: string) => { calls.push(cmd); return { base_url: "http://127.0.0.1:7777", token: "t" }; } } };
    expect(await resolvePlatform(win)).toEqual({ kind: "desktop", baseUrl: "http://127.0.0.1:7777", token: "t" });
    expect(calls).toEqual(["engine_url"]);
  });
  it("fails loudly on a malformed host answer", async () => {
    const win = { __TAURI_INTERNALS__: { invoke: async () => ({}) } };
    await expect(resolvePlatform(win)).rejects.toThrow(/base_url/);
  });
});
