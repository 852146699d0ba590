/**
 * The whole HTTP app: every transport and API mounted on one Hono instance.
 *
 * @example
 * ```ts
 * const app = createApp(new Switchboard({ config, channels }));
 * Deno.serve(app.fetch);
 * ```
 * @module
 */
import { Hono } from "hono";
import type { Switchboard } from "../lib/core/switchboard.ts";
import { apiRoutes } from "./api.ts";
import { longpollRoutes } from "./longpoll.ts";
import { opsRoutes } from "./ops.ts";
import { pageRoutes } from "./pages.ts";
import { sseRoutes } from "./sse.ts";
import { websocketRoutes } from "./websocket.ts";

/** Builds the app for a switchboard. */
export function createApp(switchboard: Switchboard): Hono {
  const app = new Hono();
  app.route("/", websocketRoutes(switchboard));
  app.route("/", longpollRoutes(switchboard));
  app.route("/", sseRoutes(switchboard));
  app.route("/", apiRoutes(switchboard));
  app.route("/", opsRoutes(switchboard));
  app.route("/", pageRoutes(switchboard));
  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));
  app.onError((err, c) => {
    console.error(`${c.req.method} ${c.req.path} failed:`, err);
    return c.json({ error: "internal error" }, 500);
  });
  return app;
}
