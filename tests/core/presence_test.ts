/** The presence tracker's Phoenix semantics, driven through a hub and its broadcasts. */
import assert from "node:assert/strict";
import { MemoryBroker } from "../../lib/core/broker_memory.ts";
import type { Broadcast } from "../../lib/core/broadcast.ts";
import { Hub } from "../../lib/core/hub.ts";
import { PresenceTracker } from "../../lib/core/presence.ts";
import fc from "fast-check";

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
  assert.deepEqual(Object.keys(diffs[0].leaves), []);
  presence.untrack("record:1", "c2", "bob");
  presence.flush();
  assert.deepEqual(Object.keys(diffs[1].joins), []);
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
  assert.deepEqual(Object.keys(presence.list("record:1")), []);
  presence.close();
});

/** Keys a user controls, with every name `Object.prototype` has (and `__proto__`) in the mix. */
const _keyArb = fc.oneof(
  fc.constantFrom(
    "__proto__",
    "constructor",
    "toString",
    "hasOwnProperty",
    "valueOf",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "toLocaleString",
    "__defineGetter__",
    "__lookupSetter__",
  ),
  fc.string({ maxLength: 6 }),
);

const _opArb = fc.record({
  kind: fc.constantFrom("track", "update", "untrack", "flush"),
  owner: fc.constantFrom("c1", "c2", "c3"),
  key: _keyArb,
});

Deno.test("fuzz: any key (prototype names too) tracks, updates, diffs and leaves like a model", () => {
  fc.assert(
    fc.property(fc.array(_opArb, { maxLength: 40 }), (ops) => {
      const { presence, diffs } = setup();
      /** The model: key → owner → phx_ref, in plain Maps. */
      const model = new Map<string, Map<string, string>>();
      /** What a client sees: the diffs applied to a Map, as JSON carried them. */
      const seen = new Map<string, Set<string>>();
      const applyDiffs = () => {
        for (const diff of diffs.splice(0)) {
          const wire = JSON.parse(JSON.stringify(diff));
          for (const [key, { metas }] of Object.entries(wire.joins as object)) {
            for (const m of metas) {
              (seen.get(key) ?? seen.set(key, new Set()).get(key)!).add(m.phx_ref);
            }
          }
          for (const [key, { metas }] of Object.entries(wire.leaves as object)) {
            for (const m of metas) seen.get(key)?.delete(m.phx_ref);
            if (seen.get(key)?.size === 0) seen.delete(key);
          }
        }
      };
      for (const { kind, owner, key } of ops) {
        const owners = model.get(key);
        if (kind === "track" && !owners?.has(owner)) {
          const ref = presence.track("record:1", owner, key, { name: key });
          (owners ?? model.set(key, new Map()).get(key)!).set(owner, ref);
        } else if (kind === "update" && owners?.has(owner)) {
          owners.set(owner, presence.update("record:1", owner, key, { name: key, state: "x" }));
        } else if (kind === "untrack") {
          presence.untrack("record:1", owner, key);
          owners?.delete(owner);
          if (owners?.size === 0) model.delete(key);
        } else if (kind === "flush") {
          presence.flush();
          applyDiffs();
        }
      }
      presence.flush();
      applyDiffs();
      const expected = [...model].map(([k, o]) => [k, [...o.values()].sort()]).sort();
      const listed = Object.entries(JSON.parse(JSON.stringify(presence.list("record:1"))))
        .map((
          [k, p],
        ) => [k, (p as { metas: { phx_ref: string }[] }).metas.map((m) => m.phx_ref).sort()])
        .sort();
      assert.deepEqual(listed, expected, "list() holds every tracked key, nothing else");
      const fromDiffs = [...seen].map(([k, refs]) => [k, [...refs].sort()]).sort();
      assert.deepEqual(fromDiffs, expected, "the diffs a client applies end at the same state");
      // States keyed by user strings have no prototype: `state[key]` never finds a member.
      assert.equal(Object.getPrototypeOf(presence.list("record:1")), null);

      assert.deepEqual(
        JSON.parse(presence.stateJson("record:1")),
        JSON.parse(JSON.stringify(presence.list("record:1"))),
      );
      presence.close();
    }),
    { numRuns: 300 },
  );
});
