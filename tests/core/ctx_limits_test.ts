/**
 * What channel code sends is bounded like what clients send (issue 21): `ctx.push`,
 * `ctx.broadcast` and `ctx.track` with a payload nested past MAX_PAYLOAD_DEPTH are refused with
 * `invalid_payload` (the pushing client's reply says so), nothing goes out, and the channel
 * keeps serving. At the limit itself everything goes through. A join refused for its params
 * takes nothing from the user's topic bound.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineChannel, event } from "../../lib/core/channel.ts";
import { channelTest } from "../../lib/testing.ts";

/** `{v: [[…[1]…]]}`: nested `depth` levels in all (the object is one). */
function nested(depth: number): Record<string, unknown> {
  let value: unknown = 1;
  for (let i = 1; i < depth; i++) value = [value];
  return { v: value };
}

const depth = z.object({ depth: z.number().int().min(1).max(100) });

const deep = defineChannel({
  topic: "deep:*",
  presence: true,
  events: {
    push: event(depth, (ctx, p) => {
      ctx.push("out", nested(p.depth));
      return {};
    }),
    broadcast: event(depth, (ctx, p) => {
      ctx.broadcast("out", nested(p.depth));
      return {};
    }),
    track: event(depth, (ctx, p) => {
      ctx.track(ctx.userId ?? "anon", nested(p.depth));
      return {};
    }),
  },
});

const MAX = 8;

Deno.test("ctx.push, ctx.broadcast and ctx.track past MAX_PAYLOAD_DEPTH: invalid_payload", async (t) => {
  await using node = channelTest({ channels: [deep], env: { MAX_PAYLOAD_DEPTH: String(MAX) } });
  const ann = node.connect({ user_id: "ann" });
  const bob = node.connect({ user_id: "bob" });
  assert.equal((await ann.join("deep:1", {})).status, "ok");
  assert.equal((await bob.join("deep:1", {})).status, "ok");

  for (const method of ["push", "broadcast", "track"] as const) {
    await t.step(`ctx.${method}: ${MAX} levels go, ${MAX + 1} are refused`, async () => {
      assert.deepEqual(await ann.push("deep:1", method, { depth: MAX }), {
        status: "ok",
        response: {},
      });
      const refused = await ann.push("deep:1", method, { depth: MAX + 1 });
      assert.equal(refused.status, "error");
      assert.equal(refused.response.reason, "invalid_payload");
      assert.match(String(refused.response.detail), new RegExp(`deeper than ${MAX} levels`));
    });
  }

  await t.step("nothing past the limit went out; the channel still serves", () => {
    node.flushPresence();
    // Ann got her own push once, Bob the broadcast once: the refused ones never left.
    assert.equal(ann.events("deep:1", "out").length, 2);
    assert.equal(bob.events("deep:1", "out").length, 1);
    const diffs = bob.events("deep:1", "presence_diff");
    const metas = diffs.flatMap((d) =>
      Object.values(d.joins as Record<string, { metas: unknown[] }>)
    )
      .flatMap((p) => p.metas);
    assert.equal(metas.length, 1, "one tracked meta: the one at the limit");
  });
});

Deno.test("a join refused for its params does not count against the user's topics", async () => {
  const room = defineChannel({ topic: "room:*", joinParams: z.object({ nick: z.string() }) });
  await using node = channelTest({ channels: [room], env: { MAX_TOPICS_PER_USER: "2" } });
  const ann = node.connect({ user_id: "ann" });
  for (let i = 0; i < 3; i++) {
    const refused = await ann.join(`room:${i}`, { nick: 7 });
    assert.equal(refused.status, "error");
    assert.equal(refused.response.reason, "invalid_params");
  }
  // Had the refused joins taken a topic each, the second of these would be too many.
  assert.equal((await ann.join("room:a", { nick: "Ann" })).status, "ok");
  assert.equal((await ann.join("room:b", { nick: "Ann" })).status, "ok");
  const third = await ann.join("room:c", { nick: "Ann" });
  assert.equal(third.response.reason, "too_many_topics_for_user");
});
