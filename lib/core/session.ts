/**
 * One connected client, whatever the transport (Phoenix's `socket.ex`): intake of decoded
 * frames, their strict ordering, the rate limit, heartbeats, and routing by topic to the
 * {@link ChannelServer} of each joined topic. Joining, push dispatch, replies and terminate
 * belong to the channel server; moving bytes belongs to the transport's {@link Connection}.
 *
 * @example
 * ```ts
 * const session = switchboard.openSession({ connection, params: { user_id: "ann" }, identity });
 * session.receiveText('["1","1","record:1","phx_join",{"name":"Ann"}]');
 * session.close("disconnect");
 * ```
 * @module
 */
import { describeError } from "../log.ts";
import type { TopicCursor } from "../resume/cursor.ts";
import type { ChannelOwner, ChannelServer } from "./channel_server.ts";
import { joinChannel, type JoinResult } from "./channel_join.ts";
import type { TokenRefresh } from "./channel.ts";
import type { Connection, TransportName } from "./connection.ts";
import type { Message, Payload } from "./message.ts";
import type { Identity, SessionServices } from "./session_services.ts";
import {
  badFrame,
  CloseCode,
  DISCONNECTED_REASON,
  EndReason,
  PHOENIX_TOPIC,
  PhxEvent,
  ReplyReason,
} from "./protocol.ts";
import { TokenBucket } from "./rate_limit.ts";
import { payloadProblem } from "./limits.ts";
import { FrameError, type Serializer, v2Serializer } from "./serializer.ts";

export type { JoinResult } from "./channel_join.ts";

/** The fields of a {@link Session}. */
export interface SessionInit {
  node: SessionServices;
  connection: Connection;
  identity: Identity;
  /** Connect params without `token` and `vsn`. */
  connectParams: Readonly<Record<string, string>>;
  /** Decodes the client's text frames (default v2). */
  serializer?: Serializer;
  /** Called once when the session closes (the node forgets it). */
  onClose?: (session: Session) => void;
}

let _sessionCounter = 0;

/** A connected client: its identity, joined channels, inbound order and liveness. */
export class Session implements ChannelOwner {
  readonly id = `s${++_sessionCounter}`;
  readonly node: SessionServices;
  readonly connection: Connection;
  /** Replaced by a fresh token of the same user ({@link refreshToken}). */
  identity: Identity;
  readonly connectParams: Readonly<Record<string, string>>;
  readonly serializer: Serializer;
  readonly #onClose?: (session: Session) => void;
  readonly #channels = new Map<string, ChannelServer>();
  #inbox?: Message[];
  #draining = false;
  #closed = false;
  /** Created with the first counted frame: many sessions (viewers) never send one. */
  #bucket?: TokenBucket;
  /** Frames refused by the rate limit since the last one accepted. */
  #refused = 0;
  /** Clock time of the last frame from the client. */
  lastSeen: number;

  constructor(init: SessionInit) {
    this.node = init.node;
    this.connection = init.connection;
    this.identity = init.identity;
    this.connectParams = init.connectParams;
    this.serializer = init.serializer ?? v2Serializer;
    this.#onClose = init.onClose;
    this.lastSeen = this.node.clock.now();
  }

  get userId(): string {
    return this.identity.userId;
  }

  get transport(): TransportName {
    return this.connection.transport;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Topics this session has joined. */
  get topics(): string[] {
    return [...this.#channels.keys()];
  }

  /** The channel server of a joined topic (a session snapshot reads them). */
  channel(topic: string): ChannelServer | undefined {
    return this.#channels.get(topic);
  }

  /**
   * Takes back a channel server rebuilt from a snapshot (`session_snapshot.ts`): no join runs
   * and nothing is sent, the client already holds this join.
   */
  restoreChannel(server: ChannelServer): void {
    this.#channels.set(server.topic, server);
  }

  /**
   * What a snapshot of this session holds changed (a join, a leave, a presence, the token):
   * the transport is told, if it keeps one (Cloudflare's hibernatable sockets).
   */
  changed(): void {
    if (!this.#closed) this.connection.sessionChanged?.();
  }

  /** Decodes one text frame and handles it; bad frames get an error frame, never a crash. */
  receiveText(text: string): void {
    this.lastSeen = this.node.clock.now();
    const max = this.node.options.maxFrameBytes;
    const size = text.length * 3 > max ? new TextEncoder().encode(text).length : text.length;
    if (this.#tooLarge(size)) return;
    let msg: Message;
    try {
      msg = this.serializer.decode(text);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.rejectFrame(err.message);
      return;
    }
    this.receive(msg);
  }

  /** Decodes one binary frame (v2 only) and handles it; bad frames get an error frame. */
  receiveBinary(bytes: Uint8Array): void {
    this.lastSeen = this.node.clock.now();
    if (this.#tooLarge(bytes.length)) return;
    const codec = this.serializer.binary;
    if (!codec) return this.rejectFrame("binary frames need vsn=2.0.0; send text frames");
    let msg: Message;
    try {
      msg = codec.decode(bytes);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.rejectFrame(err.message);
      return;
    }
    this.receive(msg);
  }

  /** Closes the connection (1009) for a frame over `MAX_FRAME_BYTES`; true when it did. */
  #tooLarge(size: number): boolean {
    const max = this.node.options.maxFrameBytes;
    if (size <= max) return false;
    this.node.metrics.inc("switchboard_frames_rejected_total", { reason: "too_large" });
    this.connection.close(CloseCode.messageTooBig, `frame too large: ${size} bytes, limit ${max}`);
    return true;
  }

  /** Answers a frame the transport or serializer could not decode, and counts it. */
  rejectFrame(detail: string): void {
    this.node.metrics.inc("switchboard_frames_rejected_total", { reason: "malformed" });
    this.send(badFrame(detail));
  }

  /** Queues a decoded message; messages of one session are handled strictly in order. */
  receive(msg: Message): void {
    if (this.#closed) return;
    this.lastSeen = this.node.clock.now();
    this.node.metrics.inc("switchboard_messages_in_total", { transport: this.transport });
    if (!_isHeartbeat(msg) && !this.#takeToken()) {
      this.node.metrics.inc("switchboard_frames_rejected_total", { reason: "rate_limited" });
      // A flood far past the burst is not a client to keep talking to.
      if (++this.#refused > this.node.options.pushRate.burst * 4) {
        this.node.metrics.inc("switchboard_flood_closed_total");
        this.connection.close(CloseCode.policyViolation, "too many messages: flood");
        this.close(EndReason.flood);
        return;
      }
      this.#reply(msg, msg.joinRef, "error", { reason: ReplyReason.rateLimited });
      return;
    }
    this.#refused = 0;
    // Issue 21: nothing nested past MAX_PAYLOAD_DEPTH gets near a handler or an encoder.
    const maxDepth = this.node.options.maxPayloadDepth;
    const problem = payloadProblem(msg.payload, { maxDepth });
    if (problem !== undefined) {
      this.node.metrics.inc("switchboard_refused_total", { reason: ReplyReason.invalidPayload });
      this.#reply(msg, msg.joinRef, "error", {
        reason: ReplyReason.invalidPayload,
        detail: `payload ${problem}`,
      });
      return;
    }
    (this.#inbox ??= []).push(msg);
    if (!this.#draining) this.#drain();
  }

  /** Writes a frame for this client. */
  send(msg: Message): void {
    if (this.#closed) return;
    if (msg.binary !== undefined && !this.connection.binary) {
      return this.#sendBinaryToTextClient(msg);
    }
    this.node.metrics.inc("switchboard_messages_out_total", { transport: this.transport });
    this.connection.sendMessage(msg);
  }

  /**
   * Joins a topic as a `phx_join` frame with ref `joinRef` would (SSE uses this): the reply is
   * sent through the connection, then the channel starts receiving.
   */
  async join(
    topic: string,
    payload: Payload,
    joinRef: string,
    resume?: TopicCursor,
  ): Promise<JoinResult> {
    const { server: _server, activate, ...result } = await this.#join(
      topic,
      payload,
      joinRef,
      resume,
    );
    const replyJoinRef = result.unmatched ? null : joinRef;
    this.#reply({ ref: joinRef, topic }, replyJoinRef, result.status, result.response);
    activate?.();
    return result;
  }

  /**
   * Verifies a fresh token (Supabase's `access_token` push) and makes it this session's: the
   * same user only, since channels and presences were joined as that user (a session without
   * verified claims, an anonymous one, takes the token's user).
   */
  async refreshToken(token: string): Promise<TokenRefresh> {
    const check = await this.node.verifyIdentity(token);
    if (check === undefined) return { ok: true };
    if (!check.ok) return { ok: false, reason: check.error };
    if (this.identity.claims && check.identity.userId !== this.identity.userId) {
      return { ok: false, reason: "token is for another user: reconnect to switch users" };
    }
    this.identity = check.identity;
    this.changed();
    return { ok: true };
  }

  /**
   * The backend removed this user from `topic` (`POST /api/unsubscribe`): the channel ends
   * and the client gets `phx_close` with `{reason: "unsubscribed"}` (a Phoenix channel does not
   * rejoin after it). Returns false when the session had not joined the topic.
   */
  unsubscribe(topic: string): boolean {
    const server = this.#channels.get(topic);
    if (!server || this.#closed) return false;
    this.#forget(server);
    server.end(EndReason.removed, PhxEvent.close, { reason: ReplyReason.unsubscribed });
    return true;
  }

  /**
   * The backend disconnected this user (`POST /api/disconnect`): every channel gets `phx_close`
   * with `{reason: "disconnected"}`, then the connection closes with
   * {@link CloseCode.disconnected} and the session ends.
   */
  disconnect(): void {
    if (this.#closed) return;
    for (const topic of [...this.#channels.keys()]) {
      const server = this.#channels.get(topic)!;
      this.#forget(server);
      server.end(EndReason.removed, PhxEvent.close, { reason: ReplyReason.disconnected });
    }
    this.connection.close(CloseCode.disconnected, DISCONNECTED_REASON);
    this.close(EndReason.removed);
  }

  /** Ends every channel (presence leaves) and unregisters; the transport closes the bytes. */
  close(reason: string = EndReason.disconnect): void {
    if (this.#closed) return;
    this.#closed = true;
    if (reason === EndReason.slowConsumer) {
      this.node.metrics.inc("switchboard_slow_consumers_total", { transport: this.transport });
    }
    for (const server of this.#channels.values()) server.stop(reason);
    this.#channels.clear();
    this.#inbox = undefined;
    this.#onClose?.(this);
  }

  /**
   * A binary message for a client whose transport carries text only: a reply becomes an error
   * reply saying so (the push does not time out); a push is skipped and counted.
   */
  #sendBinaryToTextClient(msg: Message): void {
    this.node.metrics.inc("switchboard_binary_skipped_total", { transport: this.transport });
    if (msg.event !== PhxEvent.reply) return;
    this.send({
      ...msg,
      binary: undefined,
      payload: {
        status: "error",
        response: {
          reason: ReplyReason.binaryUnsupported,
          detail: "binary replies need the WebSocket transport with vsn=2.0.0",
        },
      },
    });
  }

  #takeToken(): boolean {
    const { perSecond, burst } = this.node.options.pushRate;
    return (this.#bucket ??= new TokenBucket(burst, perSecond)).take(this.lastSeen);
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      let msg: Message | undefined;
      while (!this.#closed && (msg = this.#inbox?.shift()) !== undefined) {
        try {
          await this.#handle(msg);
        } catch (err) {
          this.node.log.error("a client message failed", {
            session: this.id,
            event: msg.event,
            topic: msg.topic,
            error: describeError(err),
          });
        }
      }
    } finally {
      this.#draining = false;
    }
  }

  async #handle(msg: Message): Promise<void> {
    if (_isHeartbeat(msg)) return this.#reply(msg, null, "ok", {});
    if (msg.event === PhxEvent.join) {
      const result = await this.#join(msg.topic, msg.payload, msg.joinRef ?? msg.ref);
      this.#reply(msg, result.unmatched ? null : msg.joinRef, result.status, result.response);
      result.activate?.();
      // Also after a refused rejoin: the previous instance ended.
      this.changed();
      return;
    }
    const server = this.#channels.get(msg.topic);
    if (!server) {
      if (msg.event === PhxEvent.leave) return this.#reply(msg, msg.joinRef, "ok", {});
      return this.#reply(msg, null, "error", { reason: ReplyReason.unmatchedTopic });
    }
    // Stale: a message for an older instance. v1 clients send no join_ref at all.
    if (msg.joinRef !== null && server.joinRef !== msg.joinRef) return;
    if (msg.event === PhxEvent.leave) {
      server.reply(msg, "ok", {});
      this.#end(server, EndReason.leave, PhxEvent.close);
      this.changed();
      return;
    }
    if (!await server.handlePush(msg)) {
      this.#forget(server);
      this.changed();
    }
  }

  async #join(
    topic: string,
    payload: Payload,
    joinRef: string | null,
    resume?: TopicCursor,
  ) {
    const previous = this.#channels.get(topic);
    const joined = await joinChannel(this, {
      topic,
      payload,
      joinRef,
      resume,
      joinedCount: this.#channels.size - (previous ? 1 : 0),
      // Last join wins: the old instance gets phx_close before the new join runs.
      beforeJoin: () => previous && this.#end(previous, EndReason.rejoin, PhxEvent.close),
    });
    if (joined.server) this.#channels.set(topic, joined.server);
    return joined;
  }

  /** Stops a channel server and tells the client (`phx_close` with its join_ref). */
  #end(server: ChannelServer, reason: string, event: string): void {
    this.#forget(server);
    server.end(reason, event, {});
  }

  #forget(server: ChannelServer): void {
    if (this.#channels.get(server.topic) === server) this.#channels.delete(server.topic);
  }

  #reply(
    msg: Pick<Message, "ref" | "topic">,
    joinRef: string | null,
    status: string,
    response: Payload,
  ): void {
    this.send({
      joinRef,
      ref: msg.ref,
      topic: msg.topic,
      event: PhxEvent.reply,
      payload: { status, response },
    });
  }
}

/** Only `phoenix`/`heartbeat` is free of the rate limit: `heartbeat` on other topics is not. */
function _isHeartbeat(msg: Message): boolean {
  return msg.topic === PHOENIX_TOPIC && msg.event === PhxEvent.heartbeat;
}
