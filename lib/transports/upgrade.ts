/**
 * The WebSocket upgrade as a runtime provides it (`Deno.upgradeWebSocket`, or a Workers
 * `WebSocketPair`): the WebSocket transport takes one of these instead of calling a runtime.
 *
 * @example
 * ```ts
 * const upgrade: UpgradeWebSocket = (req, { protocol }) => Deno.upgradeWebSocket(req, { protocol });
 * const app = createApp(switchboard, { upgrade });
 * ```
 * @module
 */
import type { WebSocketConnection } from "./websocket.ts";

/** What an upgrade gives back: the server side of the socket and the 101 response to return. */
export interface UpgradedWebSocket {
  socket: WebSocket;
  response: Response;
  /**
   * True when the socket is already open (Workers fire no `open` event after `accept()`), so
   * the session must start at once.
   */
  openedAlready?: boolean;
  /**
   * Drops the connection under the socket at once, without the close handshake: for a client
   * that never answers a close (it stopped reading). Absent when the runtime cannot.
   */
  terminate?: () => void;
  /**
   * Set by runtimes that deliver the socket's events themselves (Cloudflare's hibernatable
   * sockets): the connection must not listen to the socket, and is handed over with `adopt`
   * once its session is open, so the runtime feeds it events and keeps its session's snapshot.
   */
  hibernation?: {
    adopt(connection: WebSocketConnection): void;
    /** When the runtime last answered the client's fixed heartbeat (see `WebSocketConnection`). */
    lastPingAt?: () => number | undefined;
  };
}

/** Upgrades a request; `protocol` is the subprotocol to answer with, when one is chosen. */
export type UpgradeWebSocket = (
  request: Request,
  options: {
    protocol?: string;
    /**
     * False for a socket that must not hibernate (a refused one, which lingers and closes: its
     * events come through listeners). Runtimes without hibernation ignore it.
     */
    hibernatable?: boolean;
  },
) => UpgradedWebSocket;
