/**
 * Crowd presence in one node (lib/core/crowd.ts), with a small threshold: the visible set, the
 * always-visible mark, the count, hysteresis, and pages that hold every member present
 * throughout exactly once while others join and leave between pages; the buckets a crowd's
 * state crosses the bus in.
 */
import assert from "node:assert/strict";
import { defineChannel } from "../../lib/core/channel.ts";
import {
  bucketOf,
  BucketSender,
  bucketTopic,
  CROWD_BUCKETS,
  parseBucketTopic,
} from "../../lib/core/crowd_buckets.ts";
import { OCCUPANCY_INTERVAL_MS } from "../../lib/core/crowd.ts";
import { realtimeChannel } from "../../lib/mod.ts";
import { channelTest, type TestClient } from "../../lib/testing.ts";

const crowdChannel = defineChannel({
  topic: "crowd:*",
  presence: true,
  crowdThreshold: 10,
  crowdVisible: 3,
  crowdAlwaysVisible: (meta) => meta.editor === true,
  join(ctx, params) {
    ctx.track(ctx.userId, { editor: params.editor === true });
  },
});

const env = { PRESENCE_LEAVE_GRACE_MS: "0" };

async function joinAll(t: ReturnType<typeof channelTest>, keys: string[], topic: string) {
  const clients = new Map<string, TestClient>();
  for (const key of keys) {
    const client = t.connect({ user_id: key });
    assert.equal((await client.join(topic, { editor: key === "editor" })).status, "ok");
    t.flushPresence();
    clients.set(key, client);
  }
  return clients;
}

const keysOf = (state: object) => Object.keys(state).sort();

Deno.test("above the threshold a joiner sees the visible set and itself, and the count", async () => {
  await using t = channelTest({ channels: [crowdChannel], env });
  const names = Array.from({ length: 11 }, (_, i) => `m${String(i).padStart(2, "0")}`);
  const clients = await joinAll(t, names, "crowd:a");
  // The 11th made a crowd: everyone's list becomes the first three present.
  const first = clients.get("m00")!;
  const states = first.events("crowd:a", "presence_state");
  assert.deepEqual(keysOf(states.at(-1)!), ["m00", "m01", "m02"]);
  // Each client's list keeps its own key (m10 is not visible).
  const m10 = clients.get("m10")!.events("crowd:a", "presence_state").at(-1)!;
  assert.deepEqual(keysOf(m10), ["m00", "m01", "m02", "m10"]);
  // The count goes out once a second: on the test's clock.
  t.clock.advance(OCCUPANCY_INTERVAL_MS);
  assert.deepEqual(await first.nextEvent("crowd:a", "occupancy"), { subscribers: 11, users: 11 });

  const late = t.connect({ user_id: "late" });
  await late.join("crowd:a", {});
  assert.deepEqual(keysOf(await late.nextEvent("crowd:a", "presence_state")), [
    "late",
    "m00",
    "m01",
    "m02",
  ]);
  // The joiner is told the count at once (as of the last change).
  assert.ok(((await late.nextEvent("crowd:a", "occupancy")).users as number) >= 11);
  const diffsBefore = first.events("crowd:a", "presence_diff").length;
  t.flushPresence();
  assert.equal(first.events("crowd:a", "presence_diff").length, diffsBefore, "no diff for late");

  // An editor is always visible: her join is a diff to everyone.
  const editor = t.connect({ user_id: "editor" });
  await editor.join("crowd:a", { editor: true });
  t.flushPresence();
  const diff = first.events("crowd:a", "presence_diff").at(-1)!;
  assert.deepEqual(keysOf(diff.joins as object), ["editor"]);

  // A visible member leaves: the next one present takes the slot, in the same diff.
  clients.get("m01")!.disconnect();
  t.flushPresence();
  const swap = first.events("crowd:a", "presence_diff").at(-1)!;
  assert.deepEqual(keysOf(swap.leaves as object), ["m01"]);
  assert.deepEqual(keysOf(swap.joins as object), ["m03"]);
});

Deno.test("a crowd's count goes out at most once a second, however many change it", async () => {
  await using t = channelTest({ channels: [crowdChannel], env });
  const clients = await joinAll(t, Array.from({ length: 11 }, (_, i) => `c${i}`), "crowd:rate");
  const watcher = clients.get("c0")!;
  const counts = () => watcher.events("crowd:rate", "occupancy");
  t.clock.advance(OCCUPANCY_INTERVAL_MS);
  assert.deepEqual(counts().at(-1), { subscribers: 11, users: 11 });
  // A second later a join is counted at once: the last count is a second old.
  await t.connect({ user_id: "c11" }).join("crowd:rate", {});
  t.flushPresence();
  t.clock.advance(0);
  assert.deepEqual(counts().at(-1), { subscribers: 12, users: 12 });
  const told = counts().length;
  // Four joins and a leave right after it: nothing until a second has passed since.
  for (let i = 12; i < 16; i++) await t.connect({ user_id: `c${i}` }).join("crowd:rate", {});
  clients.get("c1")!.disconnect();
  t.flushPresence();
  t.clock.advance(OCCUPANCY_INTERVAL_MS - 1);
  assert.equal(counts().length, told, "no count within the second");
  // Then one count, the last one.
  t.clock.advance(1);
  assert.equal(counts().length, told + 1);
  assert.deepEqual(counts().at(-1), { subscribers: 15, users: 15 });
});

Deno.test("a crowd is a room again below 80% of the threshold, with the full list", async () => {
  await using t = channelTest({ channels: [crowdChannel], env });
  const names = Array.from({ length: 11 }, (_, i) => `k${i}`);
  const clients = await joinAll(t, names, "crowd:b");
  const watcher = clients.get("k0")!;
  const crowdStates = watcher.events("crowd:b", "presence_state").length;
  const told = (users: number) => () =>
    watcher.events("crowd:b", "occupancy").some((p) => p.users === users);
  // 8 (of a threshold of 10) is still a crowd: no flapping around the threshold.
  for (const key of ["k10", "k9", "k8"]) {
    clients.get(key)!.disconnect();
    t.flushPresence();
  }
  // The count (and whether the crowd is over) is decided once a second, on the test's clock.
  t.clock.advance(OCCUPANCY_INTERVAL_MS);
  assert.ok(told(8)(), "the count of 8");
  assert.equal(watcher.events("crowd:b", "presence_state").length, crowdStates);
  // 7 is below 80%: a room again, with the full list.
  clients.get("k7")!.disconnect();
  t.flushPresence();
  t.clock.advance(OCCUPANCY_INTERVAL_MS);
  assert.ok(
    watcher.events("crowd:b", "presence_state").length > crowdStates,
    "the full presence_state",
  );
  const full = watcher.events("crowd:b", "presence_state").at(-1)!;
  assert.deepEqual(keysOf(full), ["k0", "k1", "k2", "k3", "k4", "k5", "k6"]);
  // A room again: every join is a diff to everyone.
  await t.connect({ user_id: "k11" }).join("crowd:b", {});
  t.flushPresence();
  assert.deepEqual(keysOf(watcher.events("crowd:b", "presence_diff").at(-1)!.joins as object), [
    "k11",
  ]);
});

Deno.test("pages hold every member present throughout exactly once, despite churn", async () => {
  await using t = channelTest({ channels: [crowdChannel], env });
  const names = Array.from({ length: 40 }, (_, i) => `p${String(i).padStart(2, "0")}`);
  const clients = await joinAll(t, names, "crowd:c");
  const reader = clients.get("p00")!;
  const seen: string[] = [];
  const left = new Set<string>();
  let cursor: string | null = null;
  for (let page = 0; page < 50; page++) {
    const reply = await reader.push("crowd:c", "presence_page", { cursor, limit: 4 });
    assert.equal(reply.status, "ok");
    const { members, next } = reply.response as { members: { key: string }[]; next: string };
    seen.push(...members.map((m) => m.key));
    // Between pages: one already read leaves, one not read yet leaves, two new ones join
    // (one before the cursor, one after).
    for (const key of [names[page], names[39 - page]]) {
      if (key === "p00" || left.has(key)) continue;
      clients.get(key)!.disconnect();
      left.add(key);
    }
    await joinAll(t, [`a${page}`, `q${page}`], "crowd:c");
    if (next === null) break;
    cursor = next;
  }
  assert.equal(new Set(seen).size, seen.length, "no member twice");
  const throughout = names.filter((k) => !left.has(k));
  assert.deepEqual(throughout.filter((k) => !seen.includes(k)), []);
  assert.deepEqual(seen, [...seen].sort(), "in key order");
});

Deno.test("a crowd's state crosses the bus in buckets, only the ones that changed", () => {
  const sender = new BucketSender();
  const meta = (ref: string) => ({ metas: [{ phx_ref: ref }] });
  const state: Record<string, { metas: { phx_ref: string }[] }> = {};
  for (let i = 0; i < 500; i++) state[`u${i}`] = meta(`r${i}`);
  const first = sender.changed("record:1", state);
  // The whole state is emptied on the other nodes, and every bucket goes out once.
  assert.equal(first[0][0], "record:1");
  assert.deepEqual(Object.keys(first[0][1]), []);
  assert.equal(first.length, 1 + CROWD_BUCKETS);
  assert.equal(first.slice(1).reduce((n, [, s]) => n + Object.keys(s).length, 0), 500);
  assert.deepEqual(sender.changed("record:1", state), [], "nothing changed, nothing sent");
  // One join, one update: their buckets only.
  state.newcomer = meta("n1");
  state.u7 = meta("r7b");
  const names = sender.changed("record:1", state).map(([name]) => name).sort();
  const expected = [
    ...new Set(["newcomer", "u7"].map((k) => bucketTopic("record:1", bucketOf(k)))),
  ];
  assert.deepEqual(names, expected.sort());
  const bucket = parseBucketTopic(names[0]);
  assert.equal(bucket?.topic, "record:1");
  // A room again: every bucket sent is deleted.
  const cleared = sender.clear("record:1");
  assert.equal(cleared.length, CROWD_BUCKETS);
  assert.ok(cleared.every(([, s]) => Object.keys(s).length === 0));
  assert.deepEqual(sender.clear("record:1"), []);
});

Deno.test("realtime: a crowd's states and counts reach only clients that enabled presence", async () => {
  await using t = channelTest({ channels: [realtimeChannel], env });
  const join = (enabled: boolean, key?: string) => ({ config: { presence: { enabled, key } } });
  const quiet = t.connect({ user_id: "quiet" });
  await quiet.join("realtime:crowd", join(false));
  const track = { type: "presence", event: "track", payload: { status: "on" } };
  const members: TestClient[] = [];
  for (let i = 0; i < 151; i++) {
    const member = t.connect({ user_id: `r${i}` });
    await member.join("realtime:crowd", join(true, `k${i}`));
    assert.equal((await member.push("realtime:crowd", "presence", track)).status, "ok");
    members.push(member);
  }
  t.flushPresence();
  // The 151st key made a crowd: the members are told the count (once a second, on the test's
  // clock), the quiet client nothing.
  t.clock.advance(OCCUPANCY_INTERVAL_MS);
  assert.deepEqual(await members[0].nextEvent("realtime:crowd", "occupancy"), {
    subscribers: 151,
    users: 151,
  });
  for (const event of ["presence_state", "presence_diff", "occupancy"]) {
    assert.deepEqual(quiet.events("realtime:crowd", event), [], event);
  }
});
