/**
 * Fossil deltas across nodes (redis-server + the Upstash bridge + two server processes): updates
 * published on either node reach SSE viewers on both as deltas against the message each viewer
 * received before, whichever node numbered it, and every payload is rebuilt exactly.
 */
import assert from "node:assert/strict";
import { statusUpdates } from "../../bench/lib/status_workload.ts";
import { waitForCluster } from "../support/cluster.ts";
import { countOf, decodeSse, publishAll } from "../support/deltas.ts";
import { startBridge, startRedis } from "../support/redis.ts";
import { startServer } from "../support/server.ts";
import { openSse, type SseStream } from "../support/sse.ts";
import { waitFor } from "../support/wait.ts";

Deno.test("cluster: deltas of updates published on both nodes rebuild every payload on both", async () => {
  await using redis = await startRedis();
  await using bridge = await startBridge({ redisUrl: redis.url, token: "delta-token" });
  const env = (id: string) => ({
    UPSTASH_REDIS_REST_URL: bridge.url,
    UPSTASH_REDIS_REST_TOKEN: "delta-token",
    NODE_ID: id,
  });
  const nodes = await Promise.all([startServer(env("d1")), startServer(env("d2"))]);
  const topic = "status:delta-cluster";
  const updates = statusUpdates(20);
  const streams: SseStream[] = [];
  try {
    await waitForCluster(nodes);
    for (const node of nodes) {
      const stream = await openSse(`${node.url}/events?topic=${topic}&delta=fossil`);
      await stream.next((e) => e.event === "joined");
      streams.push(stream);
    }
    const statuses = (n: number) => () =>
      streams.every((s) => s.events.filter((e) => e.event === "status").length === n);
    for (const [i, update] of updates.entries()) {
      // Alternating nodes: the messages come from two streams, one numbered on each node.
      await publishAll(nodes[i % 2].url, topic, [update]);
      // Each one everywhere before the next, so both nodes deliver them in the same order.
      await waitFor(statuses(i + 1), `update ${i + 1} on both nodes`, 10_000);
    }
    for (const [n, stream] of streams.entries()) {
      const decoded = decodeSse(stream, topic);
      assert.deepEqual(decoded.texts, updates.map((u) => JSON.stringify(u)), `node ${n + 1}`);
      assert.equal(decoded.kinds[0], "full");
      assert.equal(countOf(decoded, "delta"), 19, `node ${n + 1}: deltas`);
    }
  } finally {
    for (const stream of streams) await stream.close();
    await Promise.all(nodes.map((n) => n.stop()));
  }
});
