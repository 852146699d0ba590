/**
 * Fossil deltas end to end, against the real server process: 100 one-component updates of a
 * ~10 KB status go to SSE and WebSocket subscribers with and without `delta=fossil`; the deltas
 * are applied with npm `fossil-delta` and must give back every payload's exact JSON, in at
 * least 5× fewer bytes. Resumes and resets start with a full payload; an official Phoenix
 * client that did not ask sees ordinary broadcasts; a channel can turn deltas off.
 * @module
 */
import assert from "node:assert/strict";
import { statusUpdates } from "../../bench/lib/status_workload.ts";
import { Engine } from "../../lib/client/engine.ts";
import { openFeed } from "../../lib/client/feed.ts";
import type { EngineMessage } from "../../lib/client/wire.ts";
import { defineChannel } from "../../lib/core/channel.ts";
import { serveInProcess } from "../support/in_process.ts";
import { LongPoll } from "phoenix";
import { connectSocket, disconnect, join } from "../support/phoenix.ts";
import { countOf, Decoded, decodeSse, decodeWs, joinRaw, publishAll } from "../support/deltas.ts";
import { type RawSocket, replyOf } from "../support/raw_ws.ts";
import { startServer } from "../support/server.ts";
import { openSse, type SseStream } from "../support/sse.ts";
import { waitFor } from "../support/wait.ts";

/** The options of an engine that asks for deltas from the server at `url`. */
function deltaEngineOptions(url: string): ConstructorParameters<typeof Engine>[0] {
  return {
    endpoint: `${url.replace("http", "ws")}/socket`,
    eventsUrl: `${url}/events`,
    pollUrl: `${url}/api/topics/`,
    params: {},
    longPollFallbackMs: 2500,
    presenceLeaveGraceMs: 0,
    deltas: true,
  };
}

Deno.test("deltas: 100 one-component updates over SSE and WebSocket, with and without", async (t) => {
  const server = await startServer();
  const topic = "status:delta-e2e";
  const updates = statusUpdates(104);
  const expected = updates.map((u) => JSON.stringify(u));
  const sseDelta = await openSse(`${server.url}/events?topic=${topic}&delta=fossil`);
  const sseFull = await openSse(`${server.url}/events?topic=${topic}`);
  const wsDelta = await joinRaw(server.socketUrl, topic, { delta: "fossil", cursor: "" });
  const wsFull = await joinRaw(server.socketUrl, topic, {});
  const phoenix = await connectSocket(server.socketUrl);
  const phoenixEvents: string[] = [];
  const phoenixPayloads: unknown[] = [];
  phoenix.onMessage((m: { topic: string; event: string }) => {
    if (m.topic === topic) phoenixEvents.push(m.event);
  });
  const channel = phoenix.channel(topic, {});
  channel.on("status", (p: unknown) => phoenixPayloads.push(p));
  try {
    await join(channel);
    await sseDelta.next((e) => e.event === "joined");
    await sseFull.next((e) => e.event === "joined");

    await t.step("every delta decodes to the exact payload, in >= 5x fewer bytes", async () => {
      await publishAll(server.url, topic, updates.slice(0, 100));
      const statuses = (s: SseStream) => s.events.filter((e) => e.event === "status").length;
      await waitFor(() => statuses(sseDelta) === 100 && statuses(sseFull) === 100, "SSE events");
      const wsCount = (ws: RawSocket) => ws.log.filter((f) => f.topic === topic).length;
      // Join reply plus 100 messages each.
      await waitFor(() => wsCount(wsDelta.ws) === 101 && wsCount(wsFull.ws) === 101, "frames");

      for (
        const [name, withDeltas, without] of [
          ["SSE", decodeSse(sseDelta, topic), decodeSse(sseFull, topic)],
          ["WebSocket", decodeWs(wsDelta.ws.log, topic), decodeWs(wsFull.ws.log, topic)],
        ] as const
      ) {
        assert.deepEqual(withDeltas.texts, expected.slice(0, 100), `${name}: decoded payloads`);
        assert.deepEqual(without.texts, expected.slice(0, 100), `${name}: full payloads`);
        // The first message after the join is full; every later one is a delta.
        assert.equal(withDeltas.kinds[0], "full");
        assert.equal(countOf(withDeltas, "delta"), 99, `${name}: deltas`);
        assert.equal(countOf(without, "delta"), 0);
        const ratio = without.bytes / withDeltas.bytes;
        assert.ok(ratio >= 5, `${name}: only ${ratio.toFixed(1)}x fewer bytes`);
        console.log(
          `${name}: ${without.bytes} bytes full, ${withDeltas.bytes} with deltas (${
            ratio.toFixed(1)
          }x fewer)`,
        );
      }
    });

    await t.step(
      "an official Phoenix client that did not ask sees ordinary broadcasts",
      async () => {
        await waitFor(() => phoenixPayloads.length === 100, "phoenix client messages");
        assert.deepEqual(phoenixPayloads.map((p) => JSON.stringify(p)), expected.slice(0, 100));
        assert.ok(
          !phoenixEvents.includes("phx_delta"),
          "a phx_delta reached a client that did not ask",
        );
      },
    );

    await t.step("an official Phoenix client that asks gets phx_delta over long-poll", async () => {
      const poller = await connectSocket(server.socketUrl, {}, { transport: LongPoll });
      const pollTopic = "status:delta-longpoll";
      const decoded = new Decoded();
      const asked = poller.channel(pollTopic, { delta: "fossil" });
      asked.on("status", (p: unknown) => decoded.full(JSON.stringify(p), 0));
      asked.on("phx_delta", (p: { event: string; delta: string }) => decoded.delta(p.delta, 0));
      try {
        await join(asked);
        await publishAll(server.url, pollTopic, updates.slice(0, 10));
        await waitFor(() => decoded.texts.length === 10, "ten messages over long-poll");
        assert.deepEqual(decoded.texts, expected.slice(0, 10));
        assert.equal(countOf(decoded, "delta"), 9);
      } finally {
        await disconnect(poller);
      }
    });

    await t.step("an SSE resume (Last-Event-ID) starts with a full payload", async () => {
      const lastId = sseDelta.events.at(-1)!.lastEventId;
      await sseDelta.close();
      await publishAll(server.url, topic, updates.slice(100, 103));
      const resumed = await openSse(`${server.url}/events?topic=${topic}&delta=fossil`, {
        "last-event-id": lastId,
      });
      try {
        await resumed.next((e) => e.event === "status" && e.id !== undefined);
        await waitFor(
          () => resumed.events.filter((e) => e.event === "status").length === 3,
          "replay",
        );
        await publishAll(server.url, topic, updates.slice(103, 104));
        await waitFor(
          () => resumed.events.filter((e) => e.event === "status").length === 4,
          "live",
        );
        const decoded = decodeSse(resumed, topic);
        // Replayed: full payloads; the live one after them: a delta against the last replayed.
        assert.deepEqual(decoded.kinds, ["full", "full", "full", "delta"]);
        assert.deepEqual(decoded.texts, expected.slice(100, 104));
      } finally {
        await resumed.close();
      }
    });

    await t.step("a WebSocket resume from a cursor starts with a full payload", async () => {
      const cursor = wsDelta.response.cursor as string;
      const again = await joinRaw(server.socketUrl, topic, { delta: "fossil", cursor });
      try {
        await waitFor(() => again.ws.log.filter((f) => f.topic === topic).length === 105, "replay");
        const decoded = decodeWs(again.ws.log, topic);
        assert.equal(decoded.kinds[0], "full");
        assert.deepEqual(decoded.texts, expected);
      } finally {
        await again.ws.close();
      }
    });

    await t.step("after a reset (an unusable Last-Event-ID) the next message is full", async () => {
      const reset = await openSse(`${server.url}/events?topic=${topic}&delta=fossil`, {
        "last-event-id": "not-a-cursor",
      });
      try {
        const first = await reset.next((e) => e.event === "reset");
        assert.equal(first.json?.payload.reason, "cursor_unusable");
        const from = reset.events.length;
        await publishAll(server.url, topic, updates.slice(0, 2));
        await waitFor(
          () => reset.events.filter((e) => e.event === "status").length === 2,
          "events",
        );
        const decoded = decodeSse(reset, topic, from);
        assert.deepEqual(decoded.kinds, ["full", "delta"]);
        assert.deepEqual(decoded.texts, expected.slice(0, 2));
      } finally {
        await reset.close();
      }
    });

    await t.step(
      "after a WebSocket reset (a cursor of a stream long gone) the next is full",
      async () => {
        // A well-formed position in a stream this node never had: its messages cannot be replayed.
        const cursor = `${encodeURIComponent(topic)}=0,gone~run999*5`;
        const again = await joinRaw(server.socketUrl, topic, { delta: "fossil", cursor });
        try {
          const reset = await again.ws.next((f) => f.topic === topic && f.event === "reset");
          assert.ok((reset.payload as { reason?: string }).reason);
          const from = again.ws.log.length;
          await publishAll(server.url, topic, updates.slice(0, 2));
          const frames = () => again.ws.log.slice(from);
          await waitFor(() => decodeWs(frames(), topic).texts.length === 2, "two messages");
          const decoded = decodeWs(frames(), topic);
          assert.deepEqual(decoded.kinds, ["full", "delta"]);
          assert.deepEqual(decoded.texts, expected.slice(0, 2));
        } finally {
          await again.ws.close();
        }
      },
    );
  } finally {
    await sseDelta.close();
    await sseFull.close();
    await wsDelta.ws.close();
    await wsFull.ws.close();
    await disconnect(phoenix);
    await server.stop();
  }
});

Deno.test("deltas: a channel can turn them off; a wrong delta param is refused", async () => {
  const channels = [
    defineChannel({ topic: "plain:*", access: "public", deltas: false }),
    defineChannel({ topic: "status:*", access: "public" }),
  ];
  await using app = serveInProcess({ channels });
  const updates = statusUpdates(5);
  const sse = await openSse(`${app.url}/events?topic=plain:a&delta=fossil`);
  const { ws } = await joinRaw(app.socketUrl, "plain:a", { delta: "fossil" });
  try {
    await sse.next((e) => e.event === "joined");
    for (const payload of updates) app.switchboard.hub.broadcast("plain:a", "status", payload);
    await waitFor(() => sse.events.filter((e) => e.event === "status").length === 5, "SSE events");
    await waitFor(() => ws.log.filter((f) => f.event === "status").length === 5, "frames");
    assert.deepEqual(decodeSse(sse, "plain:a").kinds, ["full", "full", "full", "full", "full"]);
    assert.ok(!ws.log.some((f) => f.event === "phx_delta"));

    const bad = await fetch(`${app.url}/events?topic=status:a&delta=gzip`);
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error, /delta must be "fossil"/);
    ws.push("2", "2", "status:b", "phx_join", { delta: "vcdiff" });
    const refused = replyOf(await ws.next((f) => f.ref === "2" && f.event === "phx_reply"));
    assert.equal(refused.status, "error");
    assert.equal(refused.response.reason, "invalid_params");
    assert.match(String(refused.response.detail), /delta must be "fossil"/);
  } finally {
    await sse.close();
    await ws.close();
  }
});

Deno.test("deltas: a gap (broadcast-from) or a push to the client sends the next one in full", async () => {
  const channels = [
    defineChannel({
      topic: "room:*",
      access: "public",
      // "set": a broadcast-from of the payload; anything else: pushed back to the sender.
      handleIn(ctx, event, payload) {
        if (event === "set") ctx.broadcastFrom("status", payload);
        else ctx.push("note", payload);
        return {};
      },
    }),
  ];
  await using app = serveInProcess({ channels });
  const topic = "room:1";
  const u = statusUpdates(5);
  const a = await joinRaw(app.socketUrl, topic, { delta: "fossil" });
  const b = await joinRaw(app.socketUrl, topic, { delta: "fossil" });
  const statuses = (ws: RawSocket) =>
    ws.log.filter((f) => f.topic === topic && (f.event === "status" || f.event === "phx_delta"))
      .length;
  try {
    app.switchboard.hub.broadcast(topic, "status", u[0]);
    app.switchboard.hub.broadcast(topic, "status", u[1]);
    a.ws.push("1", "2", topic, "set", u[2]); // to everyone but a
    await waitFor(() => statuses(b.ws) === 3, "b's third status");
    app.switchboard.hub.broadcast(topic, "status", u[3]);
    b.ws.push("1", "3", topic, "note", { text: "for b only" });
    await b.ws.next((f) => f.event === "note");
    app.switchboard.hub.broadcast(topic, "status", u[4]);
    await waitFor(() => statuses(a.ws) === 4 && statuses(b.ws) === 5, "every status");
    const da = decodeWs(a.ws.log, topic);
    const db = decodeWs(b.ws.log, topic);
    // a missed u2 (its own broadcast-from): u3 comes in full.
    assert.deepEqual(da.kinds, ["full", "delta", "full", "delta"]);
    // b was pushed a note after u3: u4 comes in full.
    assert.deepEqual(db.kinds, ["full", "delta", "delta", "delta", "full"]);
    const json = u.map((x) => JSON.stringify(x));
    assert.deepEqual(da.texts, [json[0], json[1], json[3], json[4]]);
    assert.deepEqual(db.texts, json);
  } finally {
    await a.ws.close();
    await b.ws.close();
  }
});

Deno.test("deltas in our client: channels and feeds rebuild every payload; a bad delta is asked again", async (t) => {
  const server = await startServer();
  const updates = statusUpdates(30);
  const expected = updates.map((u) => JSON.stringify(u));
  try {
    await t.step("a channel over WebSocket and a feed over SSE, through the engine", async () => {
      const topic = "status:client-deltas";
      const got = { channel: [] as string[], feed: [] as string[], feedDeltas: 0 };
      let joined = false;
      let feedLive = false;
      const engine = new Engine(deltaEngineOptions(server.url), (msg: EngineMessage) => {
        if (msg.t === "joined") joined = msg.status === "ok";
        // The stream answers once its topic is joined: live means subscribed.
        if (msg.t === "feedState" && msg.state.kind === "live") feedLive = true;
        if (msg.t === "msg" && msg.event === "status") {
          got.channel.push(JSON.stringify(msg.payload));
        }
        if (msg.t === "feedEvent" && msg.event === "status") {
          got.feed.push(JSON.stringify(msg.payload));
          if (msg.delta) got.feedDeltas++;
        }
      });
      try {
        engine.handle({ t: "join", from: "t1", cid: 1, topic, params: {} });
        const events = ["joined", "status"];
        engine.handle({ t: "feed", from: "t1", cid: 2, topic, events, poll: false });
        await waitFor(() => joined, "the channel's join");
        await waitFor(() => feedLive, "the feed's stream");
        await publishAll(server.url, topic, updates);
        await waitFor(() => got.channel.length === 30 && got.feed.length === 30, "30 of each");
        assert.deepEqual(got.channel, expected);
        assert.deepEqual(got.feed, expected);
        // The first of each is full; the 29 after it are deltas, on both.
        assert.equal(got.feedDeltas, 29);
        assert.equal(engine.deltasApplied, 58);
      } finally {
        engine.close();
      }
    });

    await t.step("a delta that does not apply makes a channel rejoin from its cursor", async () => {
      const topic = "status:client-rejoin";
      // The real WebSocket, with one phx_delta damaged on its way; phoenix reads the global.
      let damaged = 0;
      const RealWebSocket = globalThis.WebSocket;
      class DamagingWebSocket extends RealWebSocket {
        override set onmessage(handler: ((e: MessageEvent) => void) | null) {
          super.onmessage = (e: MessageEvent) => {
            const text = typeof e.data === "string" ? e.data : "";
            if (handler && text.includes('"phx_delta"') && damaged++ === 9) {
              handler(new MessageEvent("message", { data: text.replace(/;"}]$/, 'X;"}]') }));
            } else handler?.(e);
          };
        }
        override get onmessage(): ((e: MessageEvent) => void) | null {
          return super.onmessage;
        }
      }
      const payloads: string[] = [];
      let joins = 0;
      globalThis.WebSocket = DamagingWebSocket;
      const engine = new Engine(deltaEngineOptions(server.url), (msg: EngineMessage) => {
        if (msg.t === "joined" && msg.status === "ok") joins++;
        if (msg.t === "msg" && msg.event === "status") payloads.push(JSON.stringify(msg.payload));
      });
      try {
        engine.handle({ t: "join", from: "t1", cid: 1, topic, params: {} });
        await waitFor(() => joins === 1, "the join");
        await publishAll(server.url, topic, updates);
        await waitFor(() => payloads.length === 30, "30 payloads", 10_000);
        assert.ok(damaged > 9, "no delta was damaged");
        assert.equal(joins, 2, "the channel did not join again after the bad delta");
        assert.deepEqual(payloads, expected, "every payload once, in order");
      } finally {
        engine.close();
        globalThis.WebSocket = RealWebSocket;
      }
    });

    await t.step(
      "a delta that does not apply makes the feed resume with full payloads",
      async () => {
        const topic = "status:client-corrupt";
        // The real EventSource, with one delta damaged on its way (as a broken proxy might).
        let damaged = 0;
        let opened = 0;
        class DamagingEventSource extends EventSource {
          constructor(url: string | URL) {
            super(url);
            opened++;
          }
          // deno-lint-ignore no-explicit-any
          override addEventListener(type: string, listener: any): void {
            super.addEventListener(type, (m: MessageEvent<string>) => {
              if (type === "status" && m.data.includes('"delta"') && damaged++ === 9) {
                const bad = m.data.replace(/;"}$/, 'X;"}'); // the checksum no longer matches
                listener(new MessageEvent(type, { data: bad, lastEventId: m.lastEventId }));
              } else listener(m);
            });
          }
        }
        const payloads: string[] = [];
        let live = false;
        const feed = openFeed({
          url: `${server.url}/events?topic=${topic}`,
          events: ["joined", "status"],
          deltas: true,
          EventSource: DamagingEventSource as typeof EventSource,
          onEvent: (e) => {
            if (e.event === "joined") live = true;
            else payloads.push(JSON.stringify(e.payload));
          },
        });
        try {
          await waitFor(() => live, "the feed's join");
          await publishAll(server.url, topic, updates);
          await waitFor(() => payloads.length === 30, "30 payloads", 10_000);
          assert.ok(damaged > 9, "no delta was damaged");
          assert.equal(opened, 2, "the stream was not reopened after the bad delta");
          assert.deepEqual(payloads, expected, "every payload once, in order");
        } finally {
          feed.close();
        }
      },
    );
  } finally {
    await server.stop();
  }
});
