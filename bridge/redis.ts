/**
 * Connections to the real Redis server, made with the `redis` npm client in RESP2 mode.
 *
 * The shared connection has the offline queue disabled, so commands fail at once while Redis
 * is down instead of piling up, and it reconnects by itself with a capped backoff.
 * @module
 */
import { Buffer } from "node:buffer";
import { createClient, RESP_TYPES } from "redis";

/** Options of one `sendCommand` call. */
export interface SendOptions {
  /** Commands of one chain are written back to back (used for MULTI ... EXEC). */
  chainId?: symbol;
  /** Aborts the command if it has not been written yet. */
  abortSignal?: AbortSignal;
}

/** The part of a `redis` client the bridge uses. */
export interface RedisConnection {
  /** True while connected and usable. */
  readonly isReady: boolean;
  /** Sends one command; error replies reject with an `ErrorReply`. */
  sendCommand(args: string[], options?: SendOptions): Promise<unknown>;
  /** Subscribes to channels; `listener(message, channel)`. */
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<void>;
  /** Subscribes to patterns; `listener(message, channel)`. */
  pSubscribe(pattern: string, listener: (message: string, channel: string) => void): Promise<void>;
  /** Closes the socket at once, rejecting pending commands. */
  destroy(): void;
}

/** Options of {@link connectRedis}. */
export interface ConnectOptions {
  /** Reconnect after a lost connection (true for long-lived connections). */
  reconnect: boolean;
  /** Called with connection state changes (once per change, not once per retry). */
  log?: (message: string) => void;
  /** Connection name shown in `CLIENT LIST`. */
  name?: string;
}

/** Reconnect backoff: 50 ms, 100 ms, 200 ms, ... capped at 1 s. */
export function reconnectDelay(retries: number): number {
  return Math.min(50 * 2 ** retries, 1000);
}

/** `redis://user:secret@host` → `redis://user:***@host`, for logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
}

/**
 * Creates a client for `url` and starts connecting in the background. The returned
 * connection is usable once `isReady`; until then commands reject with `ClientOfflineError`.
 * `ready` resolves when the first connection is established (never rejects).
 */
export function connectRedis(
  url: string,
  options: ConnectOptions,
): { connection: RedisConnection; ready: Promise<boolean> } {
  const log = options.log ?? (() => {});
  const client = createClient({
    url,
    RESP: 2,
    name: options.name,
    disableOfflineQueue: true,
    disableClientInfo: true,
    maintNotifications: "disabled",
    commandOptions: { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } },
    socket: {
      connectTimeout: 3000,
      reconnectStrategy: options.reconnect ? reconnectDelay : false,
    },
  });
  let down = false;
  client.on("error", (error: Error) => {
    if (down) return;
    down = true;
    log(
      `redis ${redactUrl(url)}: ${error.message || error.name}` +
        (options.reconnect ? " (reconnecting)" : ""),
    );
  });
  client.on("ready", () => {
    if (down) log(`redis ${redactUrl(url)}: connected again`);
    down = false;
  });
  const ready = client.connect().then(() => true, () => false);
  return { connection: client as unknown as RedisConnection, ready };
}

/**
 * Opens a dedicated connection (for blocking commands or subscriptions) and waits until it is
 * ready. Throws if it is not ready within `timeoutMs` or `signal` aborts; the connection is
 * destroyed in that case.
 */
export async function openDedicated(
  url: string,
  options: ConnectOptions & { timeoutMs: number; signal?: AbortSignal },
): Promise<RedisConnection> {
  const { connection, ready } = connectRedis(url, options);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onAbort = () => connection.destroy();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), options.timeoutMs);
    });
    const ok = await Promise.race([ready, timedOut]);
    if (!ok || !connection.isReady) {
      throw new Error(
        options.signal?.aborted
          ? "request aborted while connecting"
          : `could not connect to ${redactUrl(url)} within ${options.timeoutMs} ms`,
      );
    }
    return connection;
  } catch (error) {
    connection.destroy();
    throw error;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}
