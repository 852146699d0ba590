/**
 * A server entry with a definition mistake, as `deno run` (no type check) would start it:
 * `joinParams` is not a zod schema. It must stop at start-up with an error naming the field,
 * never serve joins that time out. Run by `definition_errors_test.ts`.
 * @module
 */
import { createApp, createSwitchboard, defineChannel } from "@switchboard/switchboard";
import { denoRuntime } from "@switchboard/switchboard/deno";

const chat = defineChannel({
  topic: "chat:*",
  // @ts-expect-error: the mistake under test (a plain object, not a zod schema)
  joinParams: { nick: "string" },
  join: () => ({}),
});
const switchboard = createSwitchboard({ channels: [chat] });
Deno.serve(
  { port: 0, hostname: "127.0.0.1" },
  createApp(switchboard, { upgrade: denoRuntime.upgrade }).fetch,
);
