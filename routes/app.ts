/**
 * The whole HTTP app: every transport and API mounted on one Hono instance.
 *
 * @example
 * ```ts
 * const app = createApp(new Switchboard({ config, channels }), { upgrade: denoRuntime.upgrade });
 * Deno.serve(app.fetch);
 * ```
 * @module
 */
import { Hono } from "hono";
import { describeError } from "../lib/log.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import { apiRoutes } from "./api.ts";
import { longpollRoutes } from "./longpoll.ts";
import { opsRoutes } from "./ops.ts";
import { pageRoutes } from "./pages.ts";
import { sseRoutes } from "./sse.ts";
import { websocketRoutes } from "./websocket.ts";
import type { UpgradeWebSocket } from "../lib/transports/upgrade.ts";

/** What the app needs of its runtime. */
export interface AppOptions {
  /** The WebSocket upgrade (`denoRuntime.upgrade`, or the Workers adapter's). */
  upgrade: UpgradeWebSocket;
}

/** Builds the app for a switchboard. */
export function createApp(switchboard: Switchboard, options: AppOptions): Hono {
  const app = new Hono();
  app.route("/", websocketRoutes(switchboard, options.upgrade));
  app.route("/", longpollRoutes(switchboard));
  app.route("/", sseRoutes(switchboard));
  app.route("/", apiRoutes(switchboard));
  app.route("/", opsRoutes(switchboard));
  app.route("/", pageRoutes(switchboard));
  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));
  app.onError((err, c) => {
    switchboard.log.error("a request failed", {
      method: c.req.method,
      path: c.req.path,
      error: describeError(err),
    });
    return c.json({ error: "internal error" }, 500);
  });
  return app;
}
