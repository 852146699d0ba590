import assert from "node:assert/strict";
import { z } from "zod";
import { defineChannel, event } from "@switchboard/switchboard";
import { channelTest } from "@switchboard/switchboard/testing";

const room = defineChannel({
  topic: "room:*",
  join: (ctx) => {
    ctx.track(ctx.userId, { online: true });
    return { welcome: ctx.subtopic };
  },
  events: {
    shout: event(
      z.object({ body: z.string().max(500) }),
      (ctx, msg) => ctx.broadcast("shout", msg),
    ),
  },
});

Deno.test("a shout reaches the room; a leave shows once the grace has passed", async () => {
  await using t = channelTest({ channels: [room] });
  const ann = t.connect({ user_id: "ann" });
  const bob = t.connect({ user_id: "bob" });
  assert.deepEqual(await ann.join("room:lobby"), { status: "ok", response: { welcome: "lobby" } });
  await bob.join("room:lobby");
  ann.send("room:lobby", "shout", { body: "hi" }); // no reply: the handler returns nothing
  assert.deepEqual(await bob.nextEvent("room:lobby", "shout"), { body: "hi" });

  bob.disconnect();
  assert.deepEqual(Object.keys(t.presence("room:lobby")).sort(), ["ann", "bob"]); // held 2 s
  t.clock.advance(2_000); // the test's clock: fires the leave grace, no real waiting
  assert.deepEqual(Object.keys(t.presence("room:lobby")), ["ann"]);
});
