/**
 * The SSE connection's ids (issue #15): bounded to the streams still in the window on a page
 * open for days, and never showing a client's position before its replay has judged it.
 * Driven through the connection's own stream, as the route hands it to Deno.serve.
 */
import assert from "node:assert/strict";
import { Broadcast } from "../../lib/core/broadcast.ts";
import { PhxEvent } from "../../lib/core/protocol.ts";
import { parseCursor } from "../../lib/resume/cursor.ts";
import { replayFrom, TopicHistory } from "../../lib/resume/history.ts";
import { SSE_ID_BUDGET, SseConnection } from "../../lib/transports/sse.ts";

const TOPIC = "status:days";

function broadcast(stream: string, seq: number, at: number): Broadcast {
  return new Broadcast({
    topic: TOPIC,
    event: "status",
    payload: { seq },
    origin: { nodeId: stream },
    stream,
    seq,
    at,
  });
}

const joinReply = {
  joinRef: "1",
  ref: "1",
  topic: TOPIC,
  event: PhxEvent.reply,
  payload: { status: "ok", response: {} },
};

/** Reads what the connection has written so far, as `id:` lines. */
async function ids(connection: SseConnection, reader: ReadableStreamDefaultReader<Uint8Array>) {
  connection.close(1001, "test done");
  let text = "";
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    text += new TextDecoder().decode(r.value);
  }
  return [...text.matchAll(/^id: (.*)$/gm)].map((m) => m[1]);
}

Deno.test("streams that leave the window leave the ids of a long-lived stream", async () => {
  let now = 1_000_000;
  const connection = new SseConnection({
    maxBuffered: 1 << 20,
    windowMs: 60_000,
    clock: { now: () => now },
  });
  const reader = connection.stream.getReader();
  connection.startTopic(TOPIC, { since: now, streams: new Map() });
  connection.sendMessage(joinReply);
  // Node runs come and go (Deno Deploy, Workers): each publishes once.
  for (let run = 0; run < 50; run++) {
    connection.sendBroadcast(broadcast(`n~run${run}`, 1, now));
    now += 10_000;
    connection.heartbeat();
  }
  const written = await ids(connection, reader);
  const last = written.at(-1)!;
  const streams = last.split(",").slice(1);
  // A window of 60 s at one run per 10 s: the runs of the last minute, never all fifty.
  assert.ok(streams.length <= 7, `bounded: ${last}`);
  assert.ok(streams.includes("n~run49*1"), last);
  assert.ok(!last.includes("n~run0*"), last);
});

Deno.test("ids wait until the client's own position is judged", async () => {
  const connection = new SseConnection({ maxBuffered: 1 << 20, windowMs: 60_000 });
  const reader = connection.stream.getReader();
  const sent = { since: 5, streams: new Map([["made~up", 9], ["n~a", 3]]) };
  connection.startTopic(TOPIC, sent, true);
  connection.sendMessage(joinReply);
  connection.startTopic("status:other", { since: 7, streams: new Map([["n~a", 1]]) });
  connection.sendMessage({ ...joinReply, topic: "status:other" });
  // The replay finds `made~up` unknown: a reset from the head.
  connection.startTopic(TOPIC, { since: 8, streams: new Map([["n~a", 4]]) });
  const written = await ids(connection, reader);
  assert.deepEqual(written, [
    "status%3Adays=8,n~a*4",
    "status%3Adays=8,n~a*4&status%3Aother=7,n~a*1",
  ]);
});

Deno.test("an id never outgrows SSE_ID_BUDGET: the oldest streams go first", async () => {
  let now = 2_000_000;
  const connection = new SseConnection({
    maxBuffered: 1 << 22,
    windowMs: 3_600_000,
    clock: { now: () => now },
  });
  const reader = connection.stream.getReader();
  connection.startTopic(TOPIC, { since: now, streams: new Map() });
  connection.sendMessage(joinReply);
  // 300 runs inside one window, with long node ids: far more than fits.
  const node = "deploy-region-with-a-long-isolate-name";
  const history = new TopicHistory({ size: 1000, maxAgeMs: 3_600_000 });
  for (let run = 0; run < 300; run++) {
    const b = broadcast(`${node}.${run}~r${run}`, 1, now++);
    history.add(b);
    connection.sendBroadcast(b);
  }
  const written = await ids(connection, reader);
  for (const id of written) assert.ok(id.length <= SSE_ID_BUDGET, `${id.length} characters`);
  const last = written.at(-1)!;
  assert.ok(last.includes(`${node}.299~r299*1`), "the newest stream is kept");
  assert.ok(!last.includes(`${node}.0~r0*1`), "the oldest went first");
  // Resuming from that id replays nothing twice: the window still holds all 300 messages.
  const replay = replayFrom(
    history.entries(now),
    history.heads(now),
    parseCursor(last).get(TOPIC)!,
  );
  assert.deepEqual(replay, { messages: [], complete: true });
});

Deno.test("output held for an unjudged position is bounded like unread output", () => {
  const connection = new SseConnection({ maxBuffered: 4096, windowMs: 60_000 });
  let ended = "";
  connection.onEnd = (reason) => ended = reason;
  connection.startTopic(TOPIC, { since: 5, streams: new Map([["n~a", 3]]) }, true);
  connection.startTopic("status:other", { since: 7, streams: new Map() });
  for (let seq = 1; seq <= 100 && ended === ""; seq++) {
    connection.sendBroadcast(
      new Broadcast({
        topic: "status:other",
        event: "status",
        payload: { text: "x".repeat(100) },
        stream: "n~a",
        seq,
      }),
    );
  }
  assert.equal(ended, "slow_consumer");
});
