/**
 * The WebSocket upgrade on Cloudflare Workers: a `WebSocketPair` and the 101 response that
 * hands its client side over ({@link webSocketPair}), which both the classic accept here
 * ({@link cloudflareUpgrade}) and the hibernatable one (`cloudflare_hibernation.ts`) start from.
 *
 * @example
 * ```ts
 * const app = createApp(switchboard, { upgrade: cloudflareUpgrade });
 * ```
 * @module
 */
import type { UpgradeWebSocket } from "../transports/upgrade.ts";

/** The server side of a Workers WebSocket: a web `WebSocket` plus `accept()`. */
export interface WorkersWebSocket extends WebSocket {
  accept(): void;
}

/** `new WebSocketPair()`: index 0 goes to the client in the 101 response, 1 stays here. */
type _WebSocketPairConstructor = new () => { 0: WebSocket; 1: WorkersWebSocket };

/**
 * A `WebSocketPair` and the 101 response that hands its client side over, echoing the chosen
 * subprotocol (a browser that offered one, as the Phoenix `authToken` option does, fails the
 * handshake without it). The caller accepts the server side, classic or hibernatable.
 *
 * @example
 * ```ts
 * const { server, response } = webSocketPair("phoenix");
 * ctx.acceptWebSocket(server);
 * return response;
 * ```
 */
export function webSocketPair(
  protocol?: string,
): { server: WorkersWebSocket; response: Response } {
  const Pair = (globalThis as { WebSocketPair?: _WebSocketPairConstructor }).WebSocketPair;
  if (Pair === undefined) {
    throw new Error(
      "WebSocketPair is missing: the Workers adapter runs only on Cloudflare Workers (workerd); " +
        "on Deno use lib/runtime/deno.ts",
    );
  }
  const pair = new Pair();
  const init = {
    status: 101,
    webSocket: pair[0],
    headers: protocol ? { "sec-websocket-protocol": protocol } : undefined,
  };
  // `webSocket` is a Workers extension of ResponseInit.
  return { server: pair[1], response: new Response(null, init as ResponseInit) };
}

/**
 * Upgrades through a `WebSocketPair` ({@link webSocketPair}): the server side is accepted at
 * once (so it is already open: Workers fire no `open` event after `accept()`).
 */
export const cloudflareUpgrade: UpgradeWebSocket = (_request, { protocol }) => {
  const { server, response } = webSocketPair(protocol);
  server.accept();
  // When the client goes (close frame or dropped connection), workerd keeps the connection
  // open (CLOSE-WAIT, a file descriptor per socket) until this side closes too: measured, 2,000
  // dead sockets held after a fan-out's clients disconnected. Close it at once.
  server.addEventListener("close", () => {
    try {
      server.close();
    } catch { /* already closed from this side */ }
  });
  return { socket: server, response, openedAlready: true };
};
