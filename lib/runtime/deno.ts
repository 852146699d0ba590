/**
 * The Deno runtime adapter: the only module of the server library that touches `Deno.*`.
 * Timers that do not keep the process alive, the WebSocket upgrade, and the environment read
 * by name (so the server runs with `--allow-env=<its variables>`).
 *
 * @example
 * ```ts
 * import { denoRuntime, readEnv } from "./lib/runtime/deno.ts";
 * const config = loadConfig(readEnv(CONFIG_KEYS));
 * const switchboard = createSwitchboard({ config, channels, timers: denoRuntime.timers });
 * Deno.serve(createApp(switchboard, { upgrade: denoRuntime.upgrade }).fetch);
 * ```
 * @module
 */
import { plainTimers, type Timers } from "../core/time.ts";
import { type Config, CONFIG_KEYS, ConfigError, loadConfig } from "../config.ts";
import { describeError, type Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { UpgradeWebSocket } from "../transports/upgrade.ts";

/** Deno's timers: repeating ones are unref'ed, so an idle sweeper never holds the process. */
export const denoTimers: Timers = {
  every(ms, fn) {
    const id = setInterval(fn, ms);
    Deno.unrefTimer(id);
    return () => clearInterval(id);
  },
  // One-shot timers (presence batches and leave graces) stay ref'ed, as setTimeout is: their
  // work (a leave going out) should happen before the process ends.
  after: plainTimers.after,
};

/**
 * `Deno.upgradeWebSocket` with `idleTimeout: 0`: Deno's own ping timeout can close healthy
 * sockets under load (a race between its pong and its timer); the session's heartbeat timeout
 * covers liveness instead.
 *
 * The chosen subprotocol is written into the 101 response here rather than passed as Deno's
 * `protocol` option: Deno checks that option against the offered list split on exactly ", ",
 * and throws for `phoenix,base64url.bearer.phx.…` (no space: the npm `ws` package, RFC 9110
 * allows any spacing around the comma). The route picks `protocol` from the offered list
 * parsed leniently, so it is always one the client offered.
 */
export const denoUpgrade: UpgradeWebSocket = (request, { protocol }) => {
  const upgraded = Deno.upgradeWebSocket(request, { idleTimeout: 0 });
  if (protocol) upgraded.response.headers.set("sec-websocket-protocol", protocol);
  return { ...upgraded, terminate: () => terminateWebSocket(upgraded.socket) };
};

/** Deno's internal resource table (`Deno[Deno.internal].core`), when this Deno exposes it. */
const _core = (Deno as unknown as Record<symbol, { core?: { tryClose?(rid: number): void } }>)[
  (Deno as unknown as { internal: symbol }).internal
]?.core;

/**
 * Closes a server WebSocket's connection for real. Deno's `close()` sends a close frame and
 * then waits for the client's, forever when the client stopped reading (its TCP window is
 * shut, so even the close frame never leaves), and `WebSocket` has no public way to drop the
 * connection. Closing the socket's resource does (measured: the client sees EOF at once).
 * This uses Deno internals, checked at run time: when they are missing it does nothing and
 * returns false, and the connection stays until the client goes.
 */
export function terminateWebSocket(socket: WebSocket): boolean {
  const ridKey = Object.getOwnPropertySymbols(socket).find((s) => s.description === "[[rid]]");
  const rid = ridKey ? (socket as unknown as Record<symbol, unknown>)[ridKey] : undefined;
  if (typeof rid !== "number" || typeof _core?.tryClose !== "function") return false;
  try {
    _core.tryClose(rid);
    return true;
  } catch {
    return false;
  }
}

/** Reads the named environment variables (unset ones are left out). */
export function readEnv(keys: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of keys) {
    const value = Deno.env.get(key);
    if (value !== undefined) env[key] = value;
  }
  return env;
}

/** Everything the Deno entry points hand to the runtime-neutral library. */
export const denoRuntime = { timers: denoTimers, upgrade: denoUpgrade } as const;

/**
 * The configuration from the environment; a bad value prints every problem and exits 1, as a
 * server started by hand should (`deno serve`/Deploy entries call `loadConfig` and throw).
 */
export function configFromEnvOrExit(): Config {
  try {
    return loadConfig(readEnv(CONFIG_KEYS));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`switchboard: ${err.message}\nFix the variables above and start again.`);
    Deno.exit(1);
  }
}

/**
 * Graceful stop on SIGINT/SIGTERM: runs `stop` once (tell clients to come back, presences
 * leave, goodbye to the other nodes), then exits 0; after 8 s it exits 0 anyway, so an
 * orchestrator's 10 s grace period is never exceeded.
 */
export function exitGracefullyOnSignals(stop: () => Promise<void>, log: Logger): void {
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down");
    const deadline = setTimeout(() => {
      log.warn("graceful shutdown took over 8 s; exiting");
      Deno.exit(0);
    }, 8_000);
    await stop();
    clearTimeout(deadline);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
}

// `deno run` entries serve with a connection cap: part of the Deno adapter's public face.
export {
  defaultMaxConnections,
  type GuardedServeOptions,
  type GuardedServer,
  serveGuarded,
} from "./deno_serve.ts";
/**
 * The process' last line of defence: an error that escaped every handler (a rejected promise
 * nobody awaited, an exception thrown in a timer) is logged and counted in
 * `switchboard_uncaught_errors_total` instead of ending the process and dropping every socket.
 * Such an error is still a bug: tests assert the counter stays 0. Returns the uninstaller.
 *
 * @example
 * ```ts
 * import { Metrics } from "../metrics.ts";
 * import { createLogger } from "../log.ts";
 * const stop = guardProcess({ metrics: new Metrics(), log: createLogger("info") });
 * stop();
 * ```
 */
export function guardProcess(node: { metrics: Metrics; log: Logger }): () => void {
  let escaped = 0;
  node.metrics.counter(
    "switchboard_uncaught_errors_total",
    "errors that escaped every handler (bugs): logged and counted, the process kept serving",
    () => escaped,
  );
  const onError = (kind: string, error: unknown, event: Event) => {
    event.preventDefault();
    escaped++;
    node.log.error("an error escaped every handler; the node keeps serving", {
      kind,
      error: describeError(error),
    });
  };
  const rejection = (e: PromiseRejectionEvent) => onError("unhandledrejection", e.reason, e);
  const uncaught = (e: ErrorEvent) => onError("error", e.error ?? e.message, e);
  globalThis.addEventListener("unhandledrejection", rejection);
  globalThis.addEventListener("error", uncaught);
  return () => {
    globalThis.removeEventListener("unhandledrejection", rejection);
    globalThis.removeEventListener("error", uncaught);
  };
}
