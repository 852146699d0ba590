/**
 * The channel test's fake clock drives every timer of the node: presence batches and leave
 * graces, and the sweep that closes silent connections. Nothing here waits on real time and
 * nothing sets an environment variable.
 */
import assert from "node:assert/strict";
import { defineChannel } from "@switchboard/switchboard";
import { channelTest, FakeClock } from "@switchboard/switchboard/testing";

const room = defineChannel({
  topic: "room:*",
  presence: true,
  join: (ctx) => void ctx.track(ctx.userId, { online: true }),
});

Deno.test("FakeClock fires what falls due, in time order, each at its own time", () => {
  const clock = new FakeClock(1_000);
  const fired: string[] = [];
  clock.after(30, () => fired.push(`after30@${clock.now()}`));
  const stop = clock.every(20, () => fired.push(`every20@${clock.now()}`));
  const cancelled = clock.after(10, () => fired.push("cancelled"));
  cancelled();
  clock.advance(50);
  assert.deepEqual(fired, ["every20@1020", "after30@1030", "every20@1040"]);
  assert.equal(clock.now(), 1_050);
  stop();
  clock.advance(100);
  assert.equal(fired.length, 3);
  assert.equal(clock.pendingTimers, 0);
  assert.throws(() => clock.advance(-1), /forward/);
});

Deno.test("presence: the batch window and the leave grace run on the test's clock", async () => {
  await using t = channelTest({ channels: [room] });
  const ann = t.connect({ user_id: "ann" });
  const bob = t.connect({ user_id: "bob" });
  await ann.join("room:1");
  await bob.join("room:1");
  assert.equal(ann.events("room:1", "presence_diff").length, 0, "held for the batch window");
  t.clock.advance(20); // PRESENCE_BATCH_MS
  assert.equal(ann.events("room:1", "presence_diff").length, 1);

  bob.disconnect();
  t.clock.advance(1_999);
  assert.deepEqual(Object.keys(t.presence("room:1")).sort(), ["ann", "bob"], "within the grace");
  t.clock.advance(1 + 20); // the end of PRESENCE_LEAVE_GRACE_MS, then one batch window
  assert.deepEqual(Object.keys(t.presence("room:1")), ["ann"]);
  const diffs = ann.events("room:1", "presence_diff") as { leaves: Record<string, unknown> }[];
  assert.deepEqual(Object.keys(diffs.at(-1)!.leaves), ["bob"]);
});

Deno.test("the sweep: a connection silent past the heartbeat timeout is closed on the test's clock", async () => {
  await using t = channelTest({ channels: [room] });
  const ann = t.connect({ user_id: "ann" });
  await ann.join("room:1");
  t.clock.advance(59_000);
  assert.equal(ann.closedWith, undefined);
  t.clock.advance(6_000); // past HEARTBEAT_TIMEOUT_MS (60 s), at the next sweep
  assert.deepEqual(ann.closedWith, { code: 1001, reason: "idle timeout: no heartbeat" });
});

Deno.test("the sweep: a session whose token expired is closed with 4001 on the test's clock", async () => {
  await using t = channelTest({ channels: [room] });
  const exp = Math.floor(t.clock.now() / 1000) + 60;
  // An SSE session: never closed as idle, so only the expiry can end it.
  const ann = t.connect({}, { transport: "sse", claims: { sub: "ann", exp } });
  await ann.join("room:1");
  t.clock.advance(60_000 + 29_000); // exp, within TOKEN_LEEWAY_SECONDS (30 s)
  assert.equal(ann.closedWith, undefined);
  t.clock.advance(6_000); // past the leeway, at the next sweep
  assert.deepEqual(ann.closedWith, {
    code: 4001,
    reason: "token expired: reconnect with a fresh token",
  });
});
