/** The presence tracker's Phoenix semantics, driven through a hub and its broadcasts. */
import assert from "node:assert/strict";
import { MemoryBroker } from "../../lib/cluster/broker.ts";
import type { Broadcast } from "../../lib/core/broadcast.ts";
import { Hub } from "../../lib/core/hub.ts";
import { PresenceTracker } from "../../lib/core/presence.ts";

function setup() {
  const hub = new Hub({ broker: new MemoryBroker(), nodeId: "n1" });
  const diffs: Record<string, Record<string, { metas: Record<string, unknown>[] }>>[] = [];
  hub.subscribe("record:1", {
    id: "observer",
    deliver: (b: Broadcast) => {
      if (b.event === "presence_diff") diffs.push(b.payload as never);
    },
  });
  // A long window: the test flushes by hand, so batching is deterministic.
  const presence = new PresenceTracker(hub, { batchMs: 60_000 });
  return { hub, diffs, presence };
}

Deno.test("track gives each meta a unique phx_ref; several owners of one key keep several metas", () => {
  const { presence } = setup();
  const a = presence.track("record:1", "c1", "ann", { name: "Ann" });
  const b = presence.track("record:1", "c2", "ann", { name: "Ann" });
  assert.notEqual(a, b);
  const state = presence.list("record:1");
  assert.deepEqual(state.ann.metas.map((m) => m.phx_ref), [a, b]);
  assert.throws(() => presence.track("record:1", "c1", "ann", {}), /already tracked/);
  presence.close();
});

Deno.test("changes within one window go out as one diff with both keys present", () => {
  const { presence, diffs } = setup();
  presence.track("record:1", "c1", "ann", { name: "Ann" });
  presence.track("record:1", "c2", "bob", { name: "Bob" });
  assert.equal(diffs.length, 0, "nothing before the flush");
  presence.flush();
  assert.equal(diffs.length, 1);
  assert.deepEqual(Object.keys(diffs[0].joins).sort(), ["ann", "bob"]);
  assert.deepEqual(diffs[0].leaves, {});
  presence.untrack("record:1", "c2", "bob");
  presence.flush();
  assert.deepEqual(diffs[1].joins, {});
  assert.deepEqual(Object.keys(diffs[1].leaves), ["bob"]);
  presence.close();
});

Deno.test("update is a join of the new meta (phx_ref_prev = old) and a leave of the old", () => {
  const { presence, diffs } = setup();
  const first = presence.track("record:1", "c1", "ann", { name: "Ann", state: "viewing" });
  presence.flush();
  const meta = presence.get("record:1", "c1", "ann")!;
  const second = presence.update("record:1", "c1", "ann", { ...meta, state: "editing" });
  presence.flush();
  const diff = diffs[1];
  assert.equal(diff.joins.ann.metas[0].phx_ref, second);
  assert.equal(diff.joins.ann.metas[0].phx_ref_prev, first);
  assert.equal(diff.joins.ann.metas[0].state, "editing");
  assert.equal(diff.leaves.ann.metas[0].phx_ref, first);
  assert.deepEqual(presence.list("record:1").ann.metas.length, 1);
  assert.throws(() => presence.update("record:1", "zz", "ann", {}), /not tracked/);
  presence.close();
});

Deno.test("the last meta leaving removes the key; untracking twice is harmless", () => {
  const { presence } = setup();
  presence.track("record:1", "c1", "ann", {});
  presence.track("record:1", "c2", "ann", {});
  presence.untrack("record:1", "c1", "ann");
  assert.equal(presence.list("record:1").ann.metas.length, 1);
  presence.untrack("record:1", "c2", "ann");
  presence.untrack("record:1", "c2", "ann");
  assert.deepEqual(presence.list("record:1"), {});
  presence.close();
});
