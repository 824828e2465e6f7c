// A small end-to-end harness: real Chromium (playwright-core, Debian's binary), a real
// `switchyard serve`, no mocks. Tests register with `test(name, fn)`; each gets a fresh
// browser context. The API helper here is the test's own door for setup and checks.

import { chromium } from "playwright-core";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
export const SCREENSHOTS = path.join(E2E_DIR, "screenshots");

const REQUIRED = ["SWITCHYARD_URL", "SWITCHYARD_ADMIN_TOKEN", "SWITCHYARD_OPERATOR_TOKEN", "SWITCHYARD_VIEWER_TOKEN"];

export function readEnv() {
  const missing = REQUIRED.filter((k) => !process.env[k]);
  if (missing.length) {
    console.error(`e2e: missing ${missing.join(", ")}.\n` +
      "Start a server (e.g. `switchyard serve --demo`) and export its URL and the three role tokens.");
    process.exit(2);
  }
  return {
    url: process.env.SWITCHYARD_URL.replace(/\/+$/, ""),
    tokens: {
      admin: process.env.SWITCHYARD_ADMIN_TOKEN,
      operator: process.env.SWITCHYARD_OPERATOR_TOKEN,
      viewer: process.env.SWITCHYARD_VIEWER_TOKEN,
    },
    chromium: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    perfBudgetMs: Number(process.env.E2E_PERF_BUDGET_MS ?? 1000),
    only: process.env.E2E_ONLY ?? "",
  };
}

export class Api {
  constructor(url, token) { this.url = url; this.token = token; }
  async call(method, p, body) {
    const res = await fetch(this.url + p, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const data = text ? JSON.parse(text) : undefined;
    if (!res.ok) throw new Error(`${method} ${p} → ${res.status} ${text.slice(0, 300)}`);
    return data;
  }
  get(p) { return this.call("GET", p); }
  post(p, b) { return this.call("POST", p, b); }
  put(p, b) { return this.call("PUT", p, b); }
  del(p) { return this.call("DELETE", p); }
}

export function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

/** Polls `fn` until it answers a truthy value; no fixed sleeps in the tests themselves. */
export async function waitFor(what, fn, { timeoutMs = 30_000, everyMs = 500 } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const tests = [];
export function test(name, fn) { tests.push({ name, fn }); }

export async function run(env) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  for (const f of readdirSync(SCREENSHOTS)) if (f.startsWith("failure-")) rmSync(path.join(SCREENSHOTS, f));
  const browser = await chromium.launch({
    executablePath: env.chromium,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const results = [];
  try {
    for (const t of tests) {
      if (env.only && !t.name.includes(env.only)) continue;
      const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      const page = await context.newPage();
      const errors = [];
      page.on("pageerror", (e) => errors.push(e.message));
      page.setDefaultTimeout(20_000);
      const started = Date.now();
      try {
        await t.fn({ page, context, env, errors });
        assert(errors.length === 0, `uncaught page errors: ${errors.join(" | ")}`);
        results.push({ name: t.name, ok: true, ms: Date.now() - started });
        console.log(`ok    ${t.name} (${Date.now() - started} ms)`);
      } catch (e) {
        results.push({ name: t.name, ok: false, ms: Date.now() - started, error: e });
        console.log(`FAIL  ${t.name}\n      ${String(e?.stack ?? e).split("\n").slice(0, 6).join("\n      ")}`);
        await page.screenshot({ path: path.join(SCREENSHOTS, `failure-${t.name.replace(/\W+/g, "-")}.png`) }).catch(() => {});
      } finally {
        await context.close();
      }
    }
  } finally {
    await browser.close();
  }
  const failed = results.filter((r) => !r.ok);
  console.log(`\n${results.length - failed.length} passed, ${failed.length} failed`);
  return failed.length === 0;
}

/** Opens the console already logged in with `token` (sessionStorage, as after a login). */
export async function openAs(page, env, token, hash = "#/") {
  await page.addInitScript((t) => sessionStorage.setItem("switchyard.token", t), token);
  await page.goto(`${env.url}/${hash}`);
}

export async function shot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: false });
}

/** Milliseconds from navigation start to a performance mark the app sets, waiting for it. */
export async function markTime(page, mark, timeoutMs = 20_000) {
  await page.waitForFunction((m) => performance.getEntriesByName(m).length > 0, mark, { timeout: timeoutMs });
  return page.evaluate((m) => performance.getEntriesByName(m)[0].startTime, mark);
}
