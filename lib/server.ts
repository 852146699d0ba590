/**
 * Builds a node from its configuration: the Switchboard with the broker the config asks for
 * (Redis when `UPSTASH_REDIS_REST_URL`/`_TOKEN` are set; else a BroadcastChannel between the
 * isolates of one process when asked; else in-memory). Every entry point
 * (Deno's `main.ts`, `deno serve`, the Cloudflare Durable Object) starts a node this way.
 *
 * @example
 * ```ts
 * // Defaults for everything (in-memory broker, plain timers, no env read):
 * const switchboard = createSwitchboard({ channels: [room] });
 * // Or from the environment, on Deno:
 * const node = createSwitchboard({ config: loadConfig(readEnv(CONFIG_KEYS)), channels, timers: denoRuntime.timers });
 * ```
 * @module
 */
import { jwtAuthenticate } from "./auth.ts";
import { RedisBroker } from "./cluster/redis/broker.ts";
import { BroadcastChannelBroker } from "./cluster/broadcast_channel.ts";
import type { Broker } from "./core/broker.ts";
import type { ChannelDefinition } from "./core/channel.ts";
import type { Authenticate } from "./core/identity.ts";
import { Switchboard } from "./core/switchboard.ts";
import { type Clock, plainTimers, type Timers } from "./core/time.ts";
import { extendNode } from "./extensions.ts";
import { type Config, loadConfig } from "./config.ts";
import type { Logger } from "./log.ts";

/** What {@link createSwitchboard} needs. */
export interface NodeSetup {
  /**
   * The configuration: a whole {@link Config} (`loadConfig(env)`), or only the fields to change
   * from the defaults (`{ presenceLeaveGraceMs: 0 }`); omitted, every default applies. Nothing
   * is read from the environment here.
   */
  config?: Partial<Config>;
  // deno-lint-ignore no-explicit-any
  channels: ChannelDefinition<any>[];
  timers?: Timers;
  /** The timers of the session sweep (default `timers`; see `SwitchboardOptions`). */
  sweepTimers?: Timers;
  clock?: Clock;
  log?: Logger;
  /** A broker of the caller's instead of the one the configuration names (tests). */
  broker?: Broker;
  /**
   * The isolates of this process (`deno serve --parallel`) act as one server through a
   * `BroadcastChannel` of this name, unless Redis is configured (then each isolate's node joins
   * the cluster).
   */
  isolatesChannel?: string;
}

/**
 * A Switchboard node with the broker its configuration names, verifying connect tokens with
 * the HS256 JWT verifier when `SOCKET_SECRET` is set.
 */
export function createSwitchboard(setup: NodeSetup): Switchboard<Config> {
  const { timers, clock, log } = setup;
  const config: Config = { ...loadConfig({}), ...setup.config };
  const broker = setup.broker ?? (config.redis
    ? new RedisBroker({
      ...config.redis,
      nodeId: config.nodeId,
      prefix: config.redisPrefix,
      pingMs: config.redisHeartbeatMs,
      nodeTtlMs: config.redisHeartbeatMs * 2.5,
      history: config.history,
      timers,
      clock,
      log,
    })
    : setup.isolatesChannel !== undefined
    ? new BroadcastChannelBroker({
      nodeId: config.nodeId,
      name: setup.isolatesChannel,
      history: config.history,
      timers,
      clock,
      log,
    })
    : undefined);
  const authenticate = authenticateFor(config);
  const switchboard = new Switchboard({
    config,
    channels: setup.channels,
    broker,
    authenticate,
    timers,
    sweepTimers: setup.sweepTimers,
    clock,
    log,
  });
  // No peers to hear on the in-memory broker: webhooks go out from the first tick.
  const single = switchboard.brokerState().kind === "memory";
  extendNode(switchboard, { config, timers: timers ?? plainTimers, single });
  return switchboard;
}

/**
 * The connect-token check a configuration asks for: HS256 JWTs signed with `SOCKET_SECRET`
 * (with `TOKEN_LEEWAY_SECONDS`), or none (dev: `user_id` is trusted).
 *
 * @example
 * ```ts
 * const authenticate = authenticateFor(loadConfig({ SOCKET_SECRET: "a-long-random-secret" }));
 * ```
 */
export function authenticateFor(config: Config): Authenticate | undefined {
  if (config.socketSecret === undefined) return undefined;
  return jwtAuthenticate(config.socketSecret, { leewaySeconds: config.tokenLeewaySeconds });
}

/** Shorter `API_TOKEN`s are reported loudly at start (see {@link warnDevDefaults}). */
export const API_TOKEN_MIN_LENGTH = 16;

/**
 * Says at start which development defaults are in force (an open API, trusted `user_id`), and
 * an `API_TOKEN` too short to resist guessing, so nobody ships them unknowingly. Every entry
 * point calls it once per node (`serve_parallel.ts` once per isolate).
 *
 * @example
 * ```ts
 * warnDevDefaults(config, createLogger(config.logLevel));
 * ```
 */
export function warnDevDefaults(config: Config, log: Logger): void {
  if (config.apiToken === undefined) {
    log.warn("API_TOKEN is unset: POST /api/broadcast is open to anyone (dev only)");
  }
  if (config.apiToken !== undefined && config.apiToken.length < API_TOKEN_MIN_LENGTH) {
    // Loud, not fatal: a short token is guessable, yet refusing to start would take a
    // running deployment down on upgrade. Guesses are throttled per address meanwhile.
    log.error(
      `API_TOKEN is only ${config.apiToken.length} characters: anyone may guess it. Use at ` +
        `least ${API_TOKEN_MIN_LENGTH} random characters (openssl rand -hex 32)`,
    );
  }
  if (config.socketSecret === undefined) {
    log.warn("SOCKET_SECRET is unset: the user_id connect param is trusted (dev only)");
  }
}
