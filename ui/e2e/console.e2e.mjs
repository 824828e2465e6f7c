// Browser tests of the console against a real `switchyard serve --demo`.

import { writeFileSync } from "node:fs";
import path from "node:path";
import { Api, E2E_DIR, assert, markTime, openAs, shot, test, waitFor } from "./harness.mjs";

const perf = {};
const stamp = () => `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;

test("log in with a token and see the overview", async ({ page, env }) => {
  await page.goto(`${env.url}/`);
  await page.getByTestId("token-input").fill("definitely-not-a-token");
  await page.getByTestId("login-button").click();
  await page.getByRole("alert").filter({ hasText: /not accepted|token/i }).waitFor();
  await page.getByTestId("token-input").fill(env.tokens.admin);
  await page.getByTestId("login-button").click();
  await page.getByTestId("overview-page").waitFor();
  await page.getByTestId("stat-cards").waitFor();
  await page.getByTestId("live-status").filter({ hasText: "live" }).waitFor({ timeout: 15_000 });
  await shot(page, "overview");
});

test("overview first render time", async ({ page, env }) => {
  await openAs(page, env, env.tokens.viewer, "#/");
  perf.overview_first_render_ms = Math.round(await markTime(page, "switchyard:overview-rendered"));
  console.log(`      overview first render: ${perf.overview_first_render_ms} ms`);
  assert(perf.overview_first_render_ms < env.perfBudgetMs, `overview rendered in ${perf.overview_first_render_ms} ms, budget ${env.perfBudgetMs} ms`);
});

test("find a demo dead letter in the dead letters view and open its flow", async ({ page, env }) => {
  const api = new Api(env.url, env.tokens.viewer);
  // The demo workload dead-letters declined and poison orders; wait until one exists.
  await waitFor("a queue with dead letters", async () => {
    const { queues } = await api.get("/api/queues");
    return queues.some((q) => q.stats.dead_lettered > 0);
  }, { timeoutMs: 120_000, everyMs: 1000 });
  await openAs(page, env, env.tokens.operator, "#/dead-letters");
  const row = page.getByTestId("dead-letter-row").first();
  await row.waitFor();
  await row.click();
  await page.getByTestId("dead-letter-detail").waitFor();
  await shot(page, "dead-letters");
  await page.getByTestId("open-flow").click();
  await page.getByTestId("flow-page").waitFor();
  await page.getByTestId("flow-graph").waitFor();
  const failed = page.locator("[data-testid=span-row][data-error]").first();
  await failed.waitFor();
  await failed.click();
  await page.getByTestId("span-details").waitFor();
  await shot(page, "flow");
});

test("retry a demo order dead-lettered by the carrier outage; the demo's shipping handler acks it", async ({ page, env }) => {
  const api = new Api(env.url, env.tokens.viewer);
  // Shipments hit by the demo's carrier outage use up their retries, then succeed once an
  // operator retries them. Wait for one to reach shipping.dlq.
  const dead = await waitFor("a carrier-outage dead letter in shipping.dlq", async () => {
    const { dead_letters } = await api.get("/api/queues/shipping.dlq/dead-letters?limit=100");
    return dead_letters.find((d) => d.reason === "max_retries" && /carrier/.test(d.last_error ?? ""));
  }, { timeoutMs: 120_000, everyMs: 500 });
  const id = dead.message.id;
  await openAs(page, env, env.tokens.operator, "#/dead-letters");
  const row = page.locator(`[data-testid=dead-letter-row][data-message-id="${id}"]`);
  await row.waitFor();
  await row.click();
  await page.getByTestId("dead-letter-detail").waitFor();
  await page.getByTestId("open-flow").click();
  await page.getByTestId("flow-page").waitFor();
  await page.getByTestId("flow-graph").waitFor();
  await page.goBack();
  await page.getByTestId("dead-letter-detail").waitFor();
  await page.getByTestId("retry-one").click();
  await page.getByTestId("confirm-count").waitFor();
  const retriedAtUs = Date.now() * 1000;
  await page.getByTestId("confirm-button").click();
  await page.getByText(/Retried 1 dead letter/).waitFor();
  // Through the API: redelivered to shipping and acked by the demo's handler.
  await waitFor(`an acked shipping delivery of ${id} after the retry`, async () => {
    const flow = await api.get(`/api/flows/message/${encodeURIComponent(id)}`);
    const redrive = flow.timeline.some((s) => s.message_id === id && s.operation === "retried");
    const acked = flow.timeline.some((s) => s.message_id === id && s.queue === "shipping"
      && s.operation === "process" && s.outcome === "acked" && s.start_us >= retriedAtUs - 5_000_000);
    return redrive && acked;
  }, { timeoutMs: 20_000, everyMs: 250 });
  const { dead_letters } = await api.get("/api/queues/shipping.dlq/dead-letters?limit=1000");
  assert(!dead_letters.some((d) => d.message.id === id), "the order is no longer dead-lettered");
});

// The demo's dead letters fail again by design (declined cards are rejected, poison orders
// fail every attempt), so retrying one of them can never end in an ack. This test makes its
// own dead-lettered order in a fresh queue, retries it from the console, and then acts as
// the consumer that handles the redelivery.
test("retry a dead-lettered order from the console; it is redelivered and acked", async ({ page, env }) => {
  const api = new Api(env.url, env.tokens.admin);
  const queue = `e2e-orders-${stamp()}`;
  const correlation = `e2e-order-${stamp()}`;
  await api.put(`/api/queues/${queue}`, { durable: false, max_retries: 0 });
  try {
    const { id } = await api.post(`/api/queues/${queue}/messages`, {
      payload: { order_id: 4242, customer: "ada", amount_cents: 1999, trouble: "declined" },
      source: "e2e-shop", correlation_id: correlation,
    });
    const first = await receiveOne(api, queue, id);
    await api.post("/api/reject", { lease: first.lease, error: "card declined for ada (1999 cents)" });
    await waitFor("the order to be dead-lettered", async () => {
      const { dead_letters } = await api.get(`/api/queues/${queue}/dead-letters?limit=100`);
      return dead_letters.some((d) => d.message.id === id);
    });

    // Find it in the dead letters view (all queues), read the error, open its flow.
    await openAs(page, env, env.tokens.operator, "#/dead-letters");
    const row = page.locator(`[data-testid=dead-letter-row][data-message-id="${id}"]`);
    await row.waitFor();
    await row.click();
    const error = page.getByTestId("last-error");
    await error.waitFor();
    assert((await error.textContent()).includes("card declined"), "the last error is shown");
    await page.getByTestId("open-flow").click();
    await page.getByTestId("flow-page").waitFor();
    await page.locator("[data-testid=span-row][data-error]").first().waitFor();

    // Back to the dead letter; retry it, confirming the previewed count.
    await page.goBack();
    await page.getByTestId("dead-letter-detail").waitFor();
    await page.getByTestId("retry-one").click();
    const count = page.getByTestId("confirm-count");
    await count.waitFor();
    assert(/\b1 dead letter\b/.test(await count.textContent()), `the preview counts one dead letter: ${await count.textContent()}`);
    const retriedAtUs = Date.now() * 1000;
    await page.getByTestId("confirm-button").click();
    await page.getByText(/Retried 1 dead letter/).waitFor();

    // Redelivered to the original queue: consume and ack it like a handler would.
    const again = await receiveOne(api, queue, id);
    // A retried dead letter starts a fresh retry budget (attempt 1) and keeps its provenance.
    assert(again.attempt === 1, `the retry starts a fresh attempt count (attempt ${again.attempt})`);
    assert((again.message.history ?? []).some((h) => h.event === "retried"),
      `the redelivered message records the operator's retry: ${JSON.stringify(again.message.history)}`);
    const { results } = await api.post("/api/ack", { leases: [again.lease] });
    assert(results[0]?.ok, `ack accepted: ${JSON.stringify(results)}`);

    // Through the API: the message's flow now has an ack after the retry.
    await waitFor(`an ack span for ${id} after the retry`, async () => {
      const flow = await api.get(`/api/flows/message/${encodeURIComponent(id)}`);
      return flow.timeline.some((s) => s.message_id === id && s.operation === "ack" && s.start_us >= retriedAtUs - 5_000_000);
    });
    const { dead_letters } = await api.get(`/api/queues/${queue}/dead-letters?limit=100`);
    assert(!dead_letters.some((d) => d.message.id === id), "the order is no longer dead-lettered");
  } finally {
    await api.del(`/api/queues/${queue}`).catch(() => {});
  }
});

/** Receives from `queue` until the message `id` is delivered (other messages are released). */
async function receiveOne(api, queue, id) {
  return waitFor(`delivery of ${id} from ${queue}`, async () => {
    const { deliveries } = await api.post(`/api/queues/${queue}/receive`, { max: 10, wait_ms: 1000 });
    const mine = deliveries.find((d) => d.message.id === id);
    for (const d of deliveries) if (d !== mine) await api.post("/api/nack", { lease: d.lease, error: "not the e2e message" });
    return mine;
  }, { timeoutMs: 20_000, everyMs: 100 });
}

test("a viewer sees no retry, purge, move, declare or delete buttons", async ({ page, env }) => {
  await page.goto(`${env.url}/`);
  await page.getByTestId("token-input").fill(env.tokens.viewer);
  await page.getByTestId("login-button").click();
  await page.getByTestId("overview-page").waitFor();
  await page.goto(`${env.url}/#/dead-letters`);
  await page.getByTestId("dead-letters-page").waitFor();
  await page.getByTestId("dead-letter-row").first().or(page.getByText("No dead letters")).first().waitFor();
  if (await page.getByTestId("dead-letter-row").count()) {
    await page.getByTestId("dead-letter-row").first().click();
    await page.getByTestId("dead-letter-detail").waitFor();
  }
  for (const id of ["dl-actions", "retry-one", "retry-matching", "retry-selected"]) {
    assert((await page.getByTestId(id).count()) === 0, `viewer must not see ${id}`);
  }
  assert((await page.getByRole("button", { name: /retry|purge|move/i }).count()) === 0, "no retry/purge/move button at all");
  await page.goto(`${env.url}/#/queues`);
  await page.getByTestId("queues-page").waitFor();
  assert((await page.getByTestId("declare-toggle").count()) === 0, "viewer must not see declare");
  const first = page.locator("[data-testid=queue-row] a", { hasText: /./ }).first();
  if (await first.count()) {
    await first.click();
    await page.getByTestId("queue-page").waitFor();
    assert((await page.getByTestId("delete-queue").count()) === 0, "viewer must not see delete");
    assert((await page.getByTestId("queue-retry-all").count()) === 0, "viewer must not see retry on the queue page");
  }
});

test("a <script> payload renders as text", async ({ page, env }) => {
  const admin = new Api(env.url, env.tokens.admin);
  const queue = `e2e-xss-${stamp()}`;
  await admin.put(`/api/queues/${queue}`, { durable: false });
  try {
    const evil = "<script>window.__xss=1</script>";
    await admin.post(`/api/queues/${queue}/messages`, {
      payload: { note: evil }, headers: { "x-evil": '<img src=x onerror="window.__xss=2">' }, correlation_id: `xss-${stamp()}`,
    });
    await openAs(page, env, env.tokens.admin, `#/queues/${queue}`);
    await page.getByTestId("message-row").first().click();
    const payload = page.getByTestId("message-payload");
    await payload.waitFor();
    assert((await payload.textContent()).includes(evil), "the payload shows the script tag as text");
    assert((await page.getByTestId("message-headers").textContent()).includes("<img src=x"), "the header shows the img tag as text");
    assert((await page.evaluate(() => window.__xss)) === undefined, "no injected script ran");
    assert((await page.locator("#root script, #root img").count()) === 0, "no script or img element was created");
    await shot(page, "queue");
  } finally {
    await admin.del(`/api/queues/${queue}`).catch(() => {});
  }
});

test("screenshots of the queues, flows and message views", async ({ page, env }) => {
  const api = new Api(env.url, env.tokens.viewer);
  await openAs(page, env, env.tokens.admin, "#/queues");
  await page.getByTestId("queue-table").waitFor();
  await shot(page, "queues");
  await page.goto(`${env.url}/#/flows`);
  await page.getByTestId("flows-page").waitFor();
  await page.getByTestId("flow-row").first().or(page.getByText("No flows recorded yet")).first().waitFor();
  await shot(page, "flows");
  const { flows } = await api.get("/api/flows?limit=5");
  if (flows.length) {
    const flow = await api.get(`/api/flows/correlation/${encodeURIComponent(flows[0].correlation_id)}`);
    const mid = flow.timeline.find((s) => s.message_id)?.message_id;
    if (mid) {
      await page.goto(`${env.url}/#/messages/${encodeURIComponent(mid)}`);
      await page.getByTestId("message-page").waitFor();
      await page.getByTestId("span-row").first().waitFor();
      await shot(page, "message");
    }
  }
});

test("a 1,000-span flow renders within budget", async ({ page, env }) => {
  const api = new Api(env.url, env.tokens.admin);
  const queue = `e2e-perf-${stamp()}`;
  const correlation = `e2e-perf-${stamp()}`;
  await api.put(`/api/queues/${queue}`, { durable: false });
  try {
    // Send messages with one correlation id and consume them until the flow has 1,000 spans.
    let spans = 0;
    for (let round = 0; round < 40 && spans < 1000; round++) {
      const messages = Array.from({ length: 50 }, (_, i) => ({ payload: { round, i }, correlation_id: correlation, source: "e2e" }));
      await api.post(`/api/queues/${queue}/batch`, { messages });
      for (;;) {
        const { deliveries } = await api.post(`/api/queues/${queue}/receive`, { max: 50, wait_ms: 0 });
        if (!deliveries.length) break;
        await api.post("/api/ack", { leases: deliveries.map((d) => d.lease) });
      }
      spans = (await api.get(`/api/flows/correlation/${encodeURIComponent(correlation)}`)).timeline.length;
    }
    assert(spans >= 1000, `built a flow of ${spans} spans`);
    await openAs(page, env, env.tokens.viewer, `#/flows/${encodeURIComponent(correlation)}`);
    const ms = Math.round(await markTime(page, "switchyard:flow-rendered"));
    await page.getByTestId("span-row").first().waitFor();
    const rows = Number(await page.getByTestId("waterfall").getAttribute("data-rows"));
    perf.flow_spans = spans;
    perf.flow_first_render_ms = ms;
    console.log(`      ${spans}-span flow first render: ${ms} ms (${rows} rows laid out, ${await page.getByTestId("span-row").count()} in the DOM)`);
    // Scrolling to the end stays responsive: the virtualized list keeps the DOM small.
    await page.locator(".wf-scroll").evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await page.getByTestId("span-row").last().waitFor();
    assert((await page.getByTestId("span-row").count()) < 200, "waterfall is virtualized");
    await shot(page, "flow-1000-spans");
    assert(ms < env.perfBudgetMs, `flow rendered in ${ms} ms, budget ${env.perfBudgetMs} ms`);
  } finally {
    await api.del(`/api/queues/${queue}`).catch(() => {});
  }
});

test("a queue with 10,000 messages stays usable", async ({ page, env }) => {
  const api = new Api(env.url, env.tokens.admin);
  const queue = `e2e-10k-${stamp()}`;
  await api.put(`/api/queues/${queue}`, { durable: false });
  try {
    let batch = 500;
    for (let sent = 0; sent < 10_000;) {
      const n = Math.min(batch, 10_000 - sent);
      const messages = Array.from({ length: n }, (_, i) => ({ payload: { n: sent + i, note: "x".repeat(40) }, source: "e2e" }));
      try {
        await api.post(`/api/queues/${queue}/batch`, { messages });
        sent += n;
      } catch (e) {
        if (batch > 50 && /413|batch_too_large/.test(String(e))) batch = Math.floor(batch / 2);
        else throw e;
      }
    }
    // The server may cap the peek; expect what it answers to the same request.
    const peekable = (await api.get(`/api/queues/${queue}/messages?limit=10000`)).messages.length;
    await openAs(page, env, env.tokens.viewer, `#/queues/${queue}`);
    await page.getByTestId("message-row").first().waitFor();
    const started = Date.now();
    await page.getByLabel("how many messages to peek").selectOption("10000");
    await page.getByTestId("peek-count").filter({ hasText: `${peekable.toLocaleString("en-US")} message` }).waitFor({ timeout: 20_000 });
    await page.getByTestId("message-row").first().waitFor();
    perf.queue_10k_peek_render_ms = Date.now() - started;
    const shown = await page.getByTestId("peek-count").textContent();
    console.log(`      10,000-message queue: peek of ${shown} rendered in ${perf.queue_10k_peek_render_ms} ms, ${await page.getByTestId("message-row").count()} rows in the DOM`);
    await page.getByTestId("message-list").evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await page.getByTestId("message-row").last().click();
    await page.getByTestId("message-payload").waitFor();
    assert((await page.getByTestId("message-row").count()) < 200, "message list is virtualized");
    assert((await page.getByTestId("queue-page").textContent()).includes("10,000"), "stats show 10,000 ready");
  } finally {
    await api.del(`/api/queues/${queue}`).catch(() => {});
  }
});

export function writePerf(env) {
  const out = { ...perf, budget_ms: env.perfBudgetMs, server: env.url, at: new Date().toISOString() };
  writeFileSync(path.join(E2E_DIR, "perf.json"), JSON.stringify(out, null, 2) + "\n");
  console.log(`perf: ${JSON.stringify(out)}`);
}
