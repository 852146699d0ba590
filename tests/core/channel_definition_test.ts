/**
 * Mistakes in a channel definition are refused when it is defined, with an error naming the
 * field and the fix (`defineChannel`, and `createSwitchboard` for the set). Each mistake below
 * is also a TypeScript error (`@ts-expect-error` fails the type check if it stops being one):
 * the run-time check is for code run without a type check (`deno run`, JavaScript).
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { createSwitchboard, defineChannel, event } from "@switchboard/switchboard";

function refusal(define: () => unknown): string {
  try {
    define();
  } catch (err) {
    assert.equal((err as Error).name, "ChannelDefinitionError");
    return (err as Error).message;
  }
  assert.fail("the definition was accepted");
}

Deno.test("a topic neither exact nor prefix:* is refused, naming the fix", () => {
  // @ts-expect-error: "chat:" is not a pattern
  assert.match(refusal(() => defineChannel({ topic: "chat:" })), /topic "chat:".*write "chat:\*"/);
  // @ts-expect-error: "chat*" lacks the ":"
  assert.match(refusal(() => defineChannel({ topic: "chat*" })), /topic "chat\*".*write "chat:\*"/);
  // @ts-expect-error: "*" has no prefix
  assert.match(refusal(() => defineChannel({ topic: "*" })), /topic "\*".*"prefix:\*"/);
  // @ts-expect-error: the "*" must be last
  assert.match(refusal(() => defineChannel({ topic: "chat:*:x" })), /write "chat:\*"/);
  assert.match(refusal(() => defineChannel({ topic: "phoenix" })), /reserved for heartbeats/);
  // Exact topics and prefix patterns are fine.
  assert.equal(defineChannel({ topic: "lobby" }).topic, "lobby");
  assert.equal(defineChannel({ topic: "room:*" }).topic, "room:*");
});

Deno.test("schemas that are not zod are refused, naming the field", () => {
  const notZod = { nick: "string" };
  assert.match(
    // @ts-expect-error: joinParams must be a zod schema
    refusal(() => defineChannel({ topic: "room:*", joinParams: notZod })),
    /channel "room:\*": joinParams must be a zod schema, not the object \{"nick":"string"\}: write e\.g\. z\.object/,
  );
  assert.match(
    refusal(() =>
      defineChannel({
        topic: "room:*",
        // @ts-expect-error: an event's schema must be zod
        events: { shout: { schema: notZod, handle: () => {} } },
      })
    ),
    /events\.shout\.schema must be a zod schema/,
  );
  assert.match(
    // @ts-expect-error: messages are zod schemas
    refusal(() => defineChannel({ topic: "room:*", messages: { shout: notZod } })),
    /messages\.shout must be a zod schema/,
  );
});

Deno.test("an unknown option is refused with the nearest known name", () => {
  const misspelt = () =>
    defineChannel({
      topic: "room:*",
      // @ts-expect-error: joinParam is misspelt
      joinParam: z.object({ nick: z.string() }),
    });
  assert.match(refusal(misspelt), /unknown option "joinParam": did you mean "joinParams"\?/);
  const unlike = () =>
    defineChannel({
      topic: "room:*",
      // @ts-expect-error: nothing near it
      zzzzzzzzzz: 1,
    });
  assert.match(refusal(unlike), /unknown option "zzzzzzzzzz": the options are topic, access, /);
});

Deno.test("callbacks that are not functions are refused", () => {
  const join = () =>
    defineChannel({
      topic: "room:*",
      // @ts-expect-error: join must be a function
      join: { ok: true },
    });
  assert.match(refusal(join), /channel "room:\*": join must be a function, not the object/);
  const bare = () =>
    defineChannel({
      topic: "room:*",
      // @ts-expect-error: an event is event(schema, handler), not a bare function
      events: { shout: () => {} },
    });
  assert.match(
    refusal(bare),
    /events\.shout is a bare function: wrap it as event\(schema, handler\)/,
  );
  const handleOut = () =>
    defineChannel({
      topic: "room:*",
      // @ts-expect-error: handleOut entries are functions
      handleOut: { shout: "drop" },
    });
  assert.match(refusal(handleOut), /handleOut\.shout must be a function/);
  const presence = () =>
    defineChannel({
      topic: "room:*",
      // @ts-expect-error: presence is a boolean or a function
      presence: "yes",
    });
  assert.match(refusal(presence), /presence must be true, false or a function/);
  const access = () =>
    defineChannel({
      topic: "room:*",
      // @ts-expect-error: access is "public" or "token"
      access: "open",
    });
  assert.match(refusal(access), /access: use "public" or "token"/);
});

Deno.test("createSwitchboard refuses two channels for one pattern, and channels not made with defineChannel", async () => {
  const shout = event(z.object({ body: z.string() }), () => ({}));
  const a = defineChannel({ topic: "room:*", events: { shout } });
  const b = defineChannel({ topic: "room:*" });
  assert.match(
    refusal(() => createSwitchboard({ channels: [a, b] })),
    /channels\[1\] and channels\[0\] both serve topic "room:\*": merge them/,
  );
  const raw = { topic: "chat*", join: () => ({}) };
  assert.match(refusal(() => createSwitchboard({ channels: [raw] })), /topic "chat\*"/);
  const fine = createSwitchboard({ channels: [a] });
  assert.equal(fine.hasChannel("room:1"), true);
  await fine.close();
});
