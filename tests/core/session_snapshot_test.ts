/**
 * A session rebuilt from its snapshot on a fresh node (what a Cloudflare node object does
 * after hibernation), in process: the same joins and presences (same phx_refs), nothing sent
 * to the client, broadcasts delivered again; a topic whose channel is gone gets `phx_error`.
 */
import assert from "node:assert/strict";
import type { Broadcast } from "../../lib/core/broadcast.ts";
import type { Connection } from "../../lib/core/connection.ts";
import type { Message } from "../../lib/core/message.ts";
import { restoreSession, snapshotSession } from "../../lib/core/session_snapshot.ts";
import { channelTest } from "../../lib/testing.ts";
import { defineChannel } from "../../lib/mod.ts";
import { recordChannel } from "../../channels/record.ts";
import { statusChannel } from "../../channels/status.ts";

/** The woken node's side of the client's connection: what it is sent. */
class Recorder implements Connection {
  readonly transport = "websocket";
  readonly frames: { event: string; topic: string; payload: unknown }[] = [];
  sendMessage(msg: Message): void {
    const payload = msg.payloadJson === undefined ? msg.payload : JSON.parse(msg.payloadJson);
    this.frames.push({ event: msg.event, topic: msg.topic, payload });
  }
  sendBroadcast(b: Broadcast): void {
    this.frames.push({ event: b.event, topic: b.topic, payload: b.payload });
  }
  close(): void {}
}

Deno.test("a session snapshot rebuilds joins and presences on a fresh node, silently", async () => {
  await using before = channelTest({ channels: [statusChannel, recordChannel] });
  const ann = before.connect({ user_id: "ann", mode: "full" });
  assert.equal((await ann.join("record:1", { name: "Ann" })).status, "ok");
  assert.equal((await ann.join("status:acme")).status, "ok");
  before.flushPresence();
  const snapshot = JSON.parse(JSON.stringify(snapshotSession(ann.session)));
  assert.deepEqual(snapshot.params, { user_id: "ann", mode: "full" });
  assert.deepEqual(snapshot.topics.map((t: { topic: string }) => t.topic), [
    "record:1",
    "status:acme",
  ]);

  // The node after a wake: a new deploy no longer serves status:*.
  await using after = channelTest({ channels: [recordChannel] });
  const connection = new Recorder();
  const session = restoreSession(after.switchboard, { connection, snapshot });
  assert.deepEqual(session.topics, ["record:1"]);
  assert.equal(session.userId, "ann");
  assert.deepEqual(after.presence("record:1"), before.presence("record:1"), "same phx_refs");
  after.flushPresence();
  assert.deepEqual(connection.frames, [
    { event: "phx_error", topic: "status:acme", payload: { reason: "unmatched topic" } },
  ], "nothing but the gone channel's phx_error, no presence diff");
  after.publish("record:1", "patch", { line: 1 });
  assert.deepEqual(connection.frames.at(-1), {
    event: "patch",
    topic: "record:1",
    payload: { line: 1 },
  });
  // A snapshot the node cannot read is refused, not half restored.
  assert.throws(
    () => restoreSession(after.switchboard, { connection, snapshot: { ...snapshot, v: 2 } }),
    /session snapshot v2/,
  );
});

Deno.test("after a wake a crowd is a crowd again; each client gets the visible set, same refs", async () => {
  const room = defineChannel({
    topic: "room:*",
    presence: true,
    crowdThreshold: 2,
    crowdVisible: 1,
    join(ctx) {
      ctx.track(ctx.userId, { name: ctx.userId });
    },
  });
  await using before = channelTest({ channels: [room] });
  const users = ["ann", "bob", "cy"];
  const clients = users.map((user) => before.connect({ user_id: user }));
  for (const client of clients) assert.equal((await client.join("room:1")).status, "ok");
  before.flushPresence();
  assert.ok(before.switchboard.presence.isCrowd("room:1"));
  const refs = before.presence("room:1");
  const snapshots = clients.map((c) => JSON.parse(JSON.stringify(snapshotSession(c.session))));

  await using after = channelTest({ channels: [room] });
  const recorders = snapshots.map((snapshot) => {
    const connection = new Recorder();
    restoreSession(after.switchboard, { connection, snapshot });
    return connection;
  });
  assert.equal(after.switchboard.presence.isCrowd("room:1"), false, "not yet");
  after.switchboard.presence.resumeCrowds();
  assert.ok(after.switchboard.presence.isCrowd("room:1"));
  recorders.forEach((recorder, i) => {
    assert.deepEqual(recorder.frames.map((f) => f.event), ["presence_state"]);
    const state = recorder.frames[0].payload as Record<string, { metas: unknown[] }>;
    assert.ok(users[i] in state, "its own key");
    for (const [key, value] of Object.entries(state)) assert.deepEqual(value, refs[key]);
  });
});
