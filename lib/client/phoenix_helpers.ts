/**
 * Helpers around the official `phoenix` client: connect with the long-poll fallback and an
 * honest connection state, a per-browser user id, and the presence list grouped by user.
 * The phoenix module is passed in (the app serves it at `/assets/phoenix.js`), so this module
 * does not import it and works with any copy of the client.
 *
 * @example
 * ```ts
 * const phoenix = await import("/assets/phoenix.js");
 * const { socket } = connectPhoenix(phoenix, {
 *   params: { user_id: browserUserId(localStorage) },
 *   onState: (s) => console.log(s.kind),
 * });
 * const channel = socket.channel("record:42", { name: "Ann" });
 * const presence = new phoenix.Presence(channel);
 * presence.onSync(() => console.log(presenceUsers(presence, "me")));
 * channel.join();
 * ```
 * @module
 */
import { CloseCode, REFUSAL_CLOSE_CODES } from "../core/protocol.ts";
import type { ConnectionState } from "./feed.ts";

/** The part of a phoenix `Socket` these helpers use. */
export interface SocketLike {
  transport: unknown;
  onOpen(callback: () => void): unknown;
  onError(callback: (error: unknown) => void): unknown;
  onClose(callback: (event: unknown) => void): unknown;
  connect(): void;
  disconnect(): void;
  isConnected(): boolean;
}

/** The part of the phoenix module these helpers use. */
export interface PhoenixModule<S extends SocketLike = SocketLike> {
  Socket: new (endPoint: string, options: Record<string, unknown>) => S;
  LongPoll?: unknown;
}

/** Options of {@link connectPhoenix}. */
export interface ConnectOptions {
  /** Default `/socket`. */
  endpoint?: string;
  /** Connect params, e.g. `{user_id}`. */
  params?: Record<string, string>;
  /** Fall back to long-poll when WebSocket is not up within this time (default 2500 ms). */
  longPollFallbackMs?: number;
  onState?(state: ConnectionState): void;
  /** More options for the Socket constructor. */
  socketOptions?: Record<string, unknown>;
}

/**
 * Close codes after which the same params would be refused again: every refusal
 * (docs/protocol-refusals.md) and the backend's disconnect (it revoked the token).
 */
const _REFUSED = new Set([...Object.values(REFUSAL_CLOSE_CODES), CloseCode.disconnected]);

/** A connected socket and its state. */
export interface PhoenixConnection<S extends SocketLike> {
  socket: S;
  readonly state: ConnectionState;
  /** `websocket` or `longpoll`: the transport in use now. */
  transport(): "websocket" | "longpoll";
}

/**
 * Creates and connects a Socket with the long-poll fallback, tracking its state. A refusal
 * (a refusal's close code, or the backend's disconnect) ends the socket: the state says `refused` with the server's reason
 * (unless `socketOptions.params` is a function, which may give a fresh token next time).
 */
export function connectPhoenix<S extends SocketLike>(
  phoenix: PhoenixModule<S>,
  options: ConnectOptions = {},
): PhoenixConnection<S> {
  const socket = new phoenix.Socket(options.endpoint ?? "/socket", {
    params: options.params ?? {},
    longPollFallbackMs: options.longPollFallbackMs ?? 2500,
    ...options.socketOptions,
  });
  let state: ConnectionState = { kind: "connecting" };
  const transport = () =>
    phoenix.LongPoll !== undefined && socket.transport === phoenix.LongPoll
      ? "longpoll" as const
      : "websocket" as const;
  const set = (next: ConnectionState) => {
    state = next;
    options.onState?.(next);
  };
  const offline = () =>
    (globalThis.navigator as { onLine?: boolean } | undefined)?.onLine === false;
  const down = () => {
    if (socket.isConnected()) return;
    if (offline()) {
      if (state.kind !== "offline") set({ kind: "offline", since: Date.now() });
    } else if (state.kind !== "reconnecting") {
      set({ kind: "reconnecting", since: Date.now() });
    }
  };
  socket.onOpen(() => set({ kind: "live", via: transport(), since: Date.now() }));
  socket.onError(down);
  // Params given as a function (Phoenix's way to pass a fresh token on each connect) may be
  // accepted next time: then a refusal is only a close.
  const freshParams = typeof options.socketOptions?.params === "function";
  socket.onClose((event) => {
    const { code, reason } = (event ?? {}) as { code?: unknown; reason?: unknown };
    if (typeof code !== "number" || !_REFUSED.has(code) || freshParams) return down();
    // A refusal: Phoenix would reconnect with the same params, to be refused again (every 5 s,
    // the server's linger). disconnect() here also cancels the reconnect Phoenix just scheduled.
    socket.disconnect();
    set({ kind: "refused", code, reason: String(reason ?? ""), since: Date.now() });
  });
  globalThis.addEventListener?.("offline", () => {
    if (state.kind !== "offline") set({ kind: "offline", since: Date.now() });
  });
  globalThis.addEventListener?.("online", () => {
    if (state.kind === "offline") set({ kind: "reconnecting", since: Date.now() });
  });
  socket.connect();
  return {
    socket,
    get state() {
      return state;
    },
    transport,
  };
}

/** A user on a presence topic, all of their connections (tabs, devices) together. */
export interface PresenceUser {
  key: string;
  name: string;
  /** True when any of the user's connections is editing. */
  editing: boolean;
  /** How many connections (tabs) the user has on the topic. */
  connections: number;
  /** True for the key passed as `selfKey`. */
  self: boolean;
  /** The earliest `online_at` of the user's metas, for a stable arrival order. */
  onlineAt: number;
}

type Meta = Record<string, unknown>;

/** The part of a phoenix `Presence` used by {@link presenceUsers}. */
export interface PresenceLike {
  list<T>(by: (key: string, presence: { metas: Meta[] }) => T): T[];
}

/** Groups a Presence by key: one entry per user, however many tabs, in arrival order. */
export function presenceUsers(presence: PresenceLike, selfKey?: string): PresenceUser[] {
  const users = presence.list((key, { metas }) => {
    const times = metas.map((m) => Number(m.online_at) || 0);
    const newest = metas[times.indexOf(Math.max(...times))] ?? metas[metas.length - 1];
    return {
      key,
      name: typeof newest?.name === "string" && newest.name ? newest.name : key,
      editing: metas.some((m) => m.state === "editing"),
      connections: metas.length,
      self: key === selfKey,
      onlineAt: Math.min(...times),
    };
  });
  return users.sort((a, b) => a.onlineAt - b.onlineAt || a.key.localeCompare(b.key));
}

/**
 * A user id kept in `storage` (localStorage: shared by every tab of the browser), created on
 * first use; a fresh random one when storage is not available.
 */
export function browserUserId(storage?: Storage, key = "switchboard:user_id"): string {
  const fresh = `u-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const known = storage?.getItem(key);
    if (known) return known;
    storage?.setItem(key, fresh);
  } catch { /* storage disabled: this tab is its own user */ }
  return fresh;
}
