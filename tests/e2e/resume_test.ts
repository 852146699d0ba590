/**
 * No message lost on reconnect (one node): an EventSource-style reader reconnecting with
 * `Last-Event-ID`, several topics, live messages during the replay, the window's edge, a
 * WebSocket join with `cursor`, and conditional polling that hands over to a stream.
 */
import assert from "node:assert/strict";
import { connectSocket, disconnect, join } from "../support/phoenix.ts";
import { startServer } from "../support/server.ts";
import { openSse, type SseStream } from "../support/sse.ts";
import { delay, waitFor } from "../support/wait.ts";

async function post(url: string, body: unknown): Promise<void> {
  const res = await fetch(`${url}/api/broadcast`, { method: "POST", body: JSON.stringify(body) });
  await res.body?.cancel();
  assert.equal(res.status, 202);
}

const status = (topic: string, n: number) => ({ topic, event: "status", payload: { n } });
const numbers = (sse: SseStream, event = "status") =>
  sse.events.filter((e) => e.event === event).map((e) => e.json!.payload.n as number);

Deno.test("resume on one node", async (t) => {
  const server = await startServer({ HISTORY_SIZE: "20" });
  try {
    await t.step("Last-Event-ID replays exactly the missed messages, then live ones", async () => {
      const first = await openSse(`${server.url}/events?topic=status:r1`);
      await first.next((e) => e.event === "joined");
      for (let n = 1; n <= 3; n++) await post(server.url, status("status:r1", n));
      await waitFor(() => numbers(first).length === 3, "three live messages");
      const lastId = first.events.at(-1)!.lastEventId;
      await first.close();
      for (let n = 4; n <= 6; n++) await post(server.url, status("status:r1", n));
      const again = await openSse(`${server.url}/events?topic=status:r1`, {
        "last-event-id": lastId,
      });
      await post(server.url, status("status:r1", 7));
      await waitFor(() => numbers(again).length === 4, "missed then live");
      await delay(200);
      assert.deepEqual(numbers(again), [4, 5, 6, 7]);
      assert.equal(again.events[0].event, "joined", "the join comes first");
      assert.equal(again.events[0].id, lastId, "…carrying the resume position, not the head");
      await again.close();
    });

    await t.step("one cursor over several topics resumes each of them", async () => {
      const sse = await openSse(`${server.url}/events?topic=status:ma&topic=status:mb`);
      await post(server.url, [status("status:ma", 1), status("status:mb", 1)]);
      await waitFor(() => numbers(sse).length === 2, "one on each");
      const lastId = sse.events.at(-1)!.lastEventId;
      await sse.close();
      await post(server.url, [
        status("status:mb", 2),
        status("status:ma", 2),
        status("status:mb", 3),
      ]);
      const again = await openSse(`${server.url}/events?topic=status:ma&topic=status:mb`, {
        "last-event-id": lastId,
      });
      await waitFor(() => numbers(again).length === 3, "three missed");
      const got = again.events.filter((e) => e.event === "status").map((e) =>
        `${e.json!.topic}:${e.json!.payload.n}`
      );
      assert.deepEqual(got.filter((g) => g.startsWith("status:ma")), ["status:ma:2"]);
      assert.deepEqual(got.filter((g) => g.startsWith("status:mb")), [
        "status:mb:2",
        "status:mb:3",
      ]);
      await again.close();
    });

    await t.step("messages published during the replay are neither lost nor doubled", async () => {
      const sse = await openSse(`${server.url}/events?topic=status:race`);
      await post(server.url, status("status:race", 1));
      await waitFor(() => numbers(sse).length === 1, "first");
      const lastId = sse.events.at(-1)!.lastEventId;
      await sse.close();
      for (let n = 2; n <= 10; n++) await post(server.url, status("status:race", n));
      const publishing = (async () => {
        for (let n = 11; n <= 20; n++) await post(server.url, status("status:race", n));
      })();
      const again = await openSse(`${server.url}/events?topic=status:race`, {
        "last-event-id": lastId,
      });
      await publishing;
      await waitFor(() => numbers(again).length >= 19, "all of 2..20");
      await delay(200);
      assert.deepEqual(numbers(again), Array.from({ length: 19 }, (_, i) => i + 2));
      await again.close();
    });

    await t.step("past the window's edge: an explicit reset with the current status", async () => {
      const sse = await openSse(`${server.url}/events?topic=status:edge`);
      await post(server.url, status("status:edge", 1));
      await waitFor(() => numbers(sse).length === 1, "first");
      const lastId = sse.events.at(-1)!.lastEventId;
      await sse.close();
      // HISTORY_SIZE is 20: 25 more push the first missed ones out.
      await post(server.url, Array.from({ length: 25 }, (_, i) => status("status:edge", i + 2)));
      const again = await openSse(`${server.url}/events?topic=status:edge`, {
        "last-event-id": lastId,
      });
      const reset = await again.next((e) => e.event === "reset");
      assert.equal(reset.json!.payload.reason, "history_window_exceeded");
      assert.deepEqual((reset.json!.payload.state as { status: unknown }).status, { n: 26 });
      assert.notEqual(reset.id, undefined, "the reset moves the cursor to now");
      await post(server.url, status("status:edge", 27));
      await again.next((e) => e.event === "status");
      assert.deepEqual(numbers(again), [27], "nothing stale is replayed after a reset");
      await again.close();
      const fromReset = await openSse(`${server.url}/events?topic=status:edge`, {
        "last-event-id": again.events.at(-1)!.lastEventId,
      });
      await fromReset.next((e) => e.event === "joined");
      await delay(200);
      assert.equal(fromReset.events.filter((e) => e.event === "reset").length, 0);
      await fromReset.close();
    });

    await t.step(
      "WebSocket: the SSE cursor as join param replays; the reply has a cursor",
      async () => {
        const sse = await openSse(`${server.url}/events?topic=status:ws`);
        await post(server.url, status("status:ws", 1));
        await waitFor(() => numbers(sse).length === 1, "first over SSE");
        const lastId = sse.events.at(-1)!.lastEventId;
        await sse.close();
        await post(server.url, [status("status:ws", 2), status("status:ws", 3)]);
        const socket = await connectSocket(server.socketUrl);
        const channel = socket.channel("status:ws", { cursor: lastId });
        const got: number[] = [];
        channel.on("status", (p: { n: number }) => got.push(p.n));
        const reply = await join(channel);
        assert.equal(reply.cursor, lastId);
        await waitFor(() => got.length === 2, "replayed over WebSocket");
        assert.deepEqual(got, [2, 3]);
        const fresh = socket.channel("status:ws2", { cursor: "" });
        assert.match(String((await join(fresh)).cursor), /^status%3Aws2=\d+$/);
        const bad = socket.channel("status:ws3", { cursor: "garbage" });
        await assert.rejects(join(bad), /bad_cursor/);
        bad.leave();
        await disconnect(socket);
      },
    );

    await t.step("poll first (ETag, 304), then stream from the snapshot's cursor", async () => {
      await post(server.url, status("status:poll", 1));
      const first = await fetch(`${server.url}/api/topics/status:poll`);
      const snapshot = await first.json();
      const etag = first.headers.get("etag")!;
      assert.match(first.headers.get("cache-control")!, /max-age=\d+/);
      assert.deepEqual(snapshot.payload, { n: 1 });
      const same = await fetch(`${server.url}/api/topics/status:poll`, {
        headers: { "if-none-match": etag },
      });
      assert.equal(same.status, 304);
      await same.body?.cancel();
      await post(server.url, status("status:poll", 2));
      const changed = await fetch(`${server.url}/api/topics/status:poll`, {
        headers: { "if-none-match": etag },
      });
      assert.equal(changed.status, 200);
      await changed.body?.cancel();
      const sse = await openSse(
        `${server.url}/events?topic=status:poll&cursor=${encodeURIComponent(snapshot.cursor)}`,
      );
      await sse.next((e) => e.event === "status");
      assert.deepEqual(numbers(sse), [2], "what came after the snapshot, once");
      await sse.close();
    });

    await t.step("a bad ?cursor= is a 400 that says what to send", async () => {
      const res = await fetch(`${server.url}/events?topic=status:x&cursor=not%20a%20cursor`);
      assert.equal(res.status, 400);
      assert.match((await res.json()).error, /bad cursor/);
    });

    await t.step(
      "a Last-Event-ID the server cannot read opens the stream with a reset",
      async () => {
        // EventSource never retries after a 4xx: it must get a stream, from now on.
        const sse = await openSse(`${server.url}/events?topic=status:x`, {
          "last-event-id": "not a cursor",
        });
        assert.equal(sse.response.status, 200);
        const reset = await sse.next((e) => e.event === "reset");
        assert.equal(reset.json?.payload.reason, "cursor_unusable");
        assert.doesNotMatch(reset.lastEventId, /not a cursor/);
        assert.ok(!sse.events.some((e) => e.id?.includes("not a cursor")), "never echoed");
        await sse.close();
      },
    );

    await t.step("every stream gets its own retry hint, spread over seconds", async () => {
      const retries = new Set<number>();
      for (let i = 0; i < 8; i++) {
        const sse = await openSse(`${server.url}/events?topic=status:retry`);
        await sse.next((e) => e.event === "joined");
        retries.add(sse.retry!);
        await sse.close();
      }
      assert.ok(retries.size > 1, `randomized retry: ${[...retries]}`);
    });
  } finally {
    await server.stop();
  }
});
