/**
 * A refused WebSocket that says why: the upgrade is accepted (a browser cannot read the body or
 * status of a refused upgrade: it sees a bare close), the client's joins and pushes get error
 * replies `{reason, detail}`, heartbeats are answered, and after `REFUSAL_LINGER_MS` the server
 * closes with the refusal's 4xxx code and its wording as the reason. The linger keeps the
 * official Phoenix client from reconnecting 100 times a second (see `REFUSAL_LINGER_MS` in
 * protocol.ts). No session is opened: nothing of the node is reachable from here.
 *
 * @example
 * ```ts
 * const refused = new RefusedWebSocket({ connection, refusal: { code: 4001, reason: "token_expired", error: "token expired" } });
 * refused.listen(openedAlready);
 * ```
 * @module
 */
import type { Message } from "../core/message.ts";
import { PHOENIX_TOPIC, PhxEvent, REFUSAL_LINGER_MS } from "../core/protocol.ts";
import type { WebSocketConnection } from "./websocket.ts";

/** Frames answered on a refused socket; later ones are ignored (bounded work per socket). */
const _MAX_ANSWERS = 16;
/** Longer frames are not decoded (a refused client has no business sending large ones). */
const _MAX_FRAME_CHARS = 16_384;

/** Why the socket is refused: the close code, the word and the wording. */
export interface SocketRefusal {
  code: number;
  /** The refusal word (`token_expired`), the `reason` of error replies. */
  reason: string;
  /** The wording (`token expired: reconnect with a fresh token`), the close reason. */
  error: string;
}

/** What a {@link RefusedWebSocket} needs. */
export interface RefusedWebSocketInit {
  /** The accepted socket's connection (its serializer decodes frames, its close is bounded). */
  connection: WebSocketConnection;
  refusal: SocketRefusal;
  /** Default {@link REFUSAL_LINGER_MS}. */
  lingerMs?: number;
  /** Called once when the socket is gone (the route counts lingering sockets). */
  onGone?: () => void;
}

/** A refused socket: answers with the refusal, then closes with its code. */
export class RefusedWebSocket {
  readonly #init: RefusedWebSocketInit;
  #answers = 0;
  #timer?: ReturnType<typeof setTimeout>;
  #gone = false;

  constructor(init: RefusedWebSocketInit) {
    this.#init = init;
  }

  /** Listens to the socket; starts the linger at `open` (or at once when already open). */
  listen(openedAlready = false): void {
    const socket = this.#init.connection.socket;
    for (const type of ["open", "message", "close", "error"]) socket.addEventListener(type, this);
    if (openedAlready) this.#opened();
  }

  /** The socket's events. */
  handleEvent(event: Event): void {
    if (event.type === "open") this.#opened();
    else if (event.type === "message") this.#answer((event as MessageEvent).data);
    else if (event.type === "close") this.#done();
  }

  #opened(): void {
    const { connection, refusal, lingerMs = REFUSAL_LINGER_MS } = this.#init;
    this.#timer ??= setTimeout(() => connection.close(refusal.code, refusal.error), lingerMs);
  }

  #answer(data: unknown): void {
    if (typeof data !== "string" || data.length > _MAX_FRAME_CHARS) return;
    if (this.#answers >= _MAX_ANSWERS) return;
    this.#answers++;
    const { connection, refusal } = this.#init;
    let msg: Message;
    try {
      msg = connection.serializer.decode(data);
    } catch {
      return;
    }
    const heartbeat = msg.topic === PHOENIX_TOPIC && msg.event === PhxEvent.heartbeat;
    const response = heartbeat ? {} : { reason: refusal.reason, detail: refusal.error };
    connection.sendMessage({
      joinRef: msg.joinRef,
      ref: msg.ref,
      topic: msg.topic,
      event: PhxEvent.reply,
      payload: { status: heartbeat ? "ok" : "error", response },
    });
  }

  #done(): void {
    clearTimeout(this.#timer);
    if (this.#gone) return;
    this.#gone = true;
    this.#init.onGone?.();
  }
}
