/**
 * The Upstash REST bridge as a fetch handler, usable in-process or from `bridge/main.ts`.
 *
 * @example
 * ```ts
 * const bridge = createBridge({ redisUrl: "redis://127.0.0.1:6379", token: "secret" });
 * const server = Deno.serve({ port: 8079 }, bridge.fetch);
 * // ... later
 * await bridge.close();
 * await server.shutdown();
 * ```
 * @module
 */
import { createHandler } from "./handler.ts";
import { connectRedis, type RedisConnection } from "./redis.ts";
import type { Subscription } from "./subscribe.ts";

/** Options of {@link createBridge}. */
export interface BridgeOptions {
  /** Redis to forward to, e.g. `redis://127.0.0.1:6379`. */
  redisUrl: string;
  /** Token clients must send as `Authorization: Bearer <token>` (or `?_token=`). */
  token: string;
  /** Non-blocking commands fail with 504 if Redis has not answered after this long. Default 10 s. */
  commandTimeoutMs?: number;
  /** Connecting a dedicated (subscriber/blocking) connection gives up after this long. Default 5 s. */
  connectTimeoutMs?: number;
  /** Interval of SSE `: ping` comments on subscription streams; 0 disables. Default 15 s. */
  sseHeartbeatMs?: number;
  /** A subscription stream with more unread events than this is dropped. Default 10 000. */
  maxBufferedEvents?: number;
  /** Receives connection state changes. Default: `console.error`. */
  log?: (message: string) => void;
}

/** A running bridge. */
export interface Bridge {
  /** Handles one HTTP request (pass to `Deno.serve`). */
  fetch(request: Request): Promise<Response>;
  /** Ends subscription streams and closes every Redis connection. Idempotent. */
  close(): Promise<void>;
  /** Resolves `true` once Redis is first reached (`false` if closed before). Never rejects. */
  readonly ready: Promise<boolean>;
}

/**
 * Creates a bridge and starts connecting to Redis in the background. Requests made while
 * Redis is unreachable get a 503 JSON error at once; the connection is re-established
 * automatically when Redis comes back.
 */
export function createBridge(options: BridgeOptions): Bridge {
  const log = options.log ?? ((message: string) => console.error(`upstash-bridge: ${message}`));
  const { connection, ready } = connectRedis(options.redisUrl, {
    reconnect: true,
    name: "upstash-bridge",
    log,
  });
  const subscriptions = new Set<Subscription>();
  const dedicated = new Set<RedisConnection>();
  let closing = false;
  const handler = createHandler({
    token: options.token,
    redisUrl: options.redisUrl,
    connection,
    commandTimeoutMs: options.commandTimeoutMs ?? 10_000,
    connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
    sseHeartbeatMs: options.sseHeartbeatMs ?? 15_000,
    maxBufferedEvents: options.maxBufferedEvents ?? 10_000,
    subscriptions,
    dedicated,
    isClosing: () => closing,
  });
  return {
    fetch: handler,
    ready,
    close() {
      if (!closing) {
        closing = true;
        for (const subscription of subscriptions) subscription.close();
        for (const connection of dedicated) connection.destroy();
        connection.destroy();
      }
      // Let the destroyed sockets finish closing before callers check for leaks.
      return new Promise((resolve) => setTimeout(resolve, 0));
    },
  };
}
