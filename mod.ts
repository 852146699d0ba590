/**
 * Switchboard: Phoenix-style channels (WebSocket, SSE, long-poll, HTTP API, presence) as a Hono
 * app, runtime-neutral. This is the package entry (`@switchboard/switchboard`); the runtime
 * adapters are subpath exports: `@switchboard/switchboard/deno` (`denoRuntime`) and
 * `@switchboard/switchboard/cloudflare` (`cloudflareRuntime`); channel tests import
 * `@switchboard/switchboard/testing`, browsers and Deno clients `@switchboard/switchboard/client`.
 *
 * @example Embedding Switchboard in your own Hono app on Deno
 * ```ts
 * import { Hono } from "hono";
 * import { z } from "zod";
 * import { createApp, createSwitchboard, defineChannel, event } from "@switchboard/switchboard";
 * import { denoRuntime } from "@switchboard/switchboard/deno";
 *
 * const room = defineChannel({
 *   topic: "room:*",
 *   events: {
 *     shout: event(z.object({ body: z.string() }), (ctx, msg) => ctx.broadcast("shout", msg)),
 *   },
 * });
 * const switchboard = createSwitchboard({ channels: [room] });
 * const app = new Hono();
 * app.get("/", (c) => c.text("my app"));
 * app.route("/rt", createApp(switchboard, { upgrade: denoRuntime.upgrade }));
 * // Deno.serve(app.fetch);
 * ```
 * @module
 */
export * from "./lib/mod.ts";
export { type AppOptions, createApp } from "./routes/app.ts";
