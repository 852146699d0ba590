/**
 * One connected client, whatever the transport: its identity, joined channels and liveness.
 * Transports hand it decoded frames (or text) and give it a {@link Connection} to write to.
 *
 * @example
 * ```ts
 * const session = switchboard.openSession(connection, { user_id: "ann" });
 * session.receiveText('["1","1","record:1","phx_join",{"name":"Ann"}]');
 * session.close("disconnect");
 * ```
 * @module
 */
import type { Broadcast } from "./broadcast.ts";
import { ChannelInstance } from "./channel_server.ts";
import { type HandlerResult, Reply, type TransportName } from "./channel.ts";
import { type Message, type Payload, PhxEvent } from "./message.ts";
import { decodeFrame, FrameError, type Vsn } from "./serializer.ts";
import { CursorError, formatCursor, parseCursor, type TopicCursor } from "../resume/cursor.ts";
import type { Identity, Switchboard } from "./switchboard.ts";
import { TokenBucket } from "./rate_limit.ts";
import { fieldErrors } from "./validation.ts";

/** The transport's side of a session: how frames reach the client. */
export interface Connection {
  readonly transport: TransportName;
  /** A frame for this client only (reply, push, close, error). */
  sendMessage(msg: Message): void;
  /** A fan-out frame shared by every subscriber of the topic (already encoded once). */
  sendBroadcast(b: Broadcast): void;
  /** Told where a topic starts before its join reply (SSE writes it into its event ids). */
  startTopic?(topic: string, position: TopicCursor): void;
  /** Resolves once the connection is closed (lets a shutdown wait for close frames to go). */
  readonly whenClosed?: Promise<void>;
  /** Ends the connection; `code` follows WebSocket close codes. */
  close(code: number, reason: string): void;
}

/** The result of a join, as the reply carries it. */
export interface JoinResult {
  status: "ok" | "error";
  response: Payload;
  /** True when no channel matches the topic. */
  unmatched?: boolean;
}

let _sessionCounter = 0;

/** See the module documentation. */
export class Session {
  readonly id = `s${++_sessionCounter}`;
  readonly #channels = new Map<string, ChannelInstance>();
  #inbox?: Message[];
  #draining = false;
  #closed = false;
  /** Created with the first counted frame: many sessions (viewers) never send one. */
  #bucket?: TokenBucket;
  /** Frames refused by the rate limit since the last one accepted. */
  #refused = 0;
  /** Clock time of the last frame from the client. */
  lastSeen: number;

  constructor(
    readonly runtime: Switchboard,
    readonly connection: Connection,
    readonly identity: Identity,
    readonly connectParams: Readonly<Record<string, string>>,
    readonly vsn: Vsn = "2.0.0",
  ) {
    this.lastSeen = runtime.clock.now();
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

  /** Decodes one text frame and handles it; bad frames get an error frame, never a crash. */
  receiveText(text: string): void {
    this.lastSeen = this.runtime.clock.now();
    const max = this.runtime.config.maxFrameBytes;
    const size = text.length * 3 > max ? new TextEncoder().encode(text).length : text.length;
    if (size > max) {
      this.runtime.metrics.inc("switchboard_frames_rejected_total", { reason: "too_large" });
      this.connection.close(1009, `frame too large: ${size} bytes, limit ${max}`);
      return;
    }
    let msg: Message;
    try {
      msg = decodeFrame(text, this.vsn);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.runtime.metrics.inc("switchboard_frames_rejected_total", { reason: "malformed" });
      this.send({
        joinRef: null,
        ref: null,
        topic: "phoenix",
        event: PhxEvent.error,
        payload: { reason: "bad_frame", detail: err.message },
      });
      return;
    }
    this.receive(msg);
  }

  /** Queues a decoded message; messages of one session are handled strictly in order. */
  receive(msg: Message): void {
    if (this.#closed) return;
    this.lastSeen = this.runtime.clock.now();
    this.runtime.metrics.inc("switchboard_messages_in_total", { transport: this.transport });
    if (msg.event !== PhxEvent.heartbeat && !this.#takeToken()) {
      this.runtime.metrics.inc("switchboard_frames_rejected_total", { reason: "rate_limited" });
      // A flood far past the burst is not a client to keep talking to.
      if (++this.#refused > this.runtime.config.pushRate.burst * 4) {
        this.runtime.metrics.inc("switchboard_flood_closed_total");
        this.connection.close(1008, "too many messages: flood");
        this.close("flood");
        return;
      }
      this.#reply(msg, msg.joinRef, "error", { reason: "rate_limited" });
      return;
    }
    this.#refused = 0;
    (this.#inbox ??= []).push(msg);
    if (!this.#draining) this.#drain();
  }

  /** Writes a frame for this client. */
  send(msg: Message): void {
    if (this.#closed) return;
    this.runtime.metrics.inc("switchboard_messages_out_total", { transport: this.transport });
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
    const { activate, ...result } = await this.#join(topic, payload, joinRef, resume);
    const frame = { joinRef: result.unmatched ? null : joinRef, ref: joinRef, topic };
    this.#reply(frame, frame.joinRef, result.status, result.response);
    activate?.();
    return result;
  }

  /** Ends every channel (presence leaves) and unregisters; the transport closes the bytes. */
  close(reason = "disconnect"): void {
    if (this.#closed) return;
    this.#closed = true;
    if (reason === "slow_consumer") {
      this.runtime.metrics.inc("switchboard_slow_consumers_total", { transport: this.transport });
    }
    for (const instance of this.#channels.values()) instance.stop(reason);
    this.#channels.clear();
    this.#inbox = undefined;
    this.runtime.unregister(this);
  }

  #takeToken(): boolean {
    const { perSecond, burst } = this.runtime.config.pushRate;
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
          console.error(`session ${this.id}: ${msg.event} on ${msg.topic} failed:`, err);
        }
      }
    } finally {
      this.#draining = false;
    }
  }

  async #handle(msg: Message): Promise<void> {
    if (msg.topic === "phoenix" && msg.event === PhxEvent.heartbeat) {
      return this.#reply(msg, null, "ok", {});
    }
    if (msg.event === PhxEvent.join) {
      const result = await this.#join(msg.topic, msg.payload, msg.joinRef ?? msg.ref);
      this.#reply(msg, result.unmatched ? null : msg.joinRef, result.status, result.response);
      return result.activate?.();
    }
    const instance = this.#channels.get(msg.topic);
    if (!instance) {
      if (msg.event === PhxEvent.leave) return this.#reply(msg, msg.joinRef, "ok", {});
      return this.#reply(msg, null, "error", { reason: "unmatched topic" });
    }
    // Stale: a message for an older instance. v1 clients send no join_ref at all.
    if (msg.joinRef !== null && instance.joinRef !== msg.joinRef) return;
    if (msg.event === PhxEvent.leave) {
      this.#reply(msg, msg.joinRef, "ok", {});
      this.#end(instance, "leave", PhxEvent.close, {});
      return;
    }
    await this.#push(instance, msg);
  }

  /**
   * Runs the join; on success the caller sends the reply, then calls `activate`. `resume` (or a
   * `cursor` join param) replays what the client missed before live messages.
   */
  async #join(
    topic: string,
    payload: Payload,
    joinRef: string | null,
    resume?: TopicCursor,
  ): Promise<JoinResult & { activate?: () => void }> {
    const match = this.runtime.router.match(topic);
    if (!match) {
      return { status: "error", response: { reason: "unmatched topic" }, unmatched: true };
    }
    const limit = this.runtime.config.maxTopicsPerSession;
    if (!this.#channels.has(topic) && this.#channels.size >= limit) {
      return { status: "error", response: { reason: "too_many_topics", limit } };
    }
    const wantsCursor = typeof payload.cursor === "string";
    if (wantsCursor && payload.cursor !== "") {
      try {
        resume ??= parseCursor(payload.cursor as string).get(topic);
      } catch (err) {
        if (!(err instanceof CursorError)) throw err;
        return { status: "error", response: { reason: "bad_cursor", detail: err.message } };
      }
    }
    const previous = this.#channels.get(topic);
    if (previous) this.#end(previous, "rejoin", PhxEvent.close, {});
    const { channel, subtopic } = match;
    let params: unknown = payload;
    if (channel.joinParams) {
      const parsed = channel.joinParams.safeParse(payload);
      if (!parsed.success) {
        return {
          status: "error",
          response: { reason: "invalid_params", errors: fieldErrors(parsed.error) },
        };
      }
      params = parsed.data;
    }
    const instance = new ChannelInstance(this, channel, topic, subtopic, joinRef);
    instance.params = params;
    let result: HandlerResult;
    try {
      result = await channel.join?.(instance, params);
    } catch (err) {
      console.error(`join of ${topic} crashed:`, err);
      instance.stop("crash");
      return { status: "error", response: { reason: "join crashed" } };
    }
    const reply = _toReply(result) ?? new Reply("ok", {});
    if (reply.status === "error" || this.#closed) {
      instance.stop("refused");
      return { status: "error", response: reply.response };
    }
    this.#channels.set(topic, instance);
    this.runtime.metrics.inc("switchboard_joins_total", { transport: this.transport });
    const position = resume ?? this.runtime.hub.head(topic);
    this.connection.startTopic?.(topic, position);
    const response = wantsCursor
      ? { ...reply.response, cursor: formatCursor(new Map([[topic, position]])) }
      : reply.response;
    // The reply must precede every other frame of this join (broadcasts, presence_state).
    const activate = () => {
      if (instance.stopped || this.#closed) return;
      instance.activate(resume, reply.response);
      if (channel.presence) instance.pushPresenceState();
    };
    return { status: "ok", response, activate };
  }

  async #push(instance: ChannelInstance, msg: Message): Promise<void> {
    const channel = instance.definition;
    const handler = channel.events?.[msg.event];
    let result: HandlerResult;
    try {
      if (handler) {
        let payload: unknown = msg.payload;
        if (handler.schema) {
          const parsed = handler.schema.safeParse(msg.payload);
          if (!parsed.success) {
            const errors = fieldErrors(parsed.error);
            return this.#reply(msg, msg.joinRef, "error", { reason: "invalid_payload", errors });
          }
          payload = parsed.data;
        }
        result = await handler.handle(instance, payload as never);
      } else if (channel.handleIn) {
        result = await channel.handleIn(instance, msg.event, msg.payload);
      } else {
        return this.#reply(msg, msg.joinRef, "error", {
          reason: "unknown_event",
          event: msg.event,
        });
      }
    } catch (err) {
      console.error(`${msg.event} on ${msg.topic} crashed the channel:`, err);
      this.runtime.metrics.inc("switchboard_channel_crashes_total");
      this.#end(instance, "crash", PhxEvent.error, { reason: "channel_crash" });
      return;
    }
    const reply = _toReply(result);
    if (reply) this.#reply(msg, msg.joinRef, reply.status, reply.response);
  }

  /** Stops an instance and tells the client with `phx_close` or `phx_error`. */
  #end(instance: ChannelInstance, reason: string, event: string, payload: Payload): void {
    if (this.#channels.get(instance.topic) === instance) this.#channels.delete(instance.topic);
    instance.stop(reason);
    const jr = instance.joinRef;
    this.send({ joinRef: jr, ref: jr, topic: instance.topic, event, payload });
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

function _toReply(result: HandlerResult): Reply | undefined {
  if (result === undefined || result === null) return undefined;
  if (result instanceof Reply) return result;
  return new Reply("ok", result as Payload);
}
