/**
 * The presence leave grace: the leave of a key's last meta on a node is held, and a re-track of
 * the key within the grace goes out in the same diff as the new join (issue #16: a tab handing
 * the shared connection to another must not make its user leave and rejoin for observers).
 */
import assert from "node:assert/strict";
import { MemoryBroker } from "../../lib/core/broker_memory.ts";
import type { Broadcast } from "../../lib/core/broadcast.ts";
import { Hub } from "../../lib/core/hub.ts";
import { PresenceTracker } from "../../lib/core/presence.ts";
import type { PresenceState } from "../../lib/core/broker.ts";
import { defineChannel } from "../../lib/core/channel.ts";
import { channelTest } from "../../lib/testing.ts";
import { recordChannel } from "../../channels/record.ts";

type Diff = { joins: PresenceState; leaves: PresenceState };

/** A memory broker that keeps what the tracker replicates to the other nodes. */
class RecordingBroker extends MemoryBroker {
  readonly replicated: PresenceState[] = [];
  override replicatePresence(_topic: string, state: PresenceState): void {
    this.replicated.push(JSON.parse(JSON.stringify(state)));
  }
}

/** A tracker with a long batch window (the test flushes by hand) and the given grace. */
function setup(leaveGraceMs: number) {
  const broker = new RecordingBroker();
  const hub = new Hub({ broker, nodeId: "n1" });
  const diffs: Diff[] = [];
  const waiters: (() => void)[] = [];
  hub.subscribe("record:1", {
    id: "observer",
    deliver: (b: Broadcast) => {
      if (b.event !== "presence_diff") return;
      diffs.push(JSON.parse(JSON.stringify(b.payload)));
      for (const wake of waiters.splice(0)) wake();
    },
  });
  const presence = new PresenceTracker(hub, { batchMs: 60_000, leaveGraceMs });
  /** Resolves when a diff arrives (bounded: fails after 5 s). */
  const nextDiff = () =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no presence_diff within 5 s")), 5_000);
      waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  return { broker, diffs, presence, nextDiff };
}

const keys = (state: PresenceState) => Object.keys(state).sort();

Deno.test("a re-track within the grace sends the held leave in the same diff as the join", () => {
  const { presence, diffs } = setup(60_000);
  const first = presence.track("record:1", "tab-1", "ann", { name: "Ann" });
  presence.flush();
  presence.untrack("record:1", "tab-1", "ann");
  presence.flush();
  assert.equal(diffs.length, 1, "the leave is held: no diff goes out");
  assert.deepEqual(
    presence.list("record:1").ann.metas.map((m) => m.phx_ref),
    [first],
    "the lingering meta is still listed, as clients were told",
  );
  const second = presence.track("record:1", "tab-2", "ann", { name: "Ann" });
  presence.flush();
  assert.equal(diffs.length, 2);
  assert.deepEqual(diffs[1].joins.ann.metas.map((m) => m.phx_ref), [second]);
  assert.deepEqual(diffs[1].leaves.ann.metas.map((m) => m.phx_ref), [first]);
  assert.deepEqual(presence.list("record:1").ann.metas.map((m) => m.phx_ref), [second]);
  presence.close();
});

Deno.test("without a re-track the held leave goes out when the grace ends", async () => {
  const { presence, diffs, nextDiff } = setup(50);
  presence.track("record:1", "tab-1", "ann", { name: "Ann" });
  presence.track("record:1", "tab-9", "bob", { name: "Bob" });
  presence.flush();
  presence.untrack("record:1", "tab-1", "ann");
  const leave = nextDiff();
  presence.flush();
  assert.equal(diffs.length, 1, "nothing yet");
  // The grace ends and the leave joins the topic's pending diff, which the flush sends.
  await waitUntil(() => presence.list("record:1").ann === undefined);
  presence.flush();
  await leave;
  assert.deepEqual(keys(diffs[1].leaves), ["ann"]);
  assert.deepEqual(keys(diffs[1].joins), []);
  assert.deepEqual(keys(presence.list("record:1")), ["bob"]);
  presence.close();
});

Deno.test("a leave of a key that keeps other metas on the node is not held", () => {
  const { presence, diffs } = setup(60_000);
  const a = presence.track("record:1", "tab-1", "ann", {});
  const b = presence.track("record:1", "tab-2", "ann", {});
  presence.flush();
  presence.untrack("record:1", "tab-1", "ann");
  presence.flush();
  assert.deepEqual(diffs[1].leaves.ann.metas.map((m) => m.phx_ref), [a]);
  assert.deepEqual(presence.list("record:1").ann.metas.map((m) => m.phx_ref), [b]);
  presence.close();
});

Deno.test("an update is never held: one diff with the new meta joined and the old left", () => {
  const { presence, diffs } = setup(60_000);
  const first = presence.track("record:1", "tab-1", "ann", { state: "viewing" });
  presence.flush();
  const second = presence.update("record:1", "tab-1", "ann", { state: "editing" });
  presence.flush();
  assert.deepEqual(diffs[1].joins.ann.metas.map((m) => m.phx_ref), [second]);
  assert.deepEqual(diffs[1].leaves.ann.metas.map((m) => m.phx_ref), [first]);
  presence.close();
});

Deno.test("the replicated state keeps the lingering meta until its leave goes out", () => {
  const { presence, broker } = setup(60_000);
  presence.track("record:1", "tab-1", "ann", {});
  presence.track("record:1", "tab-9", "bob", {});
  presence.flush();
  presence.untrack("record:1", "tab-9", "bob");
  presence.untrack("record:1", "tab-1", "ann");
  presence.track("record:1", "tab-2", "ann", {});
  presence.flush();
  // Bob's and the first Ann's leaves are held; Ann's re-track released hers with the join.
  assert.deepEqual(keys(broker.replicated.at(-1)!), ["ann", "bob"]);
  assert.equal(broker.replicated.at(-1)!.ann.metas.length, 1);
  assert.deepEqual(presence.localTopics(), ["record:1"]);
  presence.close();
  assert.deepEqual(keys(broker.replicated.at(-1)!), ["ann"], "close sends held leaves at once");
});

Deno.test("close sends every held leave at once (the node is going, not its users' tabs)", () => {
  const { presence, diffs } = setup(60_000);
  presence.track("record:1", "tab-1", "ann", {});
  presence.flush();
  presence.untrack("record:1", "tab-1", "ann");
  presence.close();
  assert.deepEqual(keys(diffs.at(-1)!.leaves), ["ann"]);
  assert.deepEqual(presence.localTopics(), []);
});

Deno.test("through a channel: Ann's connection closes, a new one joins; Bob never sees her leave", async () => {
  await using t = channelTest({
    channels: [recordChannel],
    env: { PRESENCE_LEAVE_GRACE_MS: "200" },
  });
  const bob = t.connect({ user_id: "bob" });
  await bob.join("record:5", { name: "Bob" });
  const ann1 = t.connect({ user_id: "ann" });
  await ann1.join("record:5", { name: "Ann" });
  t.flushPresence();
  ann1.disconnect();
  // The new connection comes later than one batch window (a handover takes 50-300 ms).
  t.flushPresence();
  const ann2 = t.connect({ user_id: "ann" });
  await ann2.join("record:5", { name: "Ann" });
  t.flushPresence();
  const diffs = bob.events("record:5", "presence_diff") as Diff[];
  assert.ok(!_hasLeave(diffs, 0), "no diff told Bob that Ann left");
  const handover = diffs.find((d) => "ann" in d.leaves);
  assert.ok(handover, "the old meta's leave went out");
  assert.ok("ann" in handover.joins, "in the same diff as the new meta's join");
  // A real leave (no new connection) reaches Bob once the grace has passed.
  ann2.disconnect();
  const seen = diffs.length;
  t.clock.advance(199);
  t.flushPresence();
  assert.ok(!_hasLeave(bob.events("record:5", "presence_diff"), seen), "held during the grace");
  // The grace (200 ms) and the batch window (20 ms) on the test's clock: no real waiting.
  t.clock.advance(1 + 20);
  assert.ok(_hasLeave(bob.events("record:5", "presence_diff"), seen), "Ann left after the grace");
  assert.deepEqual(keys(t.presence("record:5")), ["bob"]);
});

function _hasLeave(diffs: unknown[], from: number): boolean {
  return (diffs as Diff[]).slice(from).some((d) => "ann" in d.leaves && !("ann" in d.joins));
}

/** Polls `done` until it holds (bounded: 200 tries, 10 ms apart). */
async function waitUntil(done: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(done(), "condition not reached within 2 s");
}

Deno.test("a channel's presenceLeaveGraceMs overrides PRESENCE_LEAVE_GRACE_MS", async (t) => {
  const roomChannel = (topic: string, presenceLeaveGraceMs: number) =>
    defineChannel({
      topic,
      presenceLeaveGraceMs,
      join(ctx) {
        ctx.track(ctx.userId, { name: ctx.userId });
      },
    });
  await using test = channelTest({
    channels: [roomChannel("live:*", 0), roomChannel("held:*", 60_000)],
    env: { PRESENCE_LEAVE_GRACE_MS: "2000" },
  });
  await t.step("0: the leave is immediate although the node's grace is 2 s", async () => {
    const ann = test.connect({ user_id: "ann" });
    await ann.join("live:1");
    test.flushPresence();
    await ann.leave("live:1");
    assert.deepEqual(keys(test.presence("live:1")), []);
  });
  await t.step("60000: the leave is held although the node's is 2 s", async () => {
    const ann = test.connect({ user_id: "ann" });
    await ann.join("held:1");
    test.flushPresence();
    await ann.leave("held:1");
    assert.deepEqual(keys(test.presence("held:1")), ["ann"], "still listed while held");
  });
  await t.step("defineChannel refuses a value out of range, naming it", () => {
    assert.throws(() => roomChannel("bad:*", -1), /presenceLeaveGraceMs -1 .*0-60000/);
  });
});
