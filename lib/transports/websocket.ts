/**
 * The WebSocket transport's connection: moves frames between one WebSocket (Deno's, or a
 * Workers `WebSocketPair` side) and its session, and bounds what a slow reader can pile up.
 * The route that upgrades the request is `routes/websocket.ts`.
 *
 * @example
 * ```ts
 * const connection = new WebSocketConnection({ socket, serializer: v2Serializer, maxBuffered: 2 << 20 });
 * connection.open(() => switchboard.openSession({ connection, params, identity }));
 * ```
 * @module
 */
import { fromUnpaddedBase64 } from "../core/base64.ts";
import type { Broadcast } from "../core/broadcast.ts";
import type { Connection } from "../core/connection.ts";
import { deltaFrame } from "../core/delta.ts";
import type { Message } from "../core/message.ts";
import { CloseCode, EndReason, PHOENIX_TOPIC, PhxEvent } from "../core/protocol.ts";
import type { Serializer } from "../core/serializer.ts";
import type { Session } from "../core/session.ts";

const _BEARER_PREFIX = "base64url.bearer.phx.";
/** A close reason is limited to 123 bytes. */
const _MAX_REASON = 120;

/** The fields of a {@link WebSocketConnection}. */
export interface WebSocketConnectionInit {
  socket: WebSocket;
  serializer: Serializer;
  /** Unsent bytes past which the client is cut off as a slow consumer. */
  maxBuffered: number;
  /** How long a close may wait for the client's close frame before the connection is dropped. */
  closeTimeoutMs?: number;
  /** The runtime's way to drop the connection (`UpgradedWebSocket.terminate` in upgrade.ts). */
  terminate?: () => void;
  /**
   * When the runtime last answered the client's fixed heartbeat itself (Cloudflare's
   * auto-response, `lib/core/heartbeat.ts`): a sign of life, and a delivery proof like a
   * heartbeat reply (see {@link UnprovenBytes}).
   */
  lastPingAt?: () => number | undefined;
}

/** Moves frames between one WebSocket and its session. */
export class WebSocketConnection implements Connection {
  readonly transport = "websocket";
  readonly socket: WebSocket;
  readonly serializer: Serializer;
  readonly maxBuffered: number;
  readonly #closeTimeoutMs: number;
  readonly #terminate?: () => void;
  readonly #lastPingAt?: () => number | undefined;
  /** The runtime's last answered ping already counted as proof, and when it was looked at. */
  #pingSeen = 0;
  #pingCheckedAt = 0;
  session?: Session;
  /** Told when what a snapshot of the session holds changed (hibernatable sockets). */
  onSessionChange?: (session: Session) => void;
  #sent = 0;
  /** Opens the session once the socket is open, dropped once it is. */
  #opening?: () => Session;
  /** Only where the runtime has no `bufferedAmount` (workerd): see {@link UnprovenBytes}. */
  readonly #unproven?: UnprovenBytes;

  constructor(init: WebSocketConnectionInit) {
    this.socket = init.socket;
    this.serializer = init.serializer;
    this.maxBuffered = init.maxBuffered;
    this.#closeTimeoutMs = init.closeTimeoutMs ?? 5_000;
    this.#terminate = init.terminate;
    this.#lastPingAt = init.lastPingAt;
    if (typeof init.socket.bufferedAmount !== "number") this.#unproven = new UnprovenBytes();
  }

  /**
   * Listens to the socket (this object is the listener of every event: no closures kept per
   * idle socket) and opens the session with `openSession` once the socket is open, or at once
   * when it is open already (Workers fire no `open` after `accept()`). With `fedByRuntime`,
   * no listener is added: the runtime hands the events to {@link handleEvent} itself
   * (Cloudflare's hibernatable sockets fire none).
   */
  listen(openSession: () => Session, openedAlready = false, fedByRuntime = false): void {
    if (!fedByRuntime) {
      // Binary frames arrive as ArrayBuffers (the browser default is Blob, which reads async).
      this.socket.binaryType = "arraybuffer";
      for (const type of ["open", "message", "close", "error"]) {
        this.socket.addEventListener(type, this);
      }
    }
    if (openedAlready) this.session = openSession();
    else this.#opening = openSession;
  }

  /** The socket's events. */
  handleEvent(event: Event): void {
    if (event.type === "message") {
      this.receiveData((event as MessageEvent).data);
    } else if (event.type === "open" && this.#opening) {
      const open = this.#opening;
      this.#opening = undefined;
      this.session = open();
    } else if (event.type === "close") {
      this.peerClosed();
    }
  }

  /** One frame from the client (a runtime that fires no events hands it over here). */
  receiveData(data: unknown): void {
    if (typeof data === "string") return this.session?.receiveText(data);
    if (data instanceof ArrayBuffer) return this.session?.receiveBinary(new Uint8Array(data));
    this.session?.rejectFrame("binary frames must arrive as ArrayBuffer");
  }

  /** The connection ended from the client's side (or was lost). */
  peerClosed(): void {
    this.session?.close(EndReason.disconnect);
  }

  /** Made on demand (at shutdown): a promise per idle socket would cost memory for nothing. */
  get whenClosed(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => this.socket.addEventListener("close", () => resolve()));
  }

  lastPingAt(): number | undefined {
    return this.#lastPingAt?.();
  }

  sessionChanged(): void {
    if (this.session) this.onSessionChange?.(this.session);
  }

  /** Binary frames need the v2 serializer. */
  get binary(): boolean {
    return this.serializer.binary !== undefined;
  }

  sendMessage(msg: Message): void {
    const codec = this.serializer.binary;
    this.#send(msg.binary && codec ? codec.encode(msg) : this.serializer.encode(msg));
    if (this.#unproven && msg.topic === PHOENIX_TOPIC && msg.event === PhxEvent.reply) {
      this.#unproven.heartbeatReplied();
    }
  }

  sendBroadcast(b: Broadcast): void {
    const codec = this.serializer.binary;
    this.#send(b.binary && codec ? codec.encodeBroadcast(b) : this.serializer.encodeBroadcast(b));
  }

  /**
   * Bytes the socket has not sent yet (0 once closed). Workers' sockets cannot tell: there
   * it is what the heartbeats have not proven delivered (see {@link UnprovenBytes}).
   */
  backlog(): number {
    if (this.socket.readyState !== WebSocket.OPEN) return 0;
    return this.#unproven ? this.#unproven.unproven : this.socket.bufferedAmount;
  }

  /**
   * WebSockets have no event for their buffer emptying: a replay looks again shortly (a
   * heartbeat interval is what proves delivery on Workers, so it looks less often there).
   */
  drained(): Promise<void> {
    const ms = this.#unproven ? 1_000 : 20;
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  sendDelta(b: Broadcast, deltaJson: string): void {
    this.#send(deltaFrame(this.serializer, b, deltaJson));
  }

  #send(frame: string | Uint8Array): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(frame);
    if (this.#unproven) {
      let unproven = this.#unproven.sent(frame.length);
      // Answered pings are looked at only once half the budget is unproven: a fan-out's sends
      // cost nothing more.
      if (unproven > this.maxBuffered / 2 && this.#lastPingAt && this.#countPing()) {
        unproven = this.#unproven.sent(0);
      }
      if (unproven > this.maxBuffered) this.#cutOff();
      return;
    }
    // A client that stops reading makes the unsent bytes pile up here; past the limit it goes
    // (1013: try again later), and resumes from its cursor when it comes back. Reading
    // bufferedAmount is a call into the runtime: every 16th frame (or a large one) is enough.
    if ((++this.#sent & 15) !== 0 && frame.length < 16_384) return;
    if (this.socket.bufferedAmount > this.maxBuffered) this.#cutOff();
  }

  /**
   * A ping the runtime answered since the last look proves delivery as a heartbeat reply does;
   * true when it moved the proof. Looked at once a second at most (a call into the runtime), so
   * the proof may be up to a second late: a little more counts as delivered than strictly is.
   */
  #countPing(): boolean {
    const now = Date.now();
    if (now - this.#pingCheckedAt < 1_000) return false;
    this.#pingCheckedAt = now;
    const at = this.#lastPingAt!() ?? 0;
    if (at <= this.#pingSeen) return false;
    this.#pingSeen = at;
    this.#unproven!.heartbeatReplied();
    return true;
  }

  #cutOff(): void {
    this.close(CloseCode.tryAgainLater, "slow consumer: reconnect and resume");
    this.session?.close(EndReason.slowConsumer);
  }

  close(code: number, reason: string): void {
    if (this.socket.readyState > WebSocket.OPEN) return;
    // Deno (2.9) drops a closing server socket as soon as any frame arrives from the client,
    // and its close frame is written asynchronously: a frame that arrives first (a heartbeat
    // sent at that moment) loses the close frame, and the client sees the connection end with
    // no code (1006 in browsers). Clients reconnect either way; only the code is lost.
    this.socket.close(code, reason.slice(0, _MAX_REASON));
    // A client that stopped reading never answers the close: its connection would stay open
    // for good. Past the close timeout it is dropped without the handshake.
    const terminate = this.#terminate;
    if (!terminate) return;
    const timer = setTimeout(() => {
      if (this.socket.readyState !== WebSocket.CLOSED) terminate();
    }, this.#closeTimeoutMs);
    this.socket.addEventListener("close", () => clearTimeout(timer), { once: true });
  }
}

/**
 * An upper bound of what a client has not received yet, for runtimes whose WebSocket has no
 * `bufferedAmount` (workerd queues every `send()` in memory and says nothing). It comes from the
 * protocol: the Phoenix client sends its next heartbeat only once the reply to the previous one
 * has arrived (it drops the connection itself otherwise), so each heartbeat proves that
 * everything up to the previous heartbeat reply was delivered. What was sent after that point
 * is unproven; past the limit the client is cut off like a slow reader. A client receiving more
 * than the limit between two heartbeats counts as slow, so on such runtimes the limit is a
 * budget per heartbeat interval. Counted in characters of the frames sent.
 */
export class UnprovenBytes {
  #sent = 0;
  #proven = 0;
  #lastReply = 0;

  /** Counts a frame just sent; returns what is unproven now. */
  sent(length: number): number {
    this.#sent += length;
    return this.#sent - this.#proven;
  }

  /** What was sent and not proven delivered yet. */
  get unproven(): number {
    return this.#sent - this.#proven;
  }

  /** A heartbeat reply was just sent: the heartbeat it answers proved the previous reply. */
  heartbeatReplied(): void {
    this.#proven = this.#lastReply;
    this.#lastReply = this.#sent;
  }
}

/** The subprotocols a client offered in `Sec-WebSocket-Protocol`, whatever the comma spacing. */
export function offeredProtocols(header: string | null): string[] {
  return header?.split(",").map((p) => p.trim()).filter((p) => p !== "") ?? [];
}

/**
 * Decodes the `authToken` the Phoenix client (1.8+) sends as a subprotocol
 * `base64url.bearer.phx.<base64, '=' stripped>`.
 */
export function tokenFromProtocols(protocols: readonly string[]): string | undefined {
  const bearer = protocols.find((p) => p.startsWith(_BEARER_PREFIX));
  if (!bearer) return undefined;
  try {
    return new TextDecoder().decode(fromUnpaddedBase64(bearer.slice(_BEARER_PREFIX.length)));
  } catch {
    return undefined;
  }
}
