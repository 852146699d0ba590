/**
 * The BroadcastChannel broker between Switchboards of one isolate (the same channel joins the
 * workers of `deno serve --parallel`): broadcasts with broadcast-from, presence both ways, a
 * late joiner that gets everyone's presence, history on every side, and a goodbye.
 */
import assert from "node:assert/strict";
import { BroadcastChannelBroker } from "../../lib/cluster/broadcast_channel.ts";
import { Switchboard } from "../../lib/core/switchboard.ts";
import { loadConfig } from "../../lib/config.ts";
import type { Broadcast } from "../../lib/core/broadcast.ts";
import { waitFor } from "../support/wait.ts";
import { IsolateGroup, mergeIsolateMetrics } from "../../lib/cluster/isolates.ts";

function node(name: string, channel: string) {
  const config = { ...loadConfig({ LOG_LEVEL: "error" }), nodeId: name };
  const broker = new BroadcastChannelBroker({ nodeId: name, name: channel, pingMs: 200 });
  return new Switchboard({ config, channels: [], broker });
}

Deno.test("BroadcastChannel broker: workers of one process as one node", async (t) => {
  const channel = `test-${crypto.randomUUID()}`;
  const a = node("wa", channel);
  const b = node("wb", channel);
  let c: Switchboard | undefined;
  try {
    await waitFor(() => a.brokerState().nodes === 2 && b.brokerState().nodes === 2, "both");

    await t.step("broadcasts and broadcast-from reach the other worker, once", async () => {
      const got: Broadcast[] = [];
      b.hub.subscribe("t:1", { id: "sub-b", deliver: (x) => got.push(x) });
      a.hub.broadcast("t:1", "e", { n: 1 });
      a.hub.broadcast("t:1", "e", { n: 2 }, { exceptId: "sub-b" });
      await waitFor(() => got.length === 2, "two messages on b");
      // Instance ids are per worker: broadcast-from skips only the sender's own instance.
      assert.deepEqual(got.map((x) => x.payload.n), [1, 2]);
      assert.deepEqual(b.hub.last("t:1")?.payload, { n: 2 });
      const replay = await b.hub.replay("t:1", { since: 0, streams: new Map() });
      assert.deepEqual(replay.messages.map((x) => x.payload.n), [1, 2]);
      assert.equal(replay.complete, true);
    });

    await t.step("presence both ways, and a late worker gets everyone's", async () => {
      a.presence.track("room:1", "owner-a", "ann", { name: "Ann" });
      b.presence.track("room:1", "owner-b", "bob", { name: "Bob" });
      const keys = (s: Switchboard) => Object.keys(s.presenceOf("room:1")).sort().join();
      await waitFor(() => keys(a) === "ann,bob" && keys(b) === "ann,bob", "ann and bob on both");
      c = node("wc", channel);
      await waitFor(() => keys(c!) === "ann,bob", "the late worker sees both");
    });

    await t.step("a worker that stops says goodbye: its presences leave at once", async () => {
      await b.close();
      const keys = (s: Switchboard) => Object.keys(s.presenceOf("room:1")).sort().join();
      await waitFor(() => keys(a) === "ann" && keys(c!) === "ann", "bob gone", 1_000);
    });
  } finally {
    await Promise.all([a.close(), b.close(), c?.close()]);
  }
});

Deno.test("a worker group gathers every worker's answer; metrics merge with a worker label", async () => {
  const name = `group-${crypto.randomUUID()}`;
  const one = new IsolateGroup({
    name,
    self: "w1",
    answer: () => Promise.resolve(`# HELP m_total M.\n# TYPE m_total counter\nm_total 1\n`),
  });
  const two = new IsolateGroup({
    name,
    self: "w2",
    answer: () => Promise.resolve(`# HELP m_total M.\n# TYPE m_total counter\nm_total{k="v"} 2\n`),
  });
  await waitFor(() => one.peers.size === 1 && two.peers.size === 1, "they know each other");
  const texts = await one.gather("/metrics");
  assert.deepEqual([...texts.keys()], ["w1", "w2"]);
  assert.equal(
    mergeIsolateMetrics(texts),
    '# HELP m_total M.\n# TYPE m_total counter\nm_total{worker="w1"} 1\n' +
      'm_total{worker="w2",k="v"} 2\n',
  );
  const drained = one.drainedAll();
  await two.drainedAll();
  await drained;
  one.close();
  two.close();
});
