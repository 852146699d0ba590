/**
 * The Cloudflare Workers runtime adapter: timers, the WebSocket upgrade through a
 * `WebSocketPair`, and the configuration from a Worker's bindings. Nothing here touches `Deno.*`;
 * the Worker entry (`deploy/cloudflare/worker.ts`) hands these to the runtime-neutral library.
 *
 * @example
 * ```ts
 * const config = loadConfig({ ...bindingsEnv(env, CONFIG_KEYS), NODE_ID: "node-1" });
 * const switchboard = createSwitchboard({ config, channels, timers: cloudflareRuntime.timers });
 * const app = createApp(switchboard, { upgrade: cloudflareRuntime.upgrade });
 * ```
 * @module
 */
import { plainTimers } from "../core/time.ts";
import type { UpgradeWebSocket } from "../transports/upgrade.ts";

/** The server side of a Workers WebSocket: a web `WebSocket` plus `accept()`. */
interface _WorkersWebSocket extends WebSocket {
  accept(): void;
}

/** `new WebSocketPair()`: index 0 goes to the client in the 101 response, 1 stays here. */
type _WebSocketPairConstructor = new () => { 0: WebSocket; 1: _WorkersWebSocket };

/**
 * Upgrades through a `WebSocketPair`: the server side is accepted at once (so it is already
 * open: Workers fire no `open` event after `accept()`), and the chosen subprotocol is echoed in
 * the 101 response (a browser that offered one, as the Phoenix `authToken` option does, fails
 * the handshake without it).
 */
export const cloudflareUpgrade: UpgradeWebSocket = (_request, { protocol }) => {
  const Pair = (globalThis as { WebSocketPair?: _WebSocketPairConstructor }).WebSocketPair;
  if (Pair === undefined) {
    throw new Error(
      "WebSocketPair is missing: the Workers adapter runs only on Cloudflare Workers (workerd); " +
        "on Deno use lib/runtime/deno.ts",
    );
  }
  const pair = new Pair();
  const server = pair[1];
  server.accept();
  // When the client goes (close frame or dropped connection), workerd keeps the connection
  // open (CLOSE-WAIT, a file descriptor per socket) until this side closes too: measured, 2,000
  // dead sockets held after a fan-out's clients disconnected. Close it at once.
  server.addEventListener("close", () => {
    try {
      server.close();
    } catch { /* already closed from this side */ }
  });
  const init = {
    status: 101,
    webSocket: pair[0],
    headers: protocol ? { "sec-websocket-protocol": protocol } : undefined,
  };
  // `webSocket` is a Workers extension of ResponseInit.
  return {
    socket: server,
    response: new Response(null, init as ResponseInit),
    openedAlready: true,
  };
};

/**
 * The string bindings among `keys` (a Worker's `env` also holds objects: Durable Object
 * namespaces, KV...), as `loadConfig` takes them. Blank values count as unset there.
 */
export function bindingsEnv(bindings: object, keys: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  const values = bindings as Record<string, unknown>;
  for (const key of keys) {
    const value = values[key];
    if (typeof value === "string") env[key] = value;
  }
  return env;
}

/**
 * Everything the Worker entry hands to the runtime-neutral library. Plain timers: Workers have
 * no unref, and a Durable Object's timers run only while it is in memory anyway.
 */
export const cloudflareRuntime = { timers: plainTimers, upgrade: cloudflareUpgrade } as const;
