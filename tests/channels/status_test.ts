/** The status channel, tested in-process with lib/testing.ts (no network). */
import assert from "node:assert/strict";
import { statusChannel } from "../../channels/status.ts";
import { channelTest, FakeClock } from "../../lib/testing.ts";

Deno.test("status: late joiners get the last status; pushes are refused, the channel stays", async () => {
  const clock = new FakeClock(Date.UTC(2030, 0, 1, 12));
  await using t = channelTest({ channels: [statusChannel], clock });
  const early = t.connect();
  assert.deepEqual(await early.join("status:acme"), {
    status: "ok",
    response: { status: null, updated_at: null },
  });
  t.publish("status:acme", "status", { state: "degraded", message: "Slow" });
  assert.deepEqual(await early.nextEvent("status:acme", "status"), {
    state: "degraded",
    message: "Slow",
  });
  // Under the heartbeat timeout (60 s): past it, the node's sweep closes a silent connection.
  clock.advance(30_000);
  const late = await t.connect().join("status:acme");
  assert.deepEqual(late.response, {
    status: { state: "degraded", message: "Slow" },
    updated_at: "2030-01-01T12:00:00.000Z", // the publish's time, not the join's
  });
  assert.deepEqual(await early.push("status:acme", "status", { state: "outage" }), {
    status: "error",
    response: { reason: "read_only" },
  });
  t.publish("status:acme", "status", { state: "operational" });
  assert.deepEqual(await early.nextEvent("status:acme", "status"), { state: "operational" });
});
