/**
 * Two node Durable Objects of one Worker acting as one node through the Redis broker: workerd
 * (`deno task dev:worker`) with `UPSTASH_REDIS_REST_URL`/`_TOKEN` pointing at the Upstash
 * bridge in front of a real `redis-server`. Clients pin a node with the `node` param: presence
 * both ways, a broadcast posted to one node reaching WebSocket and SSE clients of both, the
 * last status for a late joiner of the other node, and `SWITCHBOARD_NODES` spreading clients.
 */
import assert from "node:assert/strict";
import { connectSocket, disconnect, join, withPresence } from "../support/phoenix.ts";
import { startBridge, startRedis } from "../support/redis.ts";
import { openSse } from "../support/sse.ts";
import { waitFor } from "../support/wait.ts";
import { startWorker } from "../support/worker.ts";

async function post(url: string, node: string, body: unknown): Promise<void> {
  const res = await fetch(`${url}/api/broadcast?node=${node}`, {
    method: "POST",
    body: JSON.stringify(body),
  });
  await res.body?.cancel();
  assert.equal(res.status, 202);
}

async function health(url: string, node: string) {
  const res = await fetch(`${url}/healthz?node=${node}`);
  return await res.json() as {
    node: string;
    broker: { kind: string; connected: boolean; nodes: number };
  };
}

Deno.test("two node objects through Redis (workerd)", async (t) => {
  await using redis = await startRedis();
  await using bridge = await startBridge({ redisUrl: redis.url, token: "edge-cluster-token" });
  const worker = await startWorker({
    UPSTASH_REDIS_REST_URL: bridge.url,
    UPSTASH_REDIS_REST_TOKEN: "edge-cluster-token",
    SWITCHBOARD_NODES: "2",
  });
  try {
    await t.step("node-1 and node-2 are two nodes of one cluster", async () => {
      // Waking both objects; each announces itself through Redis.
      const [a, b] = [await health(worker.url, "node-1"), await health(worker.url, "node-2")];
      assert.equal(a.node, "node-1");
      assert.equal(b.node, "node-2");
      assert.equal(a.broker.kind, "redis");
      await waitFor(
        async () => (await health(worker.url, "node-1")).broker.nodes === 2,
        "node-1 sees two nodes",
        15_000,
      );
    });

    await t.step("presence both ways; a broadcast on node-1 reaches both nodes", async () => {
      const ann = await connectSocket(worker.socketUrl, { user_id: "ann", node: "node-1" });
      const bob = await connectSocket(worker.socketUrl, { user_id: "bob", node: "node-2" });
      const annChannel = ann.channel("record:cluster-edge", { name: "Ann" });
      const bobChannel = bob.channel("record:cluster-edge", { name: "Bob" });
      const annView = withPresence(annChannel);
      const bobView = withPresence(bobChannel);
      const annGot: unknown[] = [];
      const bobGot: unknown[] = [];
      annChannel.on("patch", (p: unknown) => annGot.push(p));
      bobChannel.on("patch", (p: unknown) => bobGot.push(p));
      await join(annChannel);
      await join(bobChannel);
      await waitFor(
        () => annView.keys().join() === "ann×1,bob×1" && bobView.keys().join() === "ann×1,bob×1",
        "each node's user in both presence lists",
        10_000,
      );
      const sse = await openSse(
        `${worker.url}/events?topic=record:cluster-edge&node=node-2&user_id=cora`,
      );
      await sse.next((e) => e.event === "joined");
      for (const n of [1, 2, 3]) {
        await post(worker.url, "node-1", {
          topic: "record:cluster-edge",
          event: "patch",
          payload: { n },
        });
      }
      await waitFor(
        () => annGot.length === 3 && bobGot.length === 3,
        "the broadcasts on both nodes' sockets",
        10_000,
      );
      assert.deepEqual(bobGot, [{ n: 1 }, { n: 2 }, { n: 3 }], "once each, in order, on node-2");
      const overSse = [];
      for (let i = 0; i < 3; i++) overSse.push(await sse.next((e) => e.event === "patch"));
      assert.deepEqual(overSse.map((e) => e.json?.payload), [{ n: 1 }, { n: 2 }, { n: 3 }]);
      const list = await (await fetch(`${worker.url}/api/presence/record:cluster-edge?node=node-1`))
        .json();
      assert.deepEqual(
        Object.keys(list.presences).sort(),
        ["ann", "bob", "cora"],
        "an SSE viewer on node-2 counts too",
      );
      await disconnect(bob);
      await waitFor(
        () => annView.keys().join() === "ann×1,cora×1",
        "Bob's leave reaches node-1",
        10_000,
      );
      await sse.close();
      await disconnect(ann);
    });

    await t.step("a status posted on node-1 greets a late joiner on node-2", async () => {
      await post(worker.url, "node-1", {
        topic: "status:cluster-edge",
        event: "status",
        payload: { state: "maintenance" },
      });
      await waitFor(
        async () => {
          const socket = await connectSocket(worker.socketUrl, { node: "node-2" });
          try {
            const reply = await join(socket.channel("status:cluster-edge"));
            return JSON.stringify(reply.status) === JSON.stringify({ state: "maintenance" });
          } finally {
            await disconnect(socket);
          }
        },
        "the last status through Redis",
        10_000,
      );
    });

    await t.step("SWITCHBOARD_NODES=2 spreads SSE viewers by topic over both nodes", async () => {
      const nodes = new Set<string>();
      const streams = [];
      for (let i = 0; i < 12 && nodes.size < 2; i++) {
        const stream = await openSse(`${worker.url}/events?topic=status:spread-${i}`);
        await stream.next((e) => e.event === "joined");
        streams.push(stream);
        const metrics = await Promise.all(["node-1", "node-2"].map(async (node) => {
          const text = await (await fetch(`${worker.url}/metrics?node=${node}`)).text();
          return Number(text.match(/switchboard_connections\{transport="sse"\} (\d+)/)?.[1] ?? 0);
        }));
        metrics.forEach((n, k) => n > 0 && nodes.add(`node-${k + 1}`));
      }
      assert.deepEqual([...nodes].sort(), ["node-1", "node-2"]);
      await Promise.all(streams.map((s) => s.close()));
    });
  } finally {
    await worker.stop();
  }
});
