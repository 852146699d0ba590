/**
 * The per-channel server (Phoenix's `channel/server.ex`): one joined topic on one session. It
 * dispatches client pushes to the channel's events and `handleIn`, writes the replies, is the
 * {@link ChannelContext} the callbacks see and the subscriber the hub delivers the topic's
 * broadcasts to (after replaying what a resuming client missed), and runs `terminate` when it
 * ends. The join that creates it is `channel_join.ts`.
 *
 * Internal to the library: channel authors only ever see the context.
 *
 * @example
 * ```ts
 * const server = new ChannelServer({ owner: session, definition, topic: "record:1", subtopic: "1", joinRef: "1", params: {} });
 * server.activate();
 * ```
 * @module
 */
import type { TokenClaims } from "./identity.ts";
import { describeError } from "../log.ts";
import { MessageTooLargeError } from "./broker.ts";
import type { TopicCursor } from "../resume/cursor.ts";
import type { Broadcast } from "./broadcast.ts";
import { PacedReplay, type ReplayHost, replayMissed } from "./replay_pacing.ts";
import { DeltaReceiver } from "./delta.ts";
import {
  type ChannelContext,
  type ChannelDefinition,
  type HandlerResult,
  type TokenRefresh,
} from "./channel.ts";
import type { Connection, TransportName } from "./connection.ts";
import type { Subscriber } from "./hub.ts";
import type { Message, Payload } from "./message.ts";
import type { Identity, SessionServices } from "./session_services.ts";
import type { PresenceMeta, PresenceState } from "./presence.ts";
import { ControlEvent, EndReason, PhxEvent, ReplyReason } from "./protocol.ts";
import { checkEventName, messageBody, toReply } from "./channel_output.ts";

export { toReply } from "./channel_output.ts";
import { checkOutbound, InvalidPayloadError } from "./outbound.ts";
import { answerPageRequest, PRESENCE_PAGE_EVENT } from "./crowd.ts";
import { fieldErrors } from "./validation.ts";
import { LimitError, whenRefused } from "./limits.ts";
import { InstanceQuota } from "./instance_quota.ts";

/** What a channel server needs of the session that owns it. */
export interface ChannelOwner {
  readonly node: SessionServices;
  readonly identity: Identity;
  readonly connectParams: Readonly<Record<string, string>>;
  readonly connection: Connection;
  readonly closed: boolean;
  /** Writes a frame for this client. */
  send(msg: Message): void;
  /** Verifies a fresh token and makes it the session's (see {@link ChannelContext.refreshToken}). */
  refreshToken(token: string): Promise<TokenRefresh>;
  /** Told when the presences of its channels changed (a session snapshot holds them). */
  changed?(): void;
}

/** The fields of a {@link ChannelServer}. */
export interface ChannelServerInit {
  owner: ChannelOwner;
  definition: ChannelDefinition<unknown>;
  topic: string;
  subtopic: string;
  joinRef: string | null;
  params: unknown;
  /** The user whose topic count this instance holds (see `user_quotas.ts`), if any. */
  quotaUser?: string;
  /** The client asked for deltas, the channel allows them and the transport carries them. */
  deltas?: boolean;
}

let _serverCounter = 0;

/** One joined topic on one session: the channel's callbacks, its context, its subscription. */
export class ChannelServer implements ChannelContext<unknown>, Subscriber {
  readonly id = `ch${++_serverCounter}`;
  readonly owner: ChannelOwner;
  readonly definition: ChannelDefinition<unknown>;
  readonly topic: string;
  readonly subtopic: string;
  readonly joinRef: string | null;
  readonly params: unknown;
  #assigns?: Record<string, unknown>;
  /** Presence tracks made during `join` wait for the join's ok reply (Phoenix's after_join). */
  #deferredTracks?: [string, Payload][];
  #active = false;
  /** Allocated on first track: most subscribers (status viewers) never track anything. */
  #trackedKeys?: Set<string>;
  #stopped = false;
  /** Live broadcasts held back while a replay (or a reset) is running. */
  #held?: PacedReplay;
  /** The join reply: a reset's state unless the channel has `resetState`. */
  #joinState: Payload = {};
  /** This instance's share of its user's bounds (issue 21). */
  readonly #quota: InstanceQuota;
  /** What the client received last, when it takes deltas (`delta.ts`). */
  readonly #delta?: DeltaReceiver;

  constructor(init: ChannelServerInit) {
    this.owner = init.owner;
    this.definition = init.definition;
    this.topic = init.topic;
    this.subtopic = init.subtopic;
    this.joinRef = init.joinRef;
    this.params = init.params;
    this.#quota = InstanceQuota.of(init.owner.node, init.quotaUser, this.id);
    if (init.deltas) this.#delta = new DeltaReceiver();
  }

  get #node(): SessionServices {
    return this.owner.node;
  }

  get assigns(): Record<string, unknown> {
    return this.#assigns ??= {};
  }

  get userId(): string {
    return this.owner.identity.userId;
  }

  get claims(): Readonly<TokenClaims> | undefined {
    return this.owner.identity.claims;
  }

  get connectParams(): Readonly<Record<string, string>> {
    return this.owner.connectParams;
  }

  get transport(): TransportName {
    return this.owner.connection.transport;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** What a session snapshot keeps of this instance (`session_snapshot.ts`). */
  snapshot(): { presences: [string, PresenceMeta][]; deltas: boolean } {
    const presences: [string, PresenceMeta][] = [];
    for (const key of this.#trackedKeys ?? []) {
      const meta = this.#node.presence.get(this.topic, this.id, key);
      if (meta) presences.push([key, meta]);
    }
    return { presences, deltas: this.#delta !== undefined };
  }

  /** Back after a wake (`session_snapshot.ts`): subscribed, presences as they were, silently. */
  restore(presences: readonly (readonly [string, PresenceMeta])[]): void {
    this.#node.hub.add(this.topic, this);
    this.#active = true;
    this.#trackedKeys = new Set(presences.map(([key]) => key));
    for (const [key, meta] of presences) {
      this.#quota.reserveMeta(key, meta);
      this.#node.presence.restore(this.topic, this.id, key, meta);
    }
  }

  /**
   * Subscribes to the topic and applies the presence tracked during join. With `resume`, the
   * messages missed since that position are replayed first; live ones that arrive meanwhile
   * wait, and none is sent twice. If the window no longer holds them all, the client gets a
   * `reset` event with `state` (the join reply) instead.
   */
  activate(resume?: TopicCursor, state: Payload = {}): void {
    this.#joinState = state;
    if (resume) replayMissed(this.#replayHost(), resume, state);
    this.#node.hub.add(this.topic, this);
    const tracks = this.#deferredTracks ?? [];
    this.#deferredTracks = undefined;
    this.#active = true;
    // Checked when `join` tracked them; a topic that filled up since refuses them here.
    for (const [key, meta] of tracks) whenRefused(() => this.track(key, meta), this.#node.metrics);
  }

  /**
   * Dispatches a client push to the channel's event handler (payload validated by its schema),
   * or `handleIn`, and writes the reply. A crash ends the server with `phx_error`; the returned
   * promise then resolves to false.
   */
  async handlePush(msg: Message): Promise<boolean> {
    const channel = this.definition;
    // Crowd presence (crowd.ts): a page of the member list, for channels with presence.
    if (msg.event === PRESENCE_PAGE_EVENT && this.#hasPresence()) {
      const { status, response } = answerPageRequest(this.#node.presence, this.topic, msg.payload);
      this.reply(msg, status, response);
      return true;
    }
    const handler = channel.events?.[msg.event];
    const bytes = msg.binary;
    let result: HandlerResult;
    try {
      if (bytes !== undefined && !handler?.binary) {
        // Only events declared binary take bytes: handleIn and JSON events never see them.
        const known = handler !== undefined || channel.handleIn !== undefined;
        const reason = known ? ReplyReason.binaryNotAccepted : ReplyReason.unknownEvent;
        this.reply(msg, "error", { reason, event: msg.event });
        return true;
      }
      if (handler) {
        let payload: unknown = msg.payload;
        if (handler.schema) {
          const parsed = handler.schema.safeParse(msg.payload);
          if (!parsed.success) {
            const errors = fieldErrors(parsed.error);
            this.reply(msg, "error", { reason: ReplyReason.invalidPayload, errors });
            return true;
          }
          payload = parsed.data;
        }
        result = await handler.handle(this, payload as never, bytes);
      } else if (channel.handleIn) {
        result = await channel.handleIn(this, msg.event, msg.payload);
      } else {
        this.reply(msg, "error", { reason: ReplyReason.unknownEvent, event: msg.event });
        return true;
      }
    } catch (err) {
      if (err instanceof MessageTooLargeError) {
        this.reply(msg, "error", { reason: ReplyReason.messageTooLarge, detail: err.message });
        return true;
      }
      if (err instanceof LimitError) {
        this.#node.metrics.inc("switchboard_refused_total", { reason: err.reason });
        this.reply(msg, "error", { reason: err.reason, detail: err.message });
        return true;
      }
      if (err instanceof InvalidPayloadError) {
        // The handler sent what its channel's `messages` schema refuses: nothing went out.
        const { errors, message: detail } = err;
        this.reply(msg, "error", { reason: ReplyReason.invalidPayload, errors, detail });
        return true;
      }
      this.#node.log.error("a channel callback crashed", {
        topic: msg.topic,
        event: msg.event,
        error: describeError(err),
      });
      this.#node.metrics.inc("switchboard_channel_crashes_total");
      this.end(EndReason.crash, PhxEvent.error, { reason: ReplyReason.channelCrash });
      return false;
    }
    const reply = toReply(result);
    if (reply && !this.#stopped) this.reply(msg, reply.status, reply.response);
    // The handler may have closed the instance (`ctx.close()`): the session forgets it.
    return !this.#stopped;
  }

  /**
   * Replies to a client message of this instance (echoing its ref and this join_ref); bytes
   * make a binary reply.
   */
  reply(msg: Pick<Message, "ref">, status: string, response: Payload | Uint8Array): void {
    const binary = response instanceof Uint8Array;
    this.owner.send({
      joinRef: this.joinRef,
      ref: msg.ref,
      topic: this.topic,
      event: PhxEvent.reply,
      payload: binary ? { status } : { status, response },
      binary: binary ? response : undefined,
    });
  }

  /** Stops the server and tells the client with `phx_close` or `phx_error`. */
  end(reason: string, event: string, payload: Payload): void {
    this.stop(reason);
    const jr = this.joinRef;
    this.owner.send({ joinRef: jr, ref: jr, topic: this.topic, event, payload });
  }

  /** What a resume's replay needs of this instance (`replay_pacing.ts`). */
  #replayHost(): ReplayHost {
    return {
      topic: this.topic,
      connection: this.owner.connection,
      node: this.#node,
      stopped: () => this.#stopped,
      forward: (b) => this.#forward(b),
      reset: (reason, state) => this.#send(ControlEvent.reset, { reason, state }),
      freshState: this.definition.resetState && (() => this.definition.resetState!(this)),
      hold: (replay) => this.#held = replay,
    };
  }

  deliver(b: Broadcast): void {
    if (this.#crowdHandled(b)) return;
    if (this.#held) this.#held.hold(b);
    else this.#forward(b);
  }

  /**
   * Live messages of this topic were lost on their way from another node: the client gets a
   * `reset` with the current state and its position moves to now; live messages that arrive
   * meanwhile follow it.
   */
  lost(): void {
    if (this.#stopped || this.#held) return;
    const held = new PacedReplay(this.owner.connection, Infinity);
    this.#held = held;
    const finish = () => {
      this.#held = undefined;
      for (const b of held.held) this.#forward(b);
    };
    (async () => {
      const state = this.definition.resetState
        ? await this.definition.resetState(this)
        : this.#joinState;
      if (this.#stopped) return;
      this.#node.metrics.inc("switchboard_resume_resets_total");
      this.owner.connection.startTopic?.(this.topic, this.#node.hub.head(this.topic));
      this.#send(ControlEvent.reset, { reason: ReplyReason.messagesLost, state });
    })().catch((err) => {
      this.#node.log.error("a reset after lost messages failed", {
        topic: this.topic,
        error: describeError(err),
      });
    }).finally(finish);
  }

  #forward(b: Broadcast): void {
    const intercept = this.definition.handleOut?.[b.event];
    const connection = this.owner.connection;
    if (!intercept) {
      if (b.binary !== undefined && !connection.binary) return this.#skipBinary();
      const delta = this.#delta?.take(b);
      if (delta === undefined) return connection.sendBroadcast(b);
      return connection.sendDelta!(b, delta);
    }
    // A payload made for this client alone: the next message cannot be a delta against it.
    this.#delta?.forget();
    const payload = intercept(this, b.payload);
    if (payload === null) return;
    this.owner.send({
      joinRef: this.joinRef,
      ref: null,
      topic: this.topic,
      event: b.event,
      payload,
    });
  }

  #skipBinary(): void {
    this.#delta?.forget();
    const transport = this.owner.connection.transport;
    this.#node.metrics.inc("switchboard_binary_skipped_total", { transport });
  }

  push(event: string, payload: Payload | Uint8Array, meta?: Payload): void {
    checkEventName("push", event, [payload, meta], this.#node.options.maxPayloadDepth);
    if (!(payload instanceof Uint8Array)) {
      checkOutbound(this.definition, this.topic, event, payload);
    }
    this.#send(event, payload, meta);
  }

  /** Pushes to this client without the check: the library's own control events use it. */
  #send(event: string, payload: Payload | Uint8Array, meta?: Payload): void {
    if (this.#stopped) return;
    // The client counts a push (or a reset) as the topic's latest payload: no delta against it.
    this.#delta?.forget();
    const body = messageBody(payload, meta);
    this.owner.send({ joinRef: this.joinRef, ref: null, topic: this.topic, event, ...body });
  }

  /** Pushes the topic's `presence_state` (encoded once per batch window, see the tracker). */
  pushPresenceState(): void {
    this.#pushState(true);
  }

  /**
   * Crowd presence (crowd.ts): another node's diffs are dropped (each node tells its own
   * clients), and the state a topic sends everyone on becoming a crowd becomes this client's
   * own: the visible set and its own keys. True when `b` was handled here.
   */
  #crowdHandled(b: Broadcast): boolean {
    const diff = b.event === PhxEvent.presenceDiff;
    if (!diff && b.event !== PhxEvent.presenceState) return false;
    if (!this.#node.presence.isCrowd(this.topic)) return false;
    if (diff) return b.origin.nodeId !== this.#node.hub.nodeId;
    if (!this.#trackedKeys?.size || !this.#hasPresence()) return false;
    this.#pushState(false);
    return true;
  }

  /** Pushes the topic's `presence_state` (and a crowd's count to a joiner, `withCount`). */
  #pushState(withCount: boolean): void {
    if (this.#stopped) return;
    this.owner.send({
      joinRef: this.joinRef,
      ref: null,
      topic: this.topic,
      event: PhxEvent.presenceState,
      payload: {},
      payloadJson: this.#node.presence.stateJson(this.topic, this.#trackedKeys),
    });
    // A crowd's joiner is told the count at once, not at the next change.
    const occupancy = withCount && this.#node.presence.occupancy(this.topic);
    if (occupancy) this.#send(ControlEvent.occupancy, { ...occupancy });
  }

  #hasPresence(): boolean {
    const presence = this.definition.presence;
    return presence === true || (typeof presence === "function" && presence(this));
  }

  broadcast(event: string, payload: Payload | Uint8Array, meta?: Payload): void {
    checkEventName("broadcast", event, [payload, meta], this.#node.options.maxPayloadDepth);
    const body = messageBody(payload, meta);
    if (!body.binary) checkOutbound(this.definition, this.topic, event, body.payload);
    this.#node.hub.broadcast(this.topic, event, body.payload, { binary: body.binary });
  }

  broadcastFrom(event: string, payload: Payload | Uint8Array, meta?: Payload): void {
    checkEventName("broadcastFrom", event, [payload, meta], this.#node.options.maxPayloadDepth);
    const body = messageBody(payload, meta);
    if (!body.binary) checkOutbound(this.definition, this.topic, event, body.payload);
    const options = { exceptId: this.id, binary: body.binary };
    this.#node.hub.broadcast(this.topic, event, body.payload, options);
  }

  refreshToken(token: string): Promise<TokenRefresh> {
    return this.owner.refreshToken(token);
  }

  close(): void {
    this.end(EndReason.closed, PhxEvent.close, {});
  }

  track(key: string, meta: Payload): void {
    if (this.#stopped) return;
    if (!this.#active) {
      this.#quota.reserveMeta(key, meta);
      (this.#deferredTracks ??= []).push([key, meta]);
      return;
    }
    const presence = this.#node.presence;
    this.#quota.withMeta(key, meta, () => presence.track(this.topic, this.id, key, meta));
    (this.#trackedKeys ??= new Set()).add(key);
    this.owner.changed?.();
  }

  updatePresence(key: string, meta: Payload): void {
    const presence = this.#node.presence;
    const old = presence.get(this.topic, this.id, key);
    this.#quota.withMeta(key, meta, () => presence.update(this.topic, this.id, key, meta), old);
    this.owner.changed?.();
  }

  untrack(key: string): void {
    this.#node.presence.untrack(this.topic, this.id, key, this.#leaveGrace());
    this.#trackedKeys?.delete(key);
    this.#quota.releaseMeta(key);
    this.owner.changed?.();
  }

  presenceOf(key: string): Payload | undefined {
    return this.#node.presence.get(this.topic, this.id, key);
  }

  presence(): PresenceState {
    return this.#node.presence.list(this.topic);
  }

  lastMessage(): Promise<Broadcast | undefined> {
    return this.#node.hub.fetchLast(this.topic);
  }

  /** The channel's own leave grace, if it sets one (else the tracker's default applies). */
  #leaveGrace(): { leaveGraceMs?: number } {
    return { leaveGraceMs: this.definition.presenceLeaveGraceMs };
  }

  /** Ends the instance: runs `terminate`, leaves presence, unsubscribes. Idempotent. */
  stop(reason: string): void {
    if (this.#stopped) return;
    try {
      this.definition.terminate?.(this, reason);
    } catch (err) {
      this.#node.log.error("a channel's terminate failed", {
        topic: this.topic,
        error: describeError(err),
      });
    }
    this.#stopped = true;
    this.#deferredTracks = undefined;
    for (const key of this.#trackedKeys ?? []) {
      this.#node.presence.untrack(this.topic, this.id, key, this.#leaveGrace());
    }
    this.#trackedKeys = undefined;
    this.#quota.release();
    this.#node.hub.remove(this.topic, this);
  }
}
