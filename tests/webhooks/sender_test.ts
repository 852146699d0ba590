/**
 * The webhook sender against a real receiver that fails (answers 500, or never answers): the
 * queue stays bounded (the oldest events are dropped and counted), every try is counted, a
 * batch that failed every try is counted as failed, and closing never hangs.
 */
import assert from "node:assert/strict";
import { Metrics } from "../../lib/metrics.ts";
import { WebhookSender } from "../../lib/webhooks/sender.ts";
import { waitFor } from "../support/wait.ts";
import { startReceiver } from "../support/webhooks.ts";

const SECRET = "sender-test-secret-16";
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

Deno.test("a receiver answering 500 every time: bounded queue, counted failures", async () => {
  await using receiver = startReceiver(SECRET);
  receiver.failNext(1_000);
  const metrics = new Metrics();
  const sender = new WebhookSender({
    url: receiver.url,
    secret: SECRET,
    metrics,
    log: quiet,
    retryMs: [20, 20],
    batchMs: 10,
    maxQueue: 5,
  });
  for (let i = 0; i < 20; i++) sender.enqueue({ name: "channel_occupied", topic: `status:${i}` });
  assert.equal(sender.queued, 5, "never more than maxQueue waiting");
  assert.equal(metrics.value("switchboard_webhook_events_total", { outcome: "dropped" }), 15);
  await waitFor(
    () => metrics.value("switchboard_webhook_events_total", { outcome: "failed" }) === 5,
    "the batch given up after 3 tries",
  );
  assert.equal(metrics.value("switchboard_webhook_requests_total", { result: "error" }), 3);
  assert.equal(receiver.requests.length, 3);
  assert.ok(receiver.requests.every((r) => r.verified));
  // The kept events are the newest, in order.
  const sent = JSON.parse(receiver.requests[0].body).events.map((e: { topic: string }) => e.topic);
  assert.deepEqual(sent, ["status:15", "status:16", "status:17", "status:18", "status:19"]);
  await sender.close();
});

Deno.test("a receiver that never answers: each try times out; close does not hang", async () => {
  const hung: (() => void)[] = [];
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    () => new Promise<Response>((resolve) => hung.push(() => resolve(new Response(null)))),
  );
  const metrics = new Metrics();
  const sender = new WebhookSender({
    url: `http://127.0.0.1:${server.addr.port}/`,
    secret: SECRET,
    metrics,
    log: quiet,
    retryMs: [10_000],
    timeoutMs: 100,
    batchMs: 10,
  });
  try {
    sender.enqueue({ name: "channel_vacated", topic: "status:hung" });
    await waitFor(
      () => metrics.value("switchboard_webhook_requests_total", { result: "error" }) === 1,
      "the first try timed out",
    );
    // Closing during the 10 s retry wait: one more try within the deadline, then counted.
    await sender.close(300);
    assert.equal(metrics.value("switchboard_webhook_events_total", { outcome: "failed" }), 1);
  } finally {
    for (const release of hung) release();
    await server.shutdown();
  }
});
