/**
 * `Deno.serve` made safe to leave on the open internet, for the Deno entry points: the
 * listener survives running out of file descriptors, and a cap on concurrent connections
 * refuses the excess with 503 and `Retry-After` instead of letting descriptors run out.
 *
 * What Deno 2.9 does not allow, and so is not done here (put a proxy in front for it; the
 * README's security section gives the settings):
 * - a header-read or idle timeout: `Deno.serve` has no such option (denoland/deno#3515), and a
 *   connection that never sends a request never reaches the handler, so the process cannot
 *   see it, count it or close it;
 * - the accept error itself: when `accept()` fails with EMFILE the server's accept loop ends
 *   (denoland/deno#10148). Connections already accepted keep being served; this module
 *   listens again (with backoff) so new ones are accepted once descriptors are free.
 *
 * @example
 * ```ts
 * const server = serveGuarded({
 *   port: 8000,
 *   hostname: "0.0.0.0",
 *   handler: app.fetch,
 *   maxConnections: defaultMaxConnections().max,
 *   openConnections: () => switchboard.sessionCount,
 *   log,
 * });
 * await server.shutdown();
 * ```
 * @module
 */
import { describeError, type Logger } from "../log.ts";

/** Seconds a refused client is told to wait (`Retry-After`). */
export const RETRY_AFTER_SECONDS = 5;

/** Descriptors kept free below the open-file limit: Redis, files, the listener itself. */
const _RESERVED_FDS = 64;

/** Options of {@link serveGuarded}. */
export interface GuardedServeOptions {
  port: number;
  hostname: string;
  handler: (request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;
  /** Concurrent connections past which a request gets 503; 0: no cap. */
  maxConnections: number;
  /** Long-lived connections the handler no longer holds (WebSockets, SSE streams, sessions). */
  openConnections: () => number;
  log: Logger;
  /** Called when the server first listens (listening again after a failure is logged). */
  onListen?: (addr: Deno.NetAddr) => void;
}

/** A running {@link serveGuarded} server. */
export interface GuardedServer {
  /** The bound address (the port is fixed after the first listen, even when 0 was asked). */
  readonly addr: Deno.NetAddr;
  /** Requests in the handler now (a held long-poll counts until it answers). */
  readonly inFlight: number;
  /** Times the listener was lost (descriptor exhaustion) and listened again. */
  readonly relistens: number;
  /** Stops listening and waits for the requests in flight. */
  shutdown(): Promise<void>;
}

/**
 * Serves `handler` like `Deno.serve`, but listens again when the accept loop dies (file
 * descriptors exhausted) and answers 503 with `Retry-After` past `maxConnections`.
 */
export function serveGuarded(options: GuardedServeOptions): GuardedServer {
  const { log, maxConnections } = options;
  let port = options.port;
  let current: Deno.HttpServer<Deno.NetAddr> | undefined;
  let stopped = false;
  let inFlight = 0;
  let relistens = 0;
  let addr: Deno.NetAddr | undefined;
  let backoffMs = 100;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let warnedAt = -Infinity;

  const refuse = () => {
    const body = JSON.stringify({
      error: `server at its connection limit (${maxConnections}): retry in ` +
        `${RETRY_AFTER_SECONDS} s`,
    });
    return new Response(body, {
      status: 503,
      headers: {
        "content-type": "application/json",
        "retry-after": String(RETRY_AFTER_SECONDS),
        "cache-control": "no-store",
      },
    });
  };

  const handler = async (request: Request, info: Deno.ServeHandlerInfo) => {
    if (maxConnections > 0 && inFlight + options.openConnections() >= maxConnections) {
      return refuse();
    }
    inFlight++;
    try {
      return await options.handler(request, info);
    } finally {
      inFlight--;
    }
  };

  // The first listen throws like Deno.serve (a taken port must stop start-up); later ones, after
  // the accept loop died, are retried until descriptors are free.
  let listenedAt = 0;
  const listen = () => {
    retryTimer = undefined;
    if (stopped) return;
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve({
        port,
        hostname: options.hostname,
        onListen: (bound) => {
          port = bound.port;
          if (addr === undefined) options.onListen?.(bound);
          else log.info("listening again", { port });
          addr = bound;
        },
      }, handler);
    } catch (err) {
      if (addr === undefined) throw err;
      // Listening needs a descriptor too: try again once some are free.
      return relisten(err);
    }
    current = server;
    listenedAt = Date.now();
    server.finished.then(() => {
      if (!stopped) relisten(new Error("the accept loop ended"));
    }, relisten);
  };

  const relisten = (err: unknown) => {
    if (stopped) return;
    current = undefined;
    relistens++;
    const now = Date.now();
    // A listener that held for a while listens again at once (clients connecting meanwhile are
    // refused), then backs off while it keeps failing (descriptors exhausted).
    if (now - listenedAt > 5_000) backoffMs = 0;
    // One line per 10 s at most: under attack this happens many times a second.
    if (now - warnedAt > 10_000) {
      warnedAt = now;
      log.warn("the listener failed; existing connections are kept, listening again", {
        error: describeError(err),
        retryInMs: backoffMs,
        hint: "raise the open-file limit (ulimit -n) or lower MAX_CONNECTIONS",
      });
    }
    retryTimer = setTimeout(listen, backoffMs);
    backoffMs = Math.min(Math.max(backoffMs * 2, 100), 2_000);
  };

  listen();

  return {
    get addr() {
      if (!addr) throw new Error("the server has not listened yet");
      return addr;
    },
    get inFlight() {
      return inFlight;
    },
    get relistens() {
      return relistens;
    },
    async shutdown() {
      stopped = true;
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      await current?.shutdown();
    },
  };
}

/** The cap when the open-file limit cannot be read. */
export const FALLBACK_MAX_CONNECTIONS = 10_000;

/**
 * The default connection cap: the process's open-file limit minus a reserve of 10 % (at least
 * 64 descriptors). Deno lets a process read its limit (`/proc/<pid>/limits`) only with
 * `--allow-all`; otherwise the cap is {@link FALLBACK_MAX_CONNECTIONS} and `known` is false
 * (set `MAX_CONNECTIONS` below `ulimit -Hn`: Deno raises its soft limit to the hard one).
 */
export function defaultMaxConnections(): { max: number; known: boolean } {
  const limit = openFileLimit();
  if (limit === undefined) return { max: FALLBACK_MAX_CONNECTIONS, known: false };
  return { max: Math.max(1, limit - Math.max(_RESERVED_FDS, Math.floor(limit / 10))), known: true };
}

/** The soft open-file limit of this process, when it can be read. */
export function openFileLimit(): number | undefined {
  try {
    const text = Deno.readTextFileSync(`/proc/${Deno.pid}/limits`);
    const match = text.match(/^Max open files\s+(\d+|unlimited)/m);
    if (!match || match[1] === "unlimited") return undefined;
    return Number(match[1]);
  } catch {
    return undefined;
  }
}
