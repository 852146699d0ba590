/**
 * Hibernatable WebSockets for a Cloudflare node object. Sockets are accepted with
 * `ctx.acceptWebSocket`, so the object may leave memory while they stay open; the runtime then
 * calls the object's `webSocketMessage` / `webSocketClose` / `webSocketError`, which hand the
 * event to the socket's {@link WebSocketConnection} here (hibernatable sockets fire no
 * listeners). Each socket carries its session's snapshot (`lib/core/session_snapshot.ts`) in
 * its attachment, rewritten once per event that changed it; after a wake, {@link restore}
 * rebuilds every session from them before the event is handled.
 *
 * An attachment holds at most 16 KiB. A snapshot larger than that (a client on many topics
 * with large join params or presence metas) is kept in the object's storage instead
 * ({@link NodeStorage.spill}) and the attachment names it: nothing is refused, it costs a
 * storage write per change of that session.
 *
 * @example
 * ```ts
 * const sockets = new HibernatingSockets(ctx, storage);
 * const app = createApp(switchboard, { upgrade: sockets.upgrade });
 * // in the Durable Object class:
 * webSocketMessage(ws, data) { sockets.message(ws, data); }
 * ```
 * @module
 */
import { describeError } from "../log.ts";
import type { Switchboard } from "../core/switchboard.ts";
import { restoreSession, type SessionSnapshot, snapshotSession } from "../core/session_snapshot.ts";
import { serializerFor } from "../core/serializer.ts";
import { CloseCode } from "../core/protocol.ts";
import type { UpgradeWebSocket } from "../transports/upgrade.ts";
import { WebSocketConnection } from "../transports/websocket.ts";
import type { NodeStorage } from "./cloudflare_storage.ts";
import { cloudflareUpgrade, webSocketPair } from "./cloudflare_upgrade.ts";

/** The part of a Durable Object's state (`ctx`) used for hibernatable sockets. */
export interface HibernationState {
  acceptWebSocket(ws: WebSocket, tags?: string[]): void;
  getWebSockets(tag?: string): WebSocket[];
  getWebSocketAutoResponseTimestamp(ws: WebSocket): Date | null;
}

/** A hibernatable socket's attachment methods (Workers extensions of `WebSocket`). */
interface _AttachedWebSocket extends WebSocket {
  serializeAttachment(value: unknown): void;
  deserializeAttachment(): unknown;
}

/** What each socket carries: its id, and its snapshot unless it was spilled to storage. */
interface _Attachment {
  id: string;
  /** The snapshot's JSON as UTF-8 (its exact size counts against the limit). */
  s?: Uint8Array;
}

/** What the runtime allows per attachment (16 KiB), less room for the attachment's own fields. */
export const MAX_ATTACHMENT_BYTES = 16 * 1024 - 256;

/** How connections of restored sessions are made (the same options as at the upgrade). */
export interface ConnectionSettings {
  maxBuffered: number;
  closeTimeoutMs?: number;
}

/** One socket held here: its connection and the id of its snapshot. */
interface _Held {
  connection: WebSocketConnection;
  id: string;
  spilled: boolean;
}

/** The node object's hibernatable sockets and their sessions' snapshots. */
export class HibernatingSockets {
  readonly #state: HibernationState;
  readonly #storage: NodeStorage;
  readonly #held = new Map<WebSocket, _Held>();
  readonly #dirty = new Set<_Held>();
  #saving = false;
  /** The earliest token expiry (seconds) among held sessions, possibly of a closed one. */
  #earliestExp?: number;

  constructor(state: HibernationState, storage: NodeStorage) {
    this.#state = state;
    this.#storage = storage;
  }

  /** Open sockets this object holds a session for. */
  get size(): number {
    return this.#held.size;
  }

  /**
   * The earliest `exp` (seconds) of a held session's token, for the alarm that closes it on
   * time while the object sleeps; with `rescan`, computed again over the sessions (after the
   * sweep closed the expired ones).
   */
  earliestExpiry(rescan = false): number | undefined {
    if (rescan) {
      this.#earliestExp = undefined;
      for (const { connection } of this.#held.values()) this.#noteExpiry(connection);
    }
    return this.#earliestExp;
  }

  #noteExpiry(connection: WebSocketConnection): void {
    const session = connection.session;
    const exp = session?.closed ? undefined : session?.identity.claims?.exp;
    if (exp !== undefined && !(this.#earliestExp! <= exp)) this.#earliestExp = exp;
  }

  /**
   * Upgrades through a `WebSocketPair` whose server side the runtime holds
   * (`ctx.acceptWebSocket`): it is open at once, and its events come through {@link message}
   * and {@link close}. The chosen subprotocol is echoed in the 101 response. With
   * `hibernatable: false` the classic accept instead.
   */
  readonly upgrade: UpgradeWebSocket = (request, { protocol, hibernatable = true }) => {
    // A refused socket lingers a moment and closes: classic, its listeners do the work.
    if (!hibernatable) return cloudflareUpgrade(request, { protocol });
    const { server, response } = webSocketPair(protocol);
    this.#state.acceptWebSocket(server);
    return {
      socket: server,
      response,
      openedAlready: true,
      hibernation: {
        adopt: (connection) => this.#adopt(connection, crypto.randomUUID()),
        lastPingAt: () => this.#lastPingAt(server),
      },
    };
  };

  /** A frame from a hibernatable socket (the object's `webSocketMessage`). */
  message(ws: WebSocket, data: string | ArrayBuffer): void {
    const held = this.#held.get(ws);
    if (held) return held.connection.receiveData(data);
    // A socket whose session could not be rebuilt: the client reconnects and joins again.
    _close(ws, CloseCode.serviceRestart, "session lost while the server slept: reconnect");
  }

  /** A hibernatable socket closed or failed (the object's `webSocketClose`/`webSocketError`). */
  close(ws: WebSocket, code = 1000): void {
    const held = this.#held.get(ws);
    this.#held.delete(ws);
    if (held) {
      this.#dirty.delete(held);
      held.connection.peerClosed();
      if (held.spilled) this.#storage.spill(held.id, undefined);
    }
    // The client's close gets its answer (code 1005/1006 cannot be sent back: 1000).
    _close(ws, code >= 1000 && code < 5000 && code !== 1005 && code !== 1006 ? code : 1000, "");
  }

  /**
   * Rebuilds the session of every socket the runtime still holds (after a wake): subscriptions
   * and presences as they were, nothing sent (but a crowd's visible set, see
   * `PresenceTracker.resumeCrowds`). A socket whose snapshot cannot be read is closed
   * (1012) so its client reconnects. Returns how many sessions came back.
   */
  restore(switchboard: Switchboard, settings: ConnectionSettings): number {
    let restored = 0;
    const live = new Set<string>();
    for (const ws of this.#state.getWebSockets()) {
      if (this.#held.has(ws) || ws.readyState !== WebSocket.OPEN) continue;
      const attachment = (ws as _AttachedWebSocket).deserializeAttachment() as
        | _Attachment
        | null;
      if (attachment?.id) live.add(attachment.id);
      try {
        const snapshot = this.#snapshotOf(attachment);
        const serializer = serializerFor(snapshot.vsn);
        if (!serializer) throw new TypeError(`unknown vsn ${snapshot.vsn}`);
        const connection = new WebSocketConnection({
          socket: ws,
          serializer,
          maxBuffered: settings.maxBuffered,
          closeTimeoutMs: settings.closeTimeoutMs,
          lastPingAt: () => this.#lastPingAt(ws),
        });
        connection.session = restoreSession(switchboard, { connection, snapshot });
        this.#hold(connection, attachment!.id, attachment!.s === undefined);
        restored++;
      } catch (err) {
        switchboard.log.warn("a session could not be rebuilt after a wake", {
          error: describeError(err),
        });
        _close(ws, CloseCode.serviceRestart, "session lost while the server slept: reconnect");
      }
    }
    this.#storage.keepSpilled(live);
    switchboard.presence.resumeCrowds();
    return restored;
  }

  #snapshotOf(attachment: _Attachment | null): SessionSnapshot {
    if (!attachment?.id) throw new TypeError("the socket has no attachment");
    const json = attachment.s !== undefined
      ? new TextDecoder().decode(attachment.s)
      : this.#storage.spilled(attachment.id);
    if (json === undefined) throw new TypeError("the session's spilled snapshot is gone");
    return JSON.parse(json) as SessionSnapshot;
  }

  #adopt(connection: WebSocketConnection, id: string): void {
    const held = this.#hold(connection, id, false);
    this.#save(held);
  }

  #hold(connection: WebSocketConnection, id: string, spilled: boolean): _Held {
    const held: _Held = { connection, id, spilled };
    this.#held.set(connection.socket, held);
    connection.onSessionChange = () => this.#changed(held);
    this.#noteExpiry(connection);
    return held;
  }

  /** Several changes of one event (a join and its presence) are written once, after it. */
  #changed(held: _Held): void {
    this.#dirty.add(held);
    if (this.#saving) return;
    this.#saving = true;
    queueMicrotask(() => {
      this.#saving = false;
      const dirty = [...this.#dirty];
      this.#dirty.clear();
      for (const h of dirty) this.#save(h);
    });
  }

  #save(held: _Held): void {
    const session = held.connection.session;
    const ws = held.connection.socket as _AttachedWebSocket;
    if (!session || session.closed || ws.readyState !== WebSocket.OPEN) return;
    const text = JSON.stringify(snapshotSession(session));
    const bytes = _encoder.encode(text);
    if (bytes.length <= MAX_ATTACHMENT_BYTES) {
      ws.serializeAttachment({ id: held.id, s: bytes } satisfies _Attachment);
      if (held.spilled) this.#storage.spill(held.id, undefined);
      held.spilled = false;
      return;
    }
    this.#storage.spill(held.id, text);
    ws.serializeAttachment({ id: held.id } satisfies _Attachment);
    held.spilled = true;
  }

  #lastPingAt(ws: WebSocket): number | undefined {
    return this.#state.getWebSocketAutoResponseTimestamp(ws)?.getTime();
  }
}

const _encoder = new TextEncoder();

function _close(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch { /* already closed */ }
}
