/**
 * Switchboard's entry point on Deno: reads the environment, builds the app and serves it.
 *
 * Run it with `deno task start` (or `deno task dev` to watch). For `deno serve` and Deno Deploy
 * use `serve.ts` (only a default export): this module has none, so `deno run` does not warn
 * that it looks like a `deno serve` module.
 * @module
 */
import { channels } from "./channels/mod.ts";
import {
  createApp,
  createLogger,
  createSwitchboard,
  warnDevDefaults,
} from "@switchboard/switchboard";
import {
  configFromEnvOrExit,
  defaultMaxConnections,
  denoRuntime,
  exitGracefullyOnSignals,
  guardProcess,
  serveGuarded,
} from "@switchboard/switchboard/deno";

const config = configFromEnvOrExit();
const log = createLogger(config.logLevel);
/** The node's runtime: hub, presence, sessions. */
export const switchboard = createSwitchboard({
  config,
  channels,
  timers: denoRuntime.timers,
  log,
});
/** The Hono app, for embedding or `deno serve`. */
export const app = createApp(switchboard, { upgrade: denoRuntime.upgrade, pages: true });

warnDevDefaults(config, log);
// Issue 21: what escapes every handler is logged and counted, not fatal.
guardProcess(switchboard);

if (import.meta.main) {
  const derived = defaultMaxConnections();
  const maxConnections = config.maxConnections ?? derived.max;
  if (config.maxConnections === undefined && !derived.known) {
    log.info(
      `connection cap ${maxConnections}: the open-file limit cannot be read without ` +
        "--allow-all; set MAX_CONNECTIONS below `ulimit -Hn`",
    );
  }
  // Deno.serve with a connection cap (503 + Retry-After) and a listener that survives
  // descriptor exhaustion: see lib/runtime/deno_serve.ts for what Deno cannot do.
  const server = serveGuarded({
    port: config.port,
    hostname: config.host,
    handler: app.fetch,
    maxConnections,
    // WebSockets and SSE responses until their socket is done; long-polls have their own budget.
    openConnections: () => switchboard.connectedCount,
    log,
    // Printed at every log level: scripts and tests read the port from this line.
    onListen: ({ hostname, port }) =>
      console.log(
        `switchboard listening on http://${hostname}:${port} ` +
          `(node ${config.nodeId}, ${switchboard.brokerState().kind} broker, ` +
          `max ${maxConnections || "unlimited"} connections)`,
      ),
  });
  // Graceful stop: clients are told to come back later (WebSocket 1012, SSE retry:), this
  // node's presences leave everywhere, and the process exits 0 within 10 s.
  exitGracefullyOnSignals(async () => {
    await switchboard.close();
    await server.shutdown();
  }, log);
}
