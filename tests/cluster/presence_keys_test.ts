/**
 * Presence keys named like `Object.prototype` members across nodes: a `constructor` or
 * `__proto__` user tracked on one node is listed by the other (the presence API and the record
 * page answer 200, not 500) and leaves there too. Real `redis-server`, the bridge, two nodes.
 */
import assert from "node:assert/strict";
import { isReply, openRaw, type RawSocket } from "../support/raw_ws.ts";
import { startBridge, startRedis } from "../support/redis.ts";
import { startServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

async function presences(url: string): Promise<{ status: number; keys: string[] }> {
  const res = await fetch(`${url}/api/presence/record:proto-cluster`);
  if (res.status !== 200) {
    await res.body?.cancel();
    return { status: res.status, keys: [] };
  }
  const body = await res.json();
  return { status: 200, keys: Object.keys(body.presences).sort() };
}

Deno.test("prototype-named presence keys replicate, list and leave on every node", async () => {
  const redis = await startRedis();
  const bridge = await startBridge({ redisUrl: redis.url, token: "proto-token" });
  const env = (id: string) => ({
    UPSTASH_REDIS_REST_URL: bridge.url,
    UPSTASH_REDIS_REST_TOKEN: "proto-token",
    NODE_ID: id,
  });
  const [n1, n2] = await Promise.all([startServer(env("p1")), startServer(env("p2"))]);
  const keys = ["__proto__", "constructor", "hasOwnProperty", "toString"];
  const sockets: RawSocket[] = [];
  try {
    for (const key of keys) {
      const raw = await openRaw(
        `${n1.socketUrl}/websocket?vsn=2.0.0&user_id=${encodeURIComponent(key)}`,
      );
      raw.push("1", "1", "record:proto-cluster", "phx_join", {});
      await raw.next(isReply("1"));
      sockets.push(raw);
    }
    await waitFor(
      async () => (await presences(n2.url)).keys.join() === keys.join(),
      "the other node lists every key",
      10_000,
    );
    const page = await fetch(`${n2.url}/records/proto-cluster`);
    assert.equal(page.status, 200);
    await page.body?.cancel();
    // A viewer on the other node gets the state with every key.
    const viewer = await openRaw(`${n2.socketUrl}/websocket?vsn=2.0.0&user_id=viewer`);
    viewer.push("1", "1", "record:proto-cluster", "phx_join", {});
    const state = await viewer.next((f) => f.event === "presence_state");
    for (const key of keys) assert.ok(Object.hasOwn(state.payload as object, key), key);
    for (const raw of sockets.splice(0)) await raw.close();
    await waitFor(
      async () => (await presences(n2.url)).keys.join() === "viewer",
      "every key left the other node too",
      10_000,
    );
    await viewer.close();
  } finally {
    for (const raw of sockets) await raw.close();
    await Promise.all([n1.stop(), n2.stop()]);
    await bridge.stop();
    await redis.stop();
  }
});
