/**
 * Nothing lost across nodes, driven the way the failures were found: two nodes, the bridge and
 * a real `redis-server` started here. Bursts larger than the subscription reader's 1 MB line
 * limit, a message too large for the bus, Redis and the bridge killed and restarted under live
 * traffic with a WebSocket and an SSE client on the other node (every message or a reset, never
 * a silent gap), a resume after Redis restarted empty, the cost of resumes and polls in Redis'
 * own counters, the idle command rate, and the lifetime of every key.
 */
import assert from "node:assert/strict";
import type { Channel } from "phoenix";
import { connectSocket, disconnect, join, push, type Socket } from "../support/phoenix.ts";
import {
  type BridgeProcess,
  redisKeyLifetimes,
  redisStats,
  startBridge,
  startRedis,
} from "../support/redis.ts";
import { type ServerProcess, startServer } from "../support/server.ts";
import { openSse } from "../support/sse.ts";
import { delay, waitFor } from "../support/wait.ts";
import { idleCommandsPerDay, REDIS_BROKER_DEFAULTS } from "../../lib/cluster/redis/broker.ts";

const TOKEN = "faults-token";
/** The nodes' heartbeat in these tests (production: 10 s); the schedule is checked below. */
const HEARTBEAT_MS = 1000;

async function post(url: string, body: unknown): Promise<Response> {
  const res = await fetch(`${url}/api/broadcast`, { method: "POST", body: JSON.stringify(body) });
  await res.body?.cancel();
  return res;
}

/** The `n`s a client saw, with `"reset"` where it was reset. */
type Seen = (number | "reset")[];

/** Everything wrong with what a client saw: a number skipped or repeated with no reset before. */
function silentGaps(seen: Seen): string[] {
  const problems: string[] = [];
  let expected = 1;
  let resetSince = false;
  for (const x of seen) {
    if (x === "reset") {
      resetSince = true;
      continue;
    }
    if (x !== expected && !resetSince) problems.push(`got ${x} where ${expected} was due`);
    expected = x + 1;
    resetSince = false;
  }
  return problems;
}

/** A WebSocket client (official Phoenix client) and an SSE client on one topic of one node. */
async function watchers(node: ServerProcess, topic: string) {
  const socket = await connectSocket(node.socketUrl);
  const channel = socket.channel(topic);
  const overWs: Seen = [];
  channel.on("status", (p: { n: number }) => overWs.push(p.n));
  channel.on("reset", () => overWs.push("reset"));
  await join(channel);
  const sse = await openSse(`${node.url}/events?topic=${encodeURIComponent(topic)}`);
  await sse.next((e) => e.event === "joined");
  const overSse = (): Seen =>
    sse.events.flatMap((e): Seen =>
      e.event === "status" ? [e.json!.payload.n as number] : e.event === "reset" ? ["reset"] : []
    );
  return {
    overWs,
    overSse,
    /** True once both saw `n` (directly, or a reset whose state is at least `n`). */
    reached: (n: number) => [overWs, overSse()].every((s) => s.includes(n)),
    async close() {
      await sse.close();
      await disconnect(socket);
    },
  };
}

/** Publishes `status` n = 1…count on `node`, one request at a time, `gapMs` apart. */
function publishSeries(node: ServerProcess, topic: string, count: number, gapMs: number) {
  let published = 0;
  const done = (async () => {
    while (published < count) {
      const res = await post(node.url, { topic, event: "status", payload: { n: published + 1 } });
      assert.equal(res.status, 202);
      published++;
      await delay(gapMs);
    }
  })();
  return { done, published: () => published };
}

Deno.test("cluster faults: bursts, outages, resume cost, idle cost, key lifetimes", async (t) => {
  const redis = await startRedis();
  let bridge: BridgeProcess = await startBridge({ redisUrl: redis.url, token: TOKEN });
  const bridgePort = bridge.port;
  const env = (id: string) => ({
    UPSTASH_REDIS_REST_URL: bridge.url,
    UPSTASH_REDIS_REST_TOKEN: TOKEN,
    NODE_ID: id,
    REDIS_HEARTBEAT_MS: String(HEARTBEAT_MS),
    // The test's readers take 20 MB bursts: not slow consumers.
    MAX_OUTBOUND_BYTES: String(64 << 20),
  });
  const [a, b] = await Promise.all([startServer(env("a")), startServer(env("b"))]);
  const extra: ServerProcess[] = [];
  const health = async (node: ServerProcess) =>
    (await (await fetch(`${node.url}/healthz`)).json()).broker;
  try {
    await waitFor(async () => (await health(a)).nodes === 2, "the nodes see each other", 15_000);

    await t.step("20 WebSocket clients each pushing 60 KB patches in one tick", async () => {
      // One record each (no fan-out on node A to wait for), one watcher of all on node B.
      const watcher = await connectSocket(b.socketUrl, { user_id: "watcher" });
      const patches: number[] = [];
      for (let i = 0; i < 20; i++) {
        const watching = watcher.channel(`record:burst-${i}`, { name: "W" });
        watching.on("patch", (p: { k: number }) => patches.push(p.k));
        await join(watching);
      }
      const sockets: Socket[] = [];
      const channels: Channel[] = [];
      for (let i = 0; i < 20; i++) {
        const socket = await connectSocket(a.socketUrl, { user_id: `u${i}` });
        const channel = socket.channel(`record:burst-${i}`, { name: `U${i}` });
        await join(channel);
        sockets.push(socket);
        channels.push(channel);
      }
      const blob = "x".repeat(60_000);
      // Three patches each, all pushed before any reply: 3.6 MB reach node A in one burst.
      const replies = channels.flatMap((channel, i) =>
        [0, 1, 2].map((j) => push(channel, "patch", { k: i * 3 + j, blob }))
      );
      for (const reply of await Promise.all(replies)) assert.equal(reply.status, "ok");
      await waitFor(() => patches.length >= 60, "60 patches on node B", 15_000);
      assert.deepEqual(patches.slice().sort((x, y) => x - y), [...Array(60).keys()]);
      await Promise.all(sockets.map(disconnect));
      await disconnect(watcher);
    });

    await t.step("API batches of 40 × 20 KB: every broadcast reaches the other node", async () => {
      const w = await watchers(b, "status:batch");
      const blob = "y".repeat(20_000);
      const posts = [];
      for (let batch = 0; batch < 25; batch++) {
        const messages = Array.from({ length: 40 }, (_, k) => ({
          topic: "status:batch",
          event: "status",
          payload: { n: batch * 40 + k + 1, blob },
        }));
        posts.push(post(a.url, messages));
      }
      for (const res of await Promise.all(posts)) assert.equal(res.status, 202);
      await waitFor(() => w.overWs.length >= 1000, "1,000 broadcasts over WebSocket", 20_000);
      await waitFor(() => w.overSse().length >= 1000, "1,000 broadcasts over SSE", 20_000);
      // Batches may interleave between requests, never within one.
      assert.deepEqual(
        w.overWs.slice().sort((x, y) => +x - +y),
        [...Array(1000).keys()].map((n) => n + 1),
      );
      assert.ok(!w.overWs.includes("reset"));
      await w.close();
    });

    await t.step("one message too large for the bus is refused where it enters", async () => {
      const w = await watchers(b, "status:big");
      const huge = { topic: "status:big", event: "status", payload: { blob: "z".repeat(600_000) } };
      const res = await fetch(`${a.url}/api/broadcast`, {
        method: "POST",
        body: JSON.stringify([{ topic: "status:big", event: "status", payload: { n: 1 } }, huge]),
      });
      assert.equal(res.status, 413);
      assert.match((await res.json()).error, /^\[1\]: message too large for the cluster bus/);
      // All or nothing, and the bus carries on for everything else.
      assert.equal((await post(a.url, { ...huge, payload: { n: 1 } })).status, 202);
      await waitFor(() => w.reached(1), "the next message on node B");
      assert.deepEqual(w.overWs, [1]);
      await w.close();
    });

    await t.step("Redis killed for 5 s and restarted empty under live traffic", async () => {
      const w = await watchers(b, "status:outage");
      const series = publishSeries(a, "status:outage", 120, 40);
      await waitFor(() => series.published() >= 20, "publishing under way");
      await redis.kill();
      await delay(5_000);
      await redis.restart();
      await series.done;
      await waitFor(() => w.reached(120), "node B's clients at 120", 30_000);
      assert.deepEqual(silentGaps(w.overWs), [], `WebSocket saw ${w.overWs.join()}`);
      assert.deepEqual(silentGaps(w.overSse()), [], `SSE saw ${w.overSse().join()}`);
      // The publishing node still had them: node B caught up, in order, with no reset.
      assert.deepEqual(w.overWs, [...Array(120).keys()].map((n) => n + 1));
      assert.deepEqual(w.overSse(), [...Array(120).keys()].map((n) => n + 1));
      await w.close();
    });

    await t.step("the bridge killed and restarted under live traffic", async () => {
      await waitFor(async () => (await health(b)).connected, "node B connected again", 15_000);
      const w = await watchers(b, "status:bridge");
      const series = publishSeries(a, "status:bridge", 100, 40);
      await waitFor(() => series.published() >= 20, "publishing under way");
      await bridge.kill();
      await delay(3_000);
      bridge = await startBridge({ redisUrl: redis.url, token: TOKEN, port: bridgePort });
      await series.done;
      await waitFor(() => w.reached(100), "node B's clients at 100", 30_000);
      assert.deepEqual(silentGaps(w.overWs), [], `WebSocket saw ${w.overWs.join()}`);
      assert.deepEqual(silentGaps(w.overSse()), [], `SSE saw ${w.overSse().join()}`);
      assert.deepEqual(w.overWs, [...Array(100).keys()].map((n) => n + 1));
      await w.close();
    });

    await t.step(
      "after Redis restarted empty, a resume on node B still gets what it missed",
      async () => {
        await waitFor(async () => (await health(b)).connected, "node B connected again", 15_000);
        await waitFor(async () => (await health(a)).connected, "node A connected again", 15_000);
        const topic = "status:empty";
        const first = await openSse(`${b.url}/events?topic=${topic}`);
        await first.next((e) => e.event === "joined");
        assert.equal(
          (await post(a.url, { topic, event: "status", payload: { n: 1 } })).status,
          202,
        );
        const seen = await first.next((e) => e.event === "status");
        await first.close();
        for (let n = 2; n <= 5; n++) {
          assert.equal((await post(a.url, { topic, event: "status", payload: { n } })).status, 202);
        }
        // Node B has them in memory once it has seen the last one (a live client proves it).
        const probe = await watchers(b, "status:probe");
        await post(a.url, { topic: "status:probe", event: "status", payload: { n: 1 } });
        await waitFor(() => probe.reached(1), "node B is receiving");
        await probe.close();
        await redis.kill();
        await redis.restart();
        const again = await openSse(`${b.url}/events?topic=${topic}`, {
          "last-event-id": seen.lastEventId,
        });
        await waitFor(
          () => again.events.filter((e) => e.event === "status").length >= 4,
          "the 4 missed messages",
          10_000,
        );
        await delay(200);
        const got = again.events.flatMap((e) =>
          e.event === "status" ? [e.json!.payload.n] : e.event === "reset" ? ["reset"] : []
        );
        assert.deepEqual(got, [2, 3, 4, 5]);
        await again.close();
      },
    );

    await t.step(
      "a resume costs what it missed; polls of a silent topic cost nothing",
      async () => {
        await waitFor(async () => (await health(a)).connected, "node A connected again", 15_000);
        const topic = "status:cost";
        const blob = "c".repeat(20_000);
        for (let batch = 0; batch < 8; batch++) {
          const messages = Array.from({ length: 40 }, (_, k) => ({
            topic,
            event: "status",
            payload: { n: batch * 40 + k + 1, blob },
          }));
          assert.equal((await post(a.url, messages)).status, 202);
        }
        const snapshot = await (await fetch(`${a.url}/api/topics/${topic}`)).json();
        assert.equal(snapshot.payload.n, 320);
        assert.equal(
          (await post(a.url, { topic, event: "status", payload: { n: 321, blob } })).status,
          202,
        );
        await delay(300);
        // A node started now holds none of it: its resumes read Redis.
        const c = await startServer(env("c"));
        extra.push(c);
        const resume = async () => {
          const sse = await openSse(
            `${c.url}/events?topic=${topic}&cursor=${encodeURIComponent(snapshot.cursor)}`,
          );
          const event = await sse.next((e) => e.event === "status" || e.event === "reset");
          await sse.close();
          return event;
        };
        const before = await redisStats(redis.url);
        const event = await resume();
        assert.equal(event.json!.payload.n, 321);
        const afterOne = await redisStats(redis.url);
        for (let i = 0; i < 20; i++) assert.equal((await resume()).json!.payload.n, 321);
        const afterTwenty = await redisStats(redis.url);
        const one = afterOne.netOutputBytes - before.netOutputBytes;
        if (Deno.env.get("SHOW_OUTPUT")) {
          const delta = Object.entries(afterOne.calls).map((
            [k, v],
          ) => [k, v - (before.calls[k] ?? 0)]);
          console.log(JSON.stringify(delta.filter(([, v]) => v)));
        }
        const twenty = afterTwenty.netOutputBytes - afterOne.netOutputBytes;
        console.log(
          `resume missing 1 of 321 × 20 KB: ${one} B of Redis output; 20 more: ${twenty} B`,
        );
        // The whole stream is 6.4 MB: a resume reads the one entry it missed (and the heads).
        assert.ok(one < 200_000, `one resume cost ${one} bytes of Redis output`);
        assert.ok(twenty < 20 * 100_000, `20 resumes cost ${twenty} bytes of Redis output`);
        assert.equal(afterTwenty.calls.xrange ?? 0, before.calls.xrange ?? 0, "no full XRANGE");

        const polls = async (n: number) => {
          for (let i = 0; i < n; i += 20) {
            await Promise.all(Array.from({ length: 20 }, async () => {
              const res = await fetch(`${b.url}/api/topics/status:never-published`);
              assert.equal(res.status, 200);
              await res.body?.cancel();
            }));
          }
        };
        await waitFor(async () => (await health(b)).connected, "node B connected", 15_000);
        const beforePolls = await redisStats(redis.url);
        await polls(2_000);
        const afterPolls = await redisStats(redis.url);
        const gets = (afterPolls.calls.get ?? 0) - (beforePolls.calls.get ?? 0);
        console.log(`2,000 polls of a never-published topic: ${gets} GET`);
        assert.ok(gets <= 1, `${gets} GETs for 2,000 polls`);
        await c.stop();
      },
    );

    await t.step("commands per broadcast, and an idle node's commands", async () => {
      await delay(1_500);
      const before = await redisStats(redis.url);
      const started = Date.now();
      for (let n = 1; n <= 50; n++) {
        assert.equal(
          (await post(a.url, { topic: `status:per-${n % 5}`, event: "status", payload: { n } }))
            .status,
          202,
        );
        await delay(20);
      }
      await delay(300);
      const after = await redisStats(redis.url);
      const seconds = (Date.now() - started) / 1000;
      // Node B's heartbeats in that time are not the broadcasts' cost.
      const perBroadcast =
        (after.totalCalls - before.totalCalls - seconds / (HEARTBEAT_MS / 1000)) /
        50;
      console.log(`Redis commands per broadcast (one per request): ${perBroadcast.toFixed(2)}`);
      assert.ok(perBroadcast <= 5, `${perBroadcast} commands per broadcast`);

      await delay(1_500);
      const idleBefore = await redisStats(redis.url);
      const windowMs = 5_000;
      await delay(windowMs);
      const idleAfter = await redisStats(redis.url);
      const idle = idleAfter.totalCalls - idleBefore.totalCalls;
      // Per node: one PUBLISH per heartbeat, a directory refresh (4) every third.
      const beats = windowMs / HEARTBEAT_MS;
      const refreshes = Math.ceil(beats / 3) + 1;
      console.log(
        `2 idle nodes, ${windowMs} ms at a ${HEARTBEAT_MS} ms heartbeat: ${idle} commands`,
      );
      assert.ok(idle >= 2 * (beats - 2), `${idle} commands: the heartbeats did not run`);
      assert.ok(
        idle <= 2 * (beats + 1 + 4 * refreshes),
        `${idle} commands in ${windowMs} ms of idling`,
      );
      // The production schedule: about one command every few seconds, a death seen within 30 s.
      const perDay = idleCommandsPerDay();
      console.log(`an idle node by the default schedule: ${perDay} commands per day`);
      assert.equal(idleCommandsPerDay({ pingMs: HEARTBEAT_MS }), perDay * 10, "the same schedule");
      assert.ok(perDay <= 86_400 / 3, `${perDay} commands per idle node per day`);
      assert.ok(REDIS_BROKER_DEFAULTS.nodeTtlMs + 1_000 <= 30_000);
    });

    await t.step("every key has a lifetime", async () => {
      const lifetimes = await redisKeyLifetimes(redis.url, "switchboard:");
      assert.ok(lifetimes.size > 0);
      const kinds = new Set([...lifetimes.keys()].map((k) => k.split(":")[1]));
      for (const kind of ["nodes", "last", "history", "heads"]) assert.ok(kinds.has(kind), kind);
      const forever = [...lifetimes].filter(([, ms]) => ms < 0).map(([key]) => key);
      assert.deepEqual(forever, [], "keys without a lifetime");
      const last = lifetimes.get("switchboard:last:status:per-1")!;
      assert.ok(last > REDIS_BROKER_DEFAULTS.lastTtlMs - 60_000, `last: lives ${last} ms`);
    });
  } finally {
    if (Deno.env.get("SHOW_OUTPUT")) console.log(a.output(), b.output());
    await Promise.all([a, b, ...extra].map((node) => node.stop().catch(() => {})));
    await bridge.stop();
    await redis.stop();
  }
});
