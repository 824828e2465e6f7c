// Desktop smoke test: drives the real Tauri window over W3C WebDriver
// (tauri-driver + WebKitWebDriver) and checks that the console shows the
// local engine's real data. Run under an X server (scripts/desktop-test uses
// Xvfb). Node 20's fetch is the whole WebDriver client.
//
//   node smoke.mjs <path to switchyard-desktop binary>
//
// By default the driver starts the app in local mode with the demo workload
// (SWITCHYARD_DESKTOP_LOCAL, SWITCHYARD_DESKTOP_DEMO, set here). With
// SMOKE_REMOTE=<url> and SMOKE_TOKEN=<token> it starts it in remote mode on
// that `switchyard serve --demo` instead. Fails when the demo's queues do not
// appear in the console's queue table.

import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const application = resolve(process.argv[2] ?? "");
const port = Number(process.env.SMOKE_DRIVER_PORT ?? 4444);
const remote = process.env.SMOKE_REMOTE ?? "";
const screenshot = join(here, remote ? "screenshot-remote.png" : "screenshot.png");
const started = Date.now();
const since = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const log = (msg) => console.log(`[desktop-smoke ${since()}] ${msg}`);

const home = mkdtempSync(join(tmpdir(), "switchyard-desktop-smoke-"));
const mode = remote
  ? { SWITCHYARD_DESKTOP_REMOTE: remote, SWITCHYARD_DESKTOP_TOKEN: process.env.SMOKE_TOKEN ?? "" }
  : { SWITCHYARD_DESKTOP_LOCAL: join(home, "data"), SWITCHYARD_DESKTOP_DEMO: "1" };
const env = {
  ...process.env,
  ...mode,
  // Keep the recent list and app data of the test out of the user's.
  XDG_CONFIG_HOME: join(home, "config"),
  XDG_DATA_HOME: join(home, "share"),
  RUST_LOG: process.env.RUST_LOG ?? "warn",
};
const driver = spawn("tauri-driver", ["--port", String(port), "--native-port", String(port + 1)], {
  env,
  stdio: ["ignore", "inherit", "inherit"],
});
let session = null;

async function wd(method, path, body) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(json.value ?? json)}`);
  return json.value;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, probe, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await probe();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

const run = (script, args = []) => wd("POST", `/session/${session}/execute/sync`, { script, args });
const runAsync = (script, args = []) => wd("POST", `/session/${session}/execute/async`, { script, args });

async function main() {
  await waitFor("tauri-driver", async () => (await fetch(`http://127.0.0.1:${port}/status`)).ok, 10000);
  const created = await wd("POST", "/session", {
    capabilities: { alwaysMatch: { browserName: "wry", "tauri:options": { application } } },
  });
  session = created.sessionId;
  log(`window up (session ${session})`);

  // Where the app says its engine is: the same question the console asks.
  const where = await runAsync(
    "const done = arguments[arguments.length - 1];" +
      "window.__TAURI_INTERNALS__.invoke('engine_url').then(done, (e) => done({ error: String(e) }));",
  );
  const expected = remote ? (u) => u === remote.replace(/\/$/, "") : (u) => /^http:\/\/127\.0\.0\.1:\d+$/.test(u);
  if (!where || where.error || !expected(where.base_url ?? "")) {
    throw new Error(`engine_url answered ${JSON.stringify(where)}: expected ${remote || "http://127.0.0.1:PORT"}`);
  }
  if (typeof where.token !== "string" || where.token.length < 32) throw new Error("engine_url gave no token");
  log(`engine at ${where.base_url}`);

  // The engine's own answer, through the app's engine and token.
  const api = await fetch(`${where.base_url}/api/queues`, { headers: { authorization: `Bearer ${where.token}` } });
  if (!api.ok) throw new Error(`GET /api/queues: HTTP ${api.status}`);
  const names = (await api.json()).queues.map((q) => q.name);
  if (!names.includes("orders")) throw new Error(`the demo's queues are missing from the API: ${names}`);
  const anonymous = await fetch(`${where.base_url}/api/queues`);
  if (anonymous.ok) throw new Error("the engine answered /api/queues without a token");

  // The console must show the same queues (fetched cross-origin from the
  // webview under its CSP and the engine's CORS).
  await run("location.hash = '#/queues';");
  const shown = await waitFor(
    "the queue table to list the demo's queues",
    async () => {
      const rows = await run(
        "return Array.from(document.querySelectorAll('[data-testid=queue-row]')).map((r) => r.getAttribute('data-queue'));",
      );
      return names.every((n) => rows.includes(n)) ? rows : null;
    },
    20000,
  );
  log(`console lists ${shown.length} queues: ${shown.join(", ")}`);
  const ordersText = await run(
    "const r = document.querySelector('[data-testid=queue-row][data-queue=orders]'); return r ? r.innerText : '';",
  );
  if (!ordersText.includes("orders")) throw new Error(`the orders row shows no text: ${JSON.stringify(ordersText)}`);

  // WebKit's screenshot can lag the DOM by a frame: wait for two.
  await runAsync(
    "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
  );
  const png = await wd("GET", `/session/${session}/screenshot`);
  writeFileSync(screenshot, Buffer.from(png, "base64"));
  log(`screenshot saved to ${screenshot}`);
}

let failed = false;
try {
  await main();
  log("PASS");
} catch (e) {
  failed = true;
  console.error(`[desktop-smoke ${since()}] FAIL: ${e.message}`);
} finally {
  if (session) await wd("DELETE", `/session/${session}`).catch(() => {});
  driver.kill("SIGTERM");
  await sleep(200);
  rmSync(home, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
