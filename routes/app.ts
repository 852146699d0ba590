/**
 * The whole HTTP app: every transport and API mounted on one Hono instance, to serve alone or
 * to mount in the host's own Hono app (`app.route("/rt", …)`): every endpoint is relative, so
 * under a prefix the clients use `/rt/socket`, `/rt/events`, `/rt/api/...`. The demo pages and
 * their `/assets` mount only with `pages: true`, so they never shadow the host's routes.
 *
 * @example
 * ```ts
 * const switchboard = createSwitchboard({ channels: [room] });
 * const host = new Hono();
 * host.route("/rt", createApp(switchboard, { upgrade: denoRuntime.upgrade }));
 * Deno.serve(host.fetch);
 * ```
 * @module
 */
import { Hono, type MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { describeError } from "../lib/log.ts";
import type { Config } from "../lib/config.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import { apiRoutes } from "./api.ts";
import { apiAuthThrottle } from "./api_throttle.ts";
import { serverApiRoutes } from "./api_server.ts";
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
  /**
   * Mount the demo pages (`/`, `/status/:page`, `/records/:id`) and `/assets/` (the browser
   * client, phoenix.js). Default false: an embedded Switchboard serves only its endpoints.
   */
  pages?: boolean;
}

/** Builds the app for a switchboard. */
export function createApp(switchboard: Switchboard<Config>, options: AppOptions): Hono {
  const app = new Hono();
  app.use(corsMiddleware(switchboard.config.allowedOrigins));
  // Issue 21: failed API authentications are throttled per client address.
  app.use("/api/*", apiAuthThrottle(switchboard));
  app.route("/", websocketRoutes(switchboard, options.upgrade));
  app.route("/", longpollRoutes(switchboard));
  app.route("/", sseRoutes(switchboard));
  app.route("/", apiRoutes(switchboard));
  app.route("/", serverApiRoutes(switchboard));
  app.route("/", opsRoutes(switchboard));
  if (options.pages) app.route("/", pageRoutes(switchboard));
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

/**
 * CORS on every endpoint, so pages on other origins can use the long-poll fallback, an
 * EventSource widget, the API and the assets: `Access-Control-Allow-Origin` for the allowed
 * origins (`*` when `ALLOWED_ORIGINS` is unset), preflights answered with 204 and the
 * requested headers echoed, as Phoenix's own long-poll does (`X-Phoenix-AuthToken`,
 * `Content-Type: application/x-ndjson`, `Last-Event-ID`, `If-None-Match` all need it).
 * Credentials are not allowed: tokens travel in params and headers, never in cookies. The
 * origin check that refuses connections (403) stays with the transports (`admit`).
 * WebSocket upgrades are left alone: CORS does not apply to them, and a 101 response cannot be
 * copied to add headers.
 */
export function corsMiddleware(allowedOrigins: readonly string[] | undefined): MiddlewareHandler {
  const handler = cors({
    origin: allowedOrigins ? [...allowedOrigins] : "*",
    allowMethods: ["GET", "HEAD", "POST", "OPTIONS"],
    exposeHeaders: ["ETag"],
    maxAge: 600,
  });
  return (c, next) => {
    if (c.req.header("upgrade")?.toLowerCase() === "websocket") return next();
    return handler(c, next);
  };
}
