/**
 * Builds a node from its configuration: the Switchboard with the broker the config asks for
 * (Redis when `UPSTASH_REDIS_REST_URL`/`_TOKEN` are set; else a BroadcastChannel between the
 * workers of one process when asked; else in-memory). Every entry point
 * (Deno's `main.ts`, `deno serve`, the Workers node object) starts a node this way.
 *
 * @example
 * ```ts
 * const switchboard = createSwitchboard({ config: loadConfig(env), channels, timers: denoTimers });
 * ```
 * @module
 */
import { RedisBroker } from "./cluster/redis/broker.ts";
import { BroadcastChannelBroker } from "./cluster/broadcast_channel.ts";
import type { ChannelDefinition } from "./core/channel.ts";
import { Switchboard } from "./core/switchboard.ts";
import { type Clock, plainTimers, type Timers } from "./core/time.ts";
import { extendNode } from "./extensions.ts";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";

/** What {@link createSwitchboard} needs. */
export interface NodeSetup {
  config: Config;
  // deno-lint-ignore no-explicit-any
  channels: ChannelDefinition<any>[];
  timers?: Timers;
  clock?: Clock;
  log?: Logger;
  /**
   * The workers of this process (`deno serve --parallel`) act as one node through a
   * `BroadcastChannel` of this name, unless Redis is configured (then each worker is a node of
   * the cluster).
   */
  workersChannel?: string;
}

/** A Switchboard node with the broker its configuration names. */
export function createSwitchboard(setup: NodeSetup): Switchboard {
  const { config, timers, clock, log } = setup;
  const broker = config.redis
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
    : setup.workersChannel !== undefined
    ? new BroadcastChannelBroker({
      nodeId: config.nodeId,
      name: setup.workersChannel,
      history: config.history,
      timers,
      clock,
      log,
    })
    : undefined;
  const switchboard = new Switchboard({
    config,
    channels: setup.channels,
    broker,
    timers,
    clock,
    log,
  });
  extendNode(switchboard, { config, timers: timers ?? plainTimers, single: broker === undefined });
  return switchboard;
}

/**
 * Says at start which development defaults are in force (an open API, trusted `user_id`), so
 * nobody ships them unknowingly. Every entry point calls it once.
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
  if (config.socketSecret === undefined) {
    log.warn("SOCKET_SECRET is unset: the user_id connect param is trusted (dev only)");
  }
}
