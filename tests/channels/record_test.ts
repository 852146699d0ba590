/** The record channel, tested in-process with lib/testing.ts (no network). */
import assert from "node:assert/strict";
import { recordChannel } from "../../channels/record.ts";
import { channelTest } from "../../lib/testing.ts";

Deno.test("record: join tracks the user, patches reach the others but not the sender", async () => {
  await using t = channelTest({ channels: [recordChannel] });
  const ann = t.connect({ user_id: "ann" });
  const bob = t.connect({ user_id: "bob" });
  assert.deepEqual(await ann.join("record:1", { name: "Ann" }), { status: "ok", response: {} });
  await bob.join("record:1", { name: "Bob" });
  // The state is encoded once per batch window (PRESENCE_BATCH_MS, 20 ms); Bob's own join
  // follows in that window's diff. The test's clock moves the window along.
  t.clock.advance(20);
  assert.ok("ann" in await bob.nextEvent("record:1", "presence_state"));
  const diff = await bob.nextEvent("record:1", "presence_diff");
  assert.deepEqual(Object.keys(diff.joins as object).sort(), ["ann", "bob"]);
  assert.deepEqual(await ann.push("record:1", "patch", { text: "hi" }), {
    status: "ok",
    response: {},
  });
  assert.deepEqual(await bob.nextEvent("record:1", "patch"), { text: "hi" });
  assert.deepEqual(ann.events("record:1", "patch"), []);
});

Deno.test("record: state updates the meta in one diff; leaving removes the user", async () => {
  // The channel's own leave, not the tracker's leave grace (tests/core/presence_grace_test.ts):
  // without a grace the last meta's leave is immediate.
  await using t = channelTest({ channels: [recordChannel], env: { PRESENCE_LEAVE_GRACE_MS: "0" } });
  const ann = t.connect({ user_id: "ann" });
  await ann.join("record:7", { name: "Ann" });
  t.flushPresence();
  assert.equal(t.presence("record:7").ann.metas[0].state, "viewing");
  assert.equal((await ann.push("record:7", "state", { state: "editing" })).status, "ok");
  t.flushPresence();
  const meta = t.presence("record:7").ann.metas[0];
  assert.equal(meta.state, "editing");
  assert.ok(meta.phx_ref_prev, "an update keeps the previous ref");
  const bad = await ann.push("record:7", "state", { state: "sleeping" });
  assert.equal(bad.status, "error");
  assert.equal(bad.response.reason, "invalid_payload");
  await ann.leave("record:7");
  assert.deepEqual(t.presence("record:7"), {});
});

Deno.test("record: join params are validated, naming the field", async () => {
  await using t = channelTest({ channels: [recordChannel] });
  const reply = await t.connect({ user_id: "ann" }).join("record:1", { name: "" });
  assert.equal(reply.status, "error");
  assert.equal(reply.response.reason, "invalid_params");
  assert.deepEqual((reply.response.errors as { field: string }[]).map((e) => e.field), ["name"]);
});
