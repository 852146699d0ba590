/**
 * One joined channel on one session: the {@link ChannelContext} the callbacks see, and the
 * subscriber the hub delivers the topic's broadcasts to.
 * @module
 */
import type { Broadcast } from "./broadcast.ts";
import type { TokenClaims } from "../auth.ts";
import type { TopicCursor } from "../resume/cursor.ts";
import type { ChannelContext, ChannelDefinition, TransportName } from "./channel.ts";
import type { Subscriber } from "./hub.ts";
import type { Payload } from "./message.ts";
import type { PresenceState } from "./presence.ts";
import type { Session } from "./session.ts";

let _instanceCounter = 0;

/** See the module documentation. Internal to the library: channels only see the context. */
export class ChannelInstance implements ChannelContext<unknown>, Subscriber {
  readonly id = `ch${++_instanceCounter}`;
  #assigns?: Record<string, unknown>;
  params: unknown = {};
  /** Presence tracks made during `join` wait for the join's ok reply (Phoenix's after_join). */
  #deferredTracks?: [string, Payload][];
  #active = false;
  /** Allocated on first track: most subscribers (status viewers) never track anything. */
  #trackedKeys?: Set<string>;
  #stopped = false;
  /** Live broadcasts held back while a replay is running. */
  #held?: Broadcast[];

  constructor(
    readonly session: Session,
    readonly definition: ChannelDefinition<unknown>,
    readonly topic: string,
    readonly subtopic: string,
    readonly joinRef: string | null,
  ) {}

  get assigns(): Record<string, unknown> {
    return this.#assigns ??= {};
  }

  get userId(): string {
    return this.session.userId;
  }

  get claims(): Readonly<TokenClaims> | undefined {
    return this.session.identity.claims;
  }

  get connectParams(): Readonly<Record<string, string>> {
    return this.session.connectParams;
  }

  get transport(): TransportName {
    return this.session.transport;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Subscribes to the topic and applies the presence tracked during join. With `resume`, the
   * messages missed since that position are replayed first; live ones that arrive meanwhile
   * wait, and none is sent twice. If the window no longer holds them all, the client gets a
   * `reset` event with `state` (the join reply) instead.
   */
  activate(resume?: TopicCursor, state: Payload = {}): void {
    if (resume) this.#replay(resume, state);
    this.session.runtime.hub.add(this.topic, this);
    const tracks = this.#deferredTracks ?? [];
    this.#deferredTracks = undefined;
    this.#active = true;
    for (const [key, meta] of tracks) this.track(key, meta);
  }

  async #replay(resume: TopicCursor, state: Payload): Promise<void> {
    const held: Broadcast[] = [];
    this.#held = held;
    const hub = this.session.runtime.hub;
    const seen = new Map(resume.streams);
    try {
      const { messages, complete } = await hub.replay(this.topic, resume);
      if (this.#stopped) return;
      if (complete) {
        for (const b of messages) {
          seen.set(b.stream, b.seq);
          this.#forward(b);
        }
      } else {
        this.session.runtime.metrics.inc("switchboard_resume_resets_total");
        this.session.connection.startTopic?.(this.topic, hub.head(this.topic));
        this.push("reset", { reason: "history_window_exceeded", state });
      }
    } catch (err) {
      console.error(`replay of ${this.topic} failed:`, err);
      this.session.connection.startTopic?.(this.topic, hub.head(this.topic));
      this.push("reset", { reason: "history_unavailable", state });
    } finally {
      this.#held = undefined;
    }
    for (const b of held) {
      if (b.seq > 0 && (seen.get(b.stream) ?? 0) >= b.seq) continue;
      this.#forward(b);
    }
  }

  deliver(b: Broadcast): void {
    if (this.#held) this.#held.push(b);
    else this.#forward(b);
  }

  #forward(b: Broadcast): void {
    const intercept = this.definition.handleOut?.[b.event];
    if (!intercept) return this.session.connection.sendBroadcast(b);
    const payload = intercept(this, b.payload);
    if (payload === null) return;
    this.session.send({
      joinRef: this.joinRef,
      ref: null,
      topic: this.topic,
      event: b.event,
      payload,
    });
  }

  push(event: string, payload: Payload): void {
    if (this.#stopped) return;
    this.session.send({ joinRef: this.joinRef, ref: null, topic: this.topic, event, payload });
  }

  /** Pushes the topic's `presence_state` (encoded once per batch window, see the tracker). */
  pushPresenceState(): void {
    if (this.#stopped) return;
    this.session.send({
      joinRef: this.joinRef,
      ref: null,
      topic: this.topic,
      event: "presence_state",
      payload: {},
      payloadJson: this.session.runtime.presence.stateJson(this.topic),
    });
  }

  broadcast(event: string, payload: Payload): void {
    this.session.runtime.hub.broadcast(this.topic, event, payload);
  }

  broadcastFrom(event: string, payload: Payload): void {
    this.session.runtime.hub.broadcast(this.topic, event, payload, this.id);
  }

  track(key: string, meta: Payload): void {
    if (this.#stopped) return;
    if (!this.#active) {
      (this.#deferredTracks ??= []).push([key, meta]);
      return;
    }
    this.session.runtime.presence.track(this.topic, this.id, key, meta);
    (this.#trackedKeys ??= new Set()).add(key);
  }

  updatePresence(key: string, meta: Payload): void {
    this.session.runtime.presence.update(this.topic, this.id, key, meta);
  }

  untrack(key: string): void {
    this.session.runtime.presence.untrack(this.topic, this.id, key);
    this.#trackedKeys?.delete(key);
  }

  presenceOf(key: string): Payload | undefined {
    return this.session.runtime.presence.get(this.topic, this.id, key);
  }

  presence(): PresenceState {
    return this.session.runtime.presence.list(this.topic);
  }

  lastMessage(): Promise<Broadcast | undefined> {
    return this.session.runtime.hub.fetchLast(this.topic);
  }

  /** Ends the instance: runs `terminate`, leaves presence, unsubscribes. Idempotent. */
  stop(reason: string): void {
    if (this.#stopped) return;
    try {
      this.definition.terminate?.(this, reason);
    } catch (err) {
      console.error(`terminate of ${this.topic} failed:`, err);
    }
    this.#stopped = true;
    this.#deferredTracks = undefined;
    for (const key of this.#trackedKeys ?? []) {
      this.session.runtime.presence.untrack(this.topic, this.id, key);
    }
    this.#trackedKeys = undefined;
    this.session.runtime.hub.remove(this.topic, this);
  }
}
