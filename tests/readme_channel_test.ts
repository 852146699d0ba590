import assert from "node:assert/strict";
import { z } from "zod";
import { defineChannel, event } from "@switchboard/switchboard";
import { channelTest } from "@switchboard/switchboard/testing";

/** `room:<id>`: who is in the room; a shout reaches everyone in it. */
export const roomChannel = defineChannel({
  topic: "room:*",
  presence: true,
  joinParams: z.object({ name: z.string().min(1).max(80) }),
  join: (ctx, { name }) => ctx.track(ctx.userId, { name }),
  events: {
    shout: event(z.object({ text: z.string().max(500) }), (ctx, shout) => {
      ctx.broadcast("shout", shout);
      return {};
    }),
  },
  messages: { shout: z.object({ text: z.string() }) },
});

Deno.test("a shout reaches the room; a leave shows after the grace", async () => {
  await using t = channelTest({ channels: [roomChannel] });
  const ann = t.connect({ user_id: "ann" });
  const bob = t.connect({ user_id: "bob" });
  await ann.join("room:1", { name: "Ann" });
  await bob.join("room:1", { name: "Bob" });
  const reply = await bob.push("room:1", "shout", { text: "hi" });
  assert.deepEqual(reply, { status: "ok", response: {} });
  assert.deepEqual(await ann.nextEvent("room:1", "shout"), { text: "hi" });

  bob.disconnect();
  assert.ok("bob" in t.presence("room:1")); // held for the leave grace (2 s by default)
  t.clock.advance(2_000); // the fake clock fires what falls due
  assert.deepEqual(Object.keys(t.presence("room:1")), ["ann"]);
});
