/**
 * The built-in `realtime:*` channel (Supabase Realtime's broadcast and presence), tested
 * in-process with lib/testing.ts; the real `@supabase/realtime-js` drives it in
 * tests/e2e/supabase_test.ts. Also the test helpers' binary pushes and replies.
 */
import assert from "node:assert/strict";
import { binaryEvent, defineChannel, realtimeChannel } from "../../lib/mod.ts";
import { channelTest } from "../../lib/testing.ts";

const join = (config: Record<string, unknown> = {}) => ({ config });

Deno.test("realtime: self and ack decide who gets a broadcast and whether it is replied", async () => {
  await using t = channelTest({ channels: [realtimeChannel] });
  const ann = t.connect({ user_id: "ann" });
  const bob = t.connect({ user_id: "bob" });
  assert.deepEqual(await ann.join("realtime:r", join({ broadcast: { ack: true } })), {
    status: "ok",
    response: { postgres_changes: [] },
  });
  await bob.join("realtime:r", join({ broadcast: { self: true } }));
  const message = { type: "broadcast", event: "cursor", payload: { x: 1 } };
  assert.deepEqual(await ann.push("realtime:r", "broadcast", message), {
    status: "ok",
    response: {},
  });
  assert.deepEqual(await bob.nextEvent("realtime:r", "broadcast"), message);
  assert.equal(ann.events("realtime:r", "broadcast").length, 0, "self: false skips the sender");
  // Without ack there is no reply; with self the sender gets its own broadcast.
  bob.send("realtime:r", "broadcast", { ...message, event: "echo" });
  assert.deepEqual(await bob.nextEvent("realtime:r", "broadcast"), { ...message, event: "echo" });
  assert.equal(bob.frames.filter((f) => f.event === "phx_reply").length, 1, "only the join reply");
  assert.deepEqual(await ann.nextEvent("realtime:r", "broadcast"), { ...message, event: "echo" });
});

Deno.test("realtime: presence by key, only for clients that enabled it", async () => {
  await using t = channelTest({ channels: [realtimeChannel] });
  const watcher = t.connect({ user_id: "w" });
  const tracker = t.connect({ user_id: "t" });
  await watcher.join("realtime:p", join({ presence: { enabled: true } }));
  await tracker.join("realtime:p", join({ presence: { key: "k1" } }));
  assert.deepEqual(await watcher.nextEvent("realtime:p", "presence_state"), {});
  const track = { type: "presence", event: "track", payload: { status: "on" } };
  assert.equal((await tracker.push("realtime:p", "presence", track)).status, "ok");
  t.flushPresence();
  const diff = await watcher.nextEvent("realtime:p", "presence_diff") as {
    joins: Record<string, { metas: { status: string }[] }>;
  };
  assert.deepEqual(Object.keys(diff.joins), ["k1"]);
  assert.equal(diff.joins.k1.metas[0].status, "on");
  assert.equal(tracker.events("realtime:p", "presence_state").length, 0);
  assert.equal(tracker.events("realtime:p", "presence_diff").length, 0);
  const refused = await tracker.push("realtime:p", "presence", { type: "presence", event: "x" });
  assert.equal(refused.status, "error");
  assert.equal(refused.response.reason, "invalid_payload");
});

Deno.test("realtime: a join asking for postgres_changes is refused", async () => {
  await using t = channelTest({ channels: [realtimeChannel] });
  const reply = await t.connect().join("realtime:pg", join({ postgres_changes: [{ event: "*" }] }));
  assert.equal(reply.status, "error");
  assert.match(String(reply.response.reason), /postgres_changes are not served/);
});

Deno.test("test helpers: binary pushes, binary replies, binary broadcasts", async () => {
  const echo = defineChannel({
    topic: "echo:*",
    events: {
      bytes: binaryEvent((ctx, bytes) => {
        ctx.broadcastFrom("bytes", bytes);
        return bytes.slice().reverse();
      }),
    },
  });
  await using t = channelTest({ channels: [echo] });
  const ann = t.connect();
  const bob = t.connect();
  await ann.join("echo:1");
  await bob.join("echo:1");
  const reply = await ann.push("echo:1", "bytes", new Uint8Array([1, 2, 3]));
  assert.equal(reply.status, "ok");
  assert.deepEqual([...reply.bytes!], [3, 2, 1]);
  await bob.nextEvent("echo:1", "bytes");
  assert.deepEqual([...bob.frames.at(-1)!.binary!], [1, 2, 3]);
  const lp = t.connect({}, { transport: "longpoll" });
  await lp.join("echo:1");
  const refused = await lp.push("echo:1", "bytes", new Uint8Array([1]));
  assert.deepEqual(refused.status, "error");
  assert.equal(refused.response.reason, "binary_unsupported");
});
