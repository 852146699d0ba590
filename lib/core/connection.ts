/**
 * The seam between a session and its transport: how frames reach one client. Each transport
 * (WebSocket, SSE, long-poll, the in-process test connection) implements it and does nothing
 * else than encode and move bytes.
 *
 * @example
 * ```ts
 * class Recorder implements Connection {
 *   readonly transport = "websocket";
 *   frames: Message[] = [];
 *   sendMessage(msg: Message) { this.frames.push(msg); }
 *   sendBroadcast(b: Broadcast) { this.frames.push({ joinRef: null, ref: null, ...b }); }
 *   close() {}
 * }
 * ```
 * @module
 */
import type { Broadcast } from "./broadcast.ts";
import type { Message } from "./message.ts";
import type { TopicCursor } from "../resume/cursor.ts";

/** The transports a session can come from. */
export type TransportName = "websocket" | "longpoll" | "sse";

/** The transport's side of a session: how frames reach the client. */
export interface Connection {
  readonly transport: TransportName;
  /**
   * True when binary messages reach this client (WebSocket with vsn 2.0.0; SSE as base64).
   * Otherwise a binary reply becomes `{reason: "binary_unsupported"}` and binary pushes and
   * broadcasts are skipped (counted in `switchboard_binary_skipped_total`).
   */
  readonly binary?: boolean;
  /** A frame for this client only (reply, push, close, error). */
  sendMessage(msg: Message): void;
  /** A fan-out frame shared by every subscriber of the topic (encoded once per broadcast). */
  sendBroadcast(b: Broadcast): void;
  /**
   * `b` as a Fossil delta against the previous message this client received on the topic
   * (`deltaJson` is the delta as a JSON string literal; see `delta.ts`). Transports without it
   * never send deltas.
   */
  sendDelta?(b: Broadcast, deltaJson: string): void;
  /**
   * Told where a topic starts before its join reply (SSE writes it into its event ids). With
   * `pending`, the position is the client's own and not judged yet: the replay calls
   * `startTopic` again, before anything else of the topic, with the position it found usable
   * or, on a reset, the head (SSE holds its output until then, so no id repeats what the
   * server could not use).
   */
  startTopic?(topic: string, position: TopicCursor, pending?: boolean): void;
  /**
   * Bytes written that the client has not taken yet (0 once closed; absent: the transport
   * cannot tell). A resume's replay waits on it (`replay_pacing.ts`).
   */
  backlog?(): number;
  /** Resolves when the client took some of the backlog, or the connection closed. */
  drained?(): Promise<void>;
  /** Resolves once the connection is closed (lets a shutdown wait for close frames to go). */
  readonly whenClosed?: Promise<void>;
  /**
   * Clock time of the client's last heartbeat that the runtime answered without the session
   * (Cloudflare's WebSocket auto-response, see `lib/core/heartbeat.ts`); the idle sweep counts
   * it as a sign of life. Absent where every heartbeat reaches the session.
   */
  lastPingAt?(): number | undefined;
  /** Told when what a snapshot of its session holds changed (see `Session.changed`). */
  sessionChanged?(): void;
  /** Ends the connection; `code` is one of the WebSocket close codes in `protocol.ts`. */
  close(code: number, reason: string): void;
}
