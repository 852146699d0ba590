/**
 * Several server processes joined through the Redis broker: the real `redis-server`, the
 * Upstash bridge in front of it, and three nodes. Cross-node broadcasts over every transport,
 * presence both ways, broadcast-from, shared last status, a node killed with SIGKILL, and
 * Redis killed and restarted while clients stay connected.
 */
import assert from "node:assert/strict";
import type { Channel } from "phoenix";
import { connectSocket, disconnect, join, push, withPresence } from "../support/phoenix.ts";
import { waitForCluster } from "../support/cluster.ts";
import { startBridge, startRedis } from "../support/redis.ts";
import { type ServerProcess, startServer } from "../support/server.ts";
import { openSse } from "../support/sse.ts";
import { delay, waitFor } from "../support/wait.ts";

async function post(url: string, body: unknown): Promise<void> {
  const res = await fetch(`${url}/api/broadcast`, { method: "POST", body: JSON.stringify(body) });
  await res.body?.cancel();
  assert.equal(res.status, 202);
}

async function health(node: ServerProcess) {
  const res = await fetch(`${node.url}/healthz`);
  return (await res.json()).broker as { kind: string; connected: boolean; nodes: number };
}

Deno.test("cluster through Redis", async (t) => {
  const redis = await startRedis();
  const bridge = await startBridge({ redisUrl: redis.url, token: "cluster-token" });
  const env = (id: string) => ({
    UPSTASH_REDIS_REST_URL: bridge.url,
    UPSTASH_REDIS_REST_TOKEN: "cluster-token",
    NODE_ID: id,
    // A dead node is noticed after 2.5 heartbeats (production: 10 s, 25 s).
    REDIS_HEARTBEAT_MS: "2000",
  });
  const nodes = await Promise.all(["n1", "n2", "n3"].map((id) => startServer(env(id))));
  const [n1, n2, n3] = nodes;
  const extra: ServerProcess[] = [];
  try {
    // n1 counting three nodes does not mean n2 and n3 are subscribed to the bus yet.
    await waitForCluster(nodes);

    await t.step(
      "API post on n3 reaches WebSocket on n1 and SSE on n2, once and in order",
      async () => {
        const socket = await connectSocket(n1.socketUrl);
        const channel = socket.channel("status:cross");
        const overWs: unknown[] = [];
        channel.on("status", (p: { n: number }) => overWs.push(p.n));
        await join(channel);
        const sse = await openSse(`${n2.url}/events?topic=status:cross`);
        await sse.next((e) => e.event === "joined");
        for (let n = 1; n <= 10; n++) {
          await post(n3.url, { topic: "status:cross", event: "status", payload: { n } });
        }
        await post(
          n3.url,
          [11, 12, 13].map((n) => ({ topic: "status:cross", event: "status", payload: { n } })),
        );
        const expected = Array.from({ length: 13 }, (_, i) => i + 1);
        await waitFor(() => overWs.length >= 13, "13 messages over WebSocket on n1");
        const overSse = [];
        for (let i = 0; i < 13; i++) {
          overSse.push((await sse.next((e) => e.event === "status")).json!.payload.n);
        }
        await delay(300);
        assert.deepEqual(overWs, expected, "no duplicates, publish order");
        assert.deepEqual(overSse, expected);
        assert.equal(sse.events.filter((e) => e.event === "status").length, 13);
        await sse.close();
        await disconnect(socket);
      },
    );

    await t.step("an SSE reader resumes on another node with exactly what it missed", async () => {
      const sse = await openSse(`${n1.url}/events?topic=status:move&topic=status:move2`);
      await post(n3.url, { topic: "status:move", event: "status", payload: { n: 1 } });
      await sse.next((e) => e.event === "status");
      const lastId = sse.events.at(-1)!.lastEventId;
      await sse.close();
      // Published from two nodes while the reader is away: two origin streams in the cursor.
      await post(n3.url, { topic: "status:move", event: "status", payload: { n: 2 } });
      await post(n2.url, { topic: "status:move", event: "status", payload: { n: 3 } });
      await post(n1.url, { topic: "status:move2", event: "status", payload: { n: 4 } });
      await delay(300);
      const again = await openSse(`${n2.url}/events?topic=status:move&topic=status:move2`, {
        "last-event-id": lastId,
      });
      await waitFor(
        () => again.events.filter((e) => e.event === "status").length === 3,
        "3 missed",
      );
      await delay(300);
      const got = again.events.filter((e) => e.event === "status").map((e) => e.json!.payload.n);
      assert.deepEqual(got.slice().sort(), [2, 3, 4]);
      assert.equal(again.events.filter((e) => e.event === "reset").length, 0);
      await again.close();
    });

    await t.step("readers of a killed node resume on another node without gaps", async () => {
      const doomed = await startServer(env("doomed"));
      extra.push(doomed);
      const readers = await Promise.all(
        [1, 2, 3].map(() => openSse(`${doomed.url}/events?topic=status:failover`)),
      );
      await Promise.all(readers.map((r) => r.next((e) => e.event === "joined")));
      let published = 0;
      const publisher = (async () => {
        while (published < 60) {
          await post(n1.url, {
            topic: "status:failover",
            event: "status",
            payload: { n: ++published },
          });
          await delay(15);
        }
      })();
      await waitFor(() => published >= 20, "publishing under way");
      await doomed.kill();
      await Promise.all(readers.map((r) => r.ended));
      const resumed = await Promise.all(
        readers.map((r) =>
          openSse(`${n3.url}/events?topic=status:failover`, {
            "last-event-id": r.events.at(-1)!.lastEventId,
          })
        ),
      );
      await publisher;
      for (const [i, reader] of readers.entries()) {
        await waitFor(() => {
          const n = [...reader.events, ...resumed[i].events].filter((e) => e.event === "status");
          return n.length >= 60;
        }, "all 60 across the failover");
      }
      await delay(300);
      for (const [i, reader] of readers.entries()) {
        const got = [...reader.events, ...resumed[i].events].filter((e) => e.event === "status")
          .map((e) => e.json!.payload.n);
        assert.deepEqual(got, Array.from({ length: 60 }, (_, k) => k + 1), `reader ${i}`);
        await resumed[i].close();
      }
    });

    await t.step("a late joiner on another node gets the last status from Redis", async () => {
      await post(n1.url, { topic: "status:late", event: "status", payload: { state: "outage" } });
      const late = await startServer(env("n4"));
      extra.push(late);
      const socket = await connectSocket(late.socketUrl);
      const reply = await join(socket.channel("status:late"));
      assert.deepEqual(reply.status, { state: "outage" });
      const snapshot = await (await fetch(`${late.url}/api/topics/status:late`)).json();
      assert.deepEqual(snapshot.payload, { state: "outage" });
      await disconnect(socket);
      await late.stop();
    });

    await t.step("presence both ways, and broadcast-from across nodes", async () => {
      const ann = await connectSocket(n1.socketUrl, { user_id: "ann" });
      const annTab2 = await connectSocket(n3.socketUrl, { user_id: "ann" });
      const bob = await connectSocket(n2.socketUrl, { user_id: "bob" });
      const views: ReturnType<typeof withPresence>[] = [];
      const channels: Channel[] = [];
      const patches: Record<string, unknown[]> = { ann: [], annTab2: [], bob: [] };
      for (const [name, socket] of [["ann", ann], ["annTab2", annTab2], ["bob", bob]] as const) {
        const channel = socket.channel("record:x", { name });
        channel.on("patch", (p: unknown) => patches[name].push(p));
        views.push(withPresence(channel));
        channels.push(channel);
        await join(channel);
      }
      await waitFor(
        () => views.every((v) => v.keys().join() === "ann×2,bob×1"),
        "ann (two nodes) and bob seen on every node",
      );
      assert.equal((await push(channels[0], "patch", { title: "Q3" })).status, "ok");
      await waitFor(
        () => patches.bob.length === 1 && patches.annTab2.length === 1,
        "patch elsewhere",
      );
      await delay(300);
      assert.deepEqual(patches.ann, [], "never echoed to the sender");
      await push(channels[2], "state", { state: "editing" });
      const bobOnN1 = () =>
        views[0].presence.list((k: string, p: { metas: { state: string }[] }) =>
          k === "bob" ? p.metas[0].state : null
        ).filter(Boolean)[0];
      await waitFor(() => bobOnN1() === "editing", "bob editing seen on n1");
      await disconnect(bob);
      await waitFor(() => views[0].keys().join() === "ann×2", "bob gone on n1");
      await Promise.all([disconnect(ann), disconnect(annTab2)]);
    });

    await t.step(
      "a node stopped with SIGTERM says goodbye: its presences leave at once",
      async () => {
        const leaving = await startServer(env("leaving"));
        extra.push(leaving);
        const amy = await connectSocket(leaving.socketUrl, { user_id: "amy" });
        await join(amy.channel("record:term", { name: "Amy" }));
        const watcher = await connectSocket(n2.socketUrl, { user_id: "w" });
        const view = withPresence(watcher.channel("record:term", {}));
        await join(view.presence.channel);
        await waitFor(() => view.keys().includes("amy×1"), "amy seen on n2");
        const status = await leaving.stop();
        assert.equal(status.code, 0);
        // Well inside the 10 s a silent node is given: the goodbye removed it.
        await waitFor(() => view.keys().join() === "w×1", "amy gone after SIGTERM", 3_000);
        amy.disconnect(() => {}, 1000);
        await disconnect(watcher);
      },
    );

    await t.step(
      "a SIGKILLed node's presences leave everywhere; its restart leaves no ghost",
      async () => {
        const victim = await startServer(env("victim"));
        extra.push(victim);
        const zed = await connectSocket(victim.socketUrl, { user_id: "zed" });
        await join(zed.channel("record:kill", { name: "Zed" }));
        const watcher = await connectSocket(n1.socketUrl, { user_id: "watcher" });
        const view = withPresence(watcher.channel("record:kill", {}));
        await join(view.presence.channel);
        await waitFor(() => view.keys().includes("zed×1"), "zed seen on n1");
        zed.disconnect(() => {}, 1000);
        await victim.kill();
        await waitFor(() => !view.keys().includes("zed×1"), "zed removed after SIGKILL", 30_000);
        for (const node of [n2, n3]) {
          await waitFor(
            async () => {
              const res = await fetch(`${node.url}/api/presence/record:kill`);
              return Object.keys((await res.json()).presences).join() === "watcher";
            },
            "zed removed on every node",
            30_000,
          );
        }

        // The same NODE_ID again: nothing of the killed run comes back.
        const again = await startServer(env("victim"));
        extra.push(again);
        await waitFor(
          async () => (await health(again)).connected,
          "restarted node connected",
          15_000,
        );
        await delay(1500);
        const list = await (await fetch(`${again.url}/api/presence/record:kill`)).json();
        assert.deepEqual(Object.keys(list.presences), ["watcher"]);
        await again.stop();
        await disconnect(watcher);
      },
    );

    // Short: the nodes keep each other. Long (past the 10 s node TTL): they drop each other's
    // presences, and must rebuild them and tell their clients when Redis returns.
    for (const downMs of [0, 12_000]) {
      await t.step(
        `Redis killed ${
          downMs ? "for 12 s" : "briefly"
        } and restarted: local delivery goes on, cross-node resumes`,
        async () => {
          const topic = `record:redis${downMs}`;
          const local = await connectSocket(n1.socketUrl, { user_id: "loc" });
          const remote = await connectSocket(n2.socketUrl, { user_id: "rem" });
          const got: Record<string, number[]> = { local: [], remote: [] };
          const views: ReturnType<typeof withPresence>[] = [];
          for (const [name, socket] of [["local", local], ["remote", remote]] as const) {
            const channel = socket.channel(topic, { name });
            channel.on("patch", (p: { n: number }) => got[name].push(p.n));
            views.push(withPresence(channel));
            await join(channel);
          }
          await waitFor(
            () => views.every((v) => v.keys().join() === "loc×1,rem×1"),
            "presence before",
          );
          const sse = await openSse(`${n1.url}/events?topic=${topic}&user_id=sse`);
          await sse.next((e) => e.event === "presence_state");

          await redis.kill();
          const killedAt = Date.now();
          await post(n1.url, { topic: topic, event: "patch", payload: { n: 1 } });
          await waitFor(
            () => got.local.includes(1),
            "local WebSocket delivery while Redis is down",
          );
          await sse.next((e) => e.event === "patch" && e.json!.payload.n === 1);
          await waitFor(
            async () => !(await health(n1)).connected,
            "healthz reports the broker down",
            15_000,
          );
          const metrics = await (await fetch(`${n1.url}/metrics`)).text();
          assert.match(metrics, /switchboard_broker_connected\{kind="redis"\} 0/);

          await delay(Math.max(0, downMs - (Date.now() - killedAt)));
          await redis.restart();
          let n = 100;
          await waitFor(
            async () => {
              await post(n1.url, { topic: topic, event: "patch", payload: { n: ++n } });
              await delay(200);
              return got.remote.some((x) => x > 100);
            },
            "cross-node delivery after Redis returns",
            30_000,
          );
          await waitFor(
            async () => (await health(n2)).connected,
            "n2 broker connected again",
            15_000,
          );
          await waitFor(
            () => views.every((v) => v.keys().join() === "loc×1,rem×1,sse×1"),
            "presence whole again on both nodes",
            20_000,
          ).catch((err) => {
            throw new Error(`${err.message}; views: ${JSON.stringify(views.map((v) => v.keys()))}`);
          });
          await sse.close();
          await Promise.all([disconnect(local), disconnect(remote)]);
        },
      );
    }
  } finally {
    await Promise.all([...nodes, ...extra].map((n) => n.stop()));
    await bridge.stop();
    await redis.stop();
  }
});
