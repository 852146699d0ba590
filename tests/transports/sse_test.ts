/**
 * `/events` with a fetch-based SSE reader: the contract's event format, ids, retry, heartbeats,
 * presence of SSE viewers, and its errors.
 */
import assert from "node:assert/strict";
import { connectSocket, disconnect, join, withPresence } from "../support/phoenix.ts";
import { startServer } from "../support/server.ts";
import { openSse } from "../support/sse.ts";
import { waitFor } from "../support/wait.ts";

async function post(url: string, body: unknown): Promise<void> {
  const res = await fetch(`${url}/api/broadcast`, { method: "POST", body: JSON.stringify(body) });
  await res.body?.cancel();
  assert.equal(res.status, 202);
}

Deno.test("SSE transport", async (t) => {
  const server = await startServer({ SSE_HEARTBEAT_MS: "200" });
  try {
    await t.step(
      "headers, retry, joined with the current status, then live events with ids",
      async () => {
        await post(server.url, {
          topic: "status:sse",
          event: "status",
          payload: { state: "maintenance" },
        });
        const sse = await openSse(`${server.url}/events?topic=status:sse`);
        assert.equal(sse.response.status, 200);
        assert.equal(sse.response.headers.get("content-type"), "text/event-stream; charset=utf-8");
        assert.equal(sse.response.headers.get("x-accel-buffering"), "no");
        assert.match(sse.response.headers.get("cache-control")!, /no-cache/);
        const joined = await sse.next((e) => e.event === "joined");
        assert.equal(joined.json!.topic, "status:sse");
        assert.deepEqual(joined.json!.payload.status, { state: "maintenance" });
        assert.ok(sse.retry! >= 1000, "a retry: hint is sent");
        await post(server.url, {
          topic: "status:sse",
          event: "status",
          payload: { state: "operational", x: 1 },
        });
        const live = await sse.next((e) => e.event === "status");
        assert.deepEqual(JSON.parse(live.data), {
          topic: "status:sse",
          payload: { state: "operational", x: 1 },
        });
        // The cursor: when the stream started following the topic, then stream*seq per origin.
        assert.match(live.id!, /^status%3Asse=\d+,[\w.-]+~[a-z0-9]+\*2$/);
        await waitFor(() => sse.comments.length >= 2, "comment heartbeats");
        await sse.close();
      },
    );

    await t.step("one stream over two topics: the id is a cursor over both", async () => {
      const sse = await openSse(`${server.url}/events?topic=status:a&topic=status:b`);
      await sse.next((e) => e.event === "joined" && e.json!.topic === "status:a");
      await sse.next((e) => e.event === "joined" && e.json!.topic === "status:b");
      await post(server.url, [
        { topic: "status:a", event: "status", payload: { n: 1 } },
        { topic: "status:b", event: "status", payload: { n: 2 } },
        { topic: "status:a", event: "status", payload: { n: 3 } },
      ]);
      const events = [await sse.next(), await sse.next(), await sse.next()];
      assert.deepEqual(events.map((e) => e.json!.payload.n), [1, 2, 3]);
      const ids = events.map((e) =>
        e.id!.replace(/=\d+/g, "=T").replace(/[\w.-]+~[a-z0-9]+\*/g, "S*")
      );
      assert.deepEqual(ids, [
        "status%3Aa=T,S*1&status%3Ab=T",
        "status%3Aa=T,S*1&status%3Ab=T,S*1",
        "status%3Aa=T,S*2&status%3Ab=T,S*1",
      ]);
      await sse.close();
    });

    await t.step("an SSE viewer is in presence while its stream is open", async () => {
      const watcher = await connectSocket(server.socketUrl, { user_id: "ws-user" });
      const view = withPresence(watcher.channel("record:sse", { name: "Web" }));
      await join(view.presence.channel);
      const sse = await openSse(`${server.url}/events?topic=record:sse&user_id=ann&name=Ann`);
      const state = await sse.next((e) => e.event === "presence_state");
      assert.ok("ws-user" in state.json!.payload, "the state has who was there before");
      // The viewer itself is in the state, or (joined in the same batch window as the state's
      // snapshot) in the diff that follows it: the client converges either way.
      const withAnn = "ann" in state.json!.payload
        ? state
        : await sse.next((e) =>
          e.event === "presence_diff" && "ann" in (e.json!.payload.joins as object)
        );
      const source = withAnn.event === "presence_state"
        ? withAnn.json!.payload
        : withAnn.json!.payload.joins as Record<string, unknown>;
      const annMeta = (source.ann as { metas: Record<string, unknown>[] }).metas[0];
      assert.equal(annMeta.name, "Ann");
      assert.equal(annMeta.state, "viewing");
      await waitFor(
        () => view.keys().join() === "ann×1,ws-user×1",
        "SSE viewer seen over WebSocket",
      );
      await sse.close();
      await waitFor(
        () => view.keys().join() === "ws-user×1",
        "SSE viewer gone when its stream ends",
      );
      await disconnect(watcher);
    });

    await t.step("presence diffs reach SSE viewers", async () => {
      const sse = await openSse(`${server.url}/events?topic=record:diff&user_id=viewer`);
      await sse.next((e) => e.event === "presence_state");
      const socket = await connectSocket(server.socketUrl, { user_id: "bob" });
      await join(socket.channel("record:diff", { name: "Bob" }));
      const diff = await sse.next((e) =>
        e.event === "presence_diff" && "bob" in (e.json!.payload.joins as object)
      );
      assert.deepEqual(diff.json!.payload.leaves, {});
      await disconnect(socket);
      await sse.next((e) =>
        e.event === "presence_diff" && "bob" in (e.json!.payload.leaves as object)
      );
      await sse.close();
    });

    await t.step(
      "errors: no topic 400, unknown topic 404, refused join 403, all JSON",
      async () => {
        const cases: [string, number, RegExp][] = [
          ["/events", 400, /missing topic/],
          ["/events?topic=", 400, /missing topic/],
          ["/events?topic=nope:1", 404, /unmatched topic: no channel matches "nope:1"/],
          ["/events?topic=status:ok&topic=nope:2", 404, /nope:2/],
          [`/events?topic=record:1&name=${"x".repeat(200)}`, 403, /invalid_params/],
        ];
        for (const [path, status, message] of cases) {
          const res = await fetch(server.url + path);
          assert.equal(res.status, status, path);
          assert.match(res.headers.get("content-type")!, /application\/json/);
          assert.match((await res.json()).error, message);
        }
        const health = await fetch(`${server.url}/healthz`);
        assert.equal((await health.json()).sessions, 0, "refused streams leave no session behind");
      },
    );
  } finally {
    await server.stop();
  }
});
