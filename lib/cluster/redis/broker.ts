/**
 * The Redis broker: many nodes act as one through Redis, reached over HTTP with
 * `@upstash/redis` (so it runs where TCP is not available).
 *
 * One shared subscription per node to one bus channel carries everything; the publishes of one
 * tick go out as one `/pipeline` request holding one envelope. Each node also keeps, in Redis,
 * a heartbeat in a sorted set, its presence state per topic in a hash, and the last message of
 * each topic, so late joiners and new nodes see what happened before them.
 *
 * @example
 * ```ts
 * const broker = new RedisBroker({ url, token, nodeId: "a" });
 * const switchboard = new Switchboard({ config, channels, broker });
 * ```
 * @module
 */
import { Redis } from "@upstash/redis";
import type {
  BrokerMessage,
  BrokerState,
  PresenceReplicaHandlers,
  SharedHistory,
} from "../broker.ts";
import { DEFAULT_HISTORY, type HistoryLimits } from "../../resume/history.ts";
import { defaultLogger, describeError, type Logger } from "../../log.ts";
import { type Clock, plainTimers, type Timers } from "../../core/time.ts";
import type { Broker } from "../broker.ts";
import type { PresenceState } from "../../core/presence_types.ts";
import { type BusEnvelope, parseEnvelope, RedisKeys } from "./keys.ts";
import { appendToHistory, readHistory, readLast } from "./history.ts";
import { RedisNodes } from "./nodes.ts";

/** Options of {@link RedisBroker}. */
export interface RedisBrokerOptions {
  url: string;
  token: string;
  nodeId: string;
  /** Prefix of every key and channel (default `switchboard`). */
  prefix?: string;
  /** Heartbeat and self-ping interval (default 1000 ms). */
  pingMs?: number;
  /** A node whose heartbeat is older than this is dead (default 10 000 ms). */
  nodeTtlMs?: number;
  clock?: Clock;
  /** The runtime's timers (default: plain `setInterval`). */
  timers?: Timers;
  /** Where the broker logs (default: warnings and errors to stderr). */
  log?: Logger;
  /** Each topic's history window in Redis (default {@link DEFAULT_HISTORY}). */
  history?: HistoryLimits;
}

type _Subscription = ReturnType<Redis["subscribe"]>;

/** Joins this node to the others through Redis: one bus subscription, one pipeline per tick. */
export class RedisBroker implements Broker {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #nodeId: string;
  /** Distinguishes this run of the node from an earlier run with the same NODE_ID. */
  readonly #epoch = crypto.randomUUID().slice(0, 8);
  readonly #pingMs: number;
  readonly #clock: { now(): number };
  readonly #history: HistoryLimits;
  #onMessage: (msg: BrokerMessage) => void = () => {};
  #presence?: PresenceReplicaHandlers;

  #outbox: BrokerMessage[] = [];
  #presenceOut = new Map<string, PresenceState>();
  #heartbeatDue = true;
  /** The next envelope carries this node's full presence, announced (after an outage). */
  #announceNext = false;
  #flushScheduled = false;
  #flushing = false;
  #seq = 0;

  #subscription?: _Subscription;
  #subscribed = false;
  #subscribedAt = 0;
  #lastPong = 0;
  #lagMs = 0;
  #attempt = 0;
  #resubscribeTimer?: ReturnType<typeof setTimeout>;
  #stopTicker?: () => void;
  readonly #log: Logger;
  #lastSweep = 0;
  readonly #nodes: RedisNodes;
  #lastError?: string;
  #dropped = 0;
  #closed = false;

  constructor(options: RedisBrokerOptions) {
    this.#redis = new Redis({
      url: options.url,
      token: options.token,
      automaticDeserialization: false,
      enableTelemetry: false,
      retry: { retries: 1, backoff: () => 100 },
    });
    this.#nodeId = options.nodeId;
    this.#keys = new RedisKeys(options.prefix ?? "switchboard");
    this.#pingMs = options.pingMs ?? 1000;
    this.#clock = options.clock ?? Date;
    this.#log = options.log ?? defaultLogger;
    this.#nodes = new RedisNodes({
      redis: this.#redis,
      keys: this.#keys,
      selfId: this.#nodeId,
      ttlMs: options.nodeTtlMs ?? 10_000,
      clock: this.#clock,
    });
    this.#history = options.history ?? DEFAULT_HISTORY;
    // An earlier run with this NODE_ID may have left presences: they are not ours any more.
    this.#redis.del(this.#keys.presence(this.#nodeId)).catch((err) => this.#fail(err));
    this.#subscribe();
    this.#stopTicker = (options.timers ?? plainTimers).every(this.#pingMs, () => this.#tick());
  }

  publish(msg: BrokerMessage): void {
    if (this.#closed) return;
    this.#outbox.push(msg);
    this.#scheduleFlush();
  }

  onMessage(handler: (msg: BrokerMessage) => void): void {
    this.#onMessage = handler;
  }

  replicatePresence(topic: string, state: PresenceState): void {
    if (this.#closed) return;
    this.#presenceOut.set(topic, state);
    this.#scheduleFlush();
  }

  onPresence(handlers: PresenceReplicaHandlers): void {
    this.#presence = handlers;
    this.#nodes.presence = handlers;
  }

  fetchLast(topic: string): Promise<BrokerMessage | undefined> {
    return readLast(this.#redis, this.#keys, topic);
  }

  fetchHistory(topic: string): Promise<SharedHistory> {
    return readHistory(this.#redis, this.#keys, this.#history, topic, this.#clock.now());
  }

  state(): BrokerState {
    const now = this.#clock.now();
    const connected = this.#subscribed && now - this.#lastPong < this.#staleAfter();
    return {
      kind: "redis",
      connected,
      lagMs: this.#lagMs,
      pending: this.#outbox.length,
      nodes: this.#nodes.size + 1,
      ...(connected || !this.#lastError ? {} : { error: this.#lastError }),
    };
  }

  /** Messages that could not be handed to Redis (it was unreachable). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Says goodbye (others drop this node's presences at once), then stops. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#stopTicker?.();
    // What is still queued (the last presence leaves, say) goes out before the goodbye.
    while (this.#flushing) await new Promise((r) => setTimeout(r, 5));
    await this.#flush();
    this.#closed = true;
    clearTimeout(this.#resubscribeTimer);
    await this.#subscription?.unsubscribe().catch(() => {});
    const bye: BusEnvelope = {
      v: 1,
      n: this.#nodeId,
      e: this.#epoch,
      s: ++this.#seq,
      t: 0,
      bye: true,
    };
    const p = this.#redis.pipeline();
    p.del(this.#keys.presence(this.#nodeId));
    p.zrem(this.#keys.nodes, this.#nodeId);
    p.publish(this.#keys.bus, JSON.stringify(bye));
    await p.exec().catch(() => {});
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Everything published in this tick goes out in one request.
    setTimeout(() => {
      this.#flushScheduled = false;
      this.#flush();
    }, 0);
  }

  /** Sends the batch; one request in flight at a time keeps publish order per node. */
  async #flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (
        !this.#closed && (this.#outbox.length > 0 || this.#presenceOut.size > 0 ||
          this.#heartbeatDue)
      ) {
        const messages = this.#outbox;
        const presence = this.#presenceOut;
        const heartbeat = this.#heartbeatDue;
        const announce = this.#announceNext;
        this.#outbox = [];
        this.#presenceOut = new Map();
        this.#heartbeatDue = false;
        this.#announceNext = false;
        try {
          await this.#send(messages, presence, heartbeat, announce);
        } catch (err) {
          this.#fail(err);
          this.#dropped += messages.length;
          // Presence is state, not a stream: resend the newest state once Redis answers.
          for (const [topic, state] of presence) {
            if (!this.#presenceOut.has(topic)) this.#presenceOut.set(topic, state);
          }
          // The clients' diffs went down with this batch: the receivers must derive them.
          this.#announceNext ||= announce || presence.size > 0;
          break;
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  async #send(
    messages: BrokerMessage[],
    presence: Map<string, PresenceState>,
    heartbeat: boolean,
    announce: boolean,
  ): Promise<void> {
    const now = this.#clock.now();
    const envelope: BusEnvelope = { v: 1, n: this.#nodeId, e: this.#epoch, s: ++this.#seq, t: now };
    if (announce) envelope.a = true;
    if (messages.length) envelope.m = messages;
    if (presence.size) envelope.p = Object.fromEntries(presence);
    const p = this.#redis.pipeline();
    for (const m of messages) {
      // The hub numbers what belongs in history (seq ≥ 1); presence events have seq 0.
      if (m.seq > 0) appendToHistory(p, this.#keys, this.#history, m);
    }
    if (presence.size) {
      const key = this.#keys.presence(this.#nodeId);
      const fields: Record<string, string> = {
        _meta: JSON.stringify({ epoch: this.#epoch, seq: envelope.s }),
      };
      const gone: string[] = [];
      for (const [topic, state] of presence) {
        if (Object.keys(state).length === 0) gone.push(topic);
        else fields[topic] = JSON.stringify(state);
      }
      p.hset(key, fields);
      if (gone.length) p.hdel(key, ...gone);
    }
    if (heartbeat) p.zadd(this.#keys.nodes, { score: now, member: this.#nodeId });
    p.publish(this.#keys.bus, JSON.stringify(envelope));
    await p.exec();
  }

  #subscribe(): void {
    if (this.#closed) return;
    this.#subscription?.unsubscribe().catch(() => {});
    this.#subscribed = false;
    const subscription = this.#redis.subscribe<string>([this.#keys.bus]);
    this.#subscription = subscription;
    this.#subscribedAt = this.#clock.now();
    subscription.on("subscribe", () => {
      if (subscription !== this.#subscription) return;
      this.#subscribed = true;
      this.#lastPong = this.#clock.now();
      this.#recover().catch((err) => this.#fail(err));
    });
    subscription.on("message", ({ message }) => this.#receive(String(message)));
    subscription.on("error", (err) => {
      if (subscription !== this.#subscription) return;
      this.#fail(err);
      this.#resubscribeLater();
    });
  }

  #resubscribeLater(): void {
    if (this.#closed || this.#resubscribeTimer) return;
    this.#subscribed = false;
    // Jittered exponential backoff: a Redis restart does not bring every node back at once.
    const base = Math.min(5_000, 250 * 2 ** this.#attempt++);
    this.#resubscribeTimer = setTimeout(() => {
      this.#resubscribeTimer = undefined;
      this.#subscribe();
    }, base * (0.5 + Math.random()));
  }

  /**
   * (Re)connected, or heard again after a silence: read the other nodes' presence from Redis,
   * and send all of ours, announced, since the others may have dropped it meanwhile.
   */
  async #recover(): Promise<void> {
    this.#attempt = 0;
    this.#lastError = undefined;
    this.#announceNext = true;
    this.#presence?.resync();
    this.#heartbeatDue = true;
    this.#scheduleFlush();
    await this.#nodes.loadLive();
  }

  #receive(raw: string): void {
    const envelope = parseEnvelope(raw);
    if (!envelope) return;
    const now = this.#clock.now();
    if (envelope.n === this.#nodeId) {
      if (envelope.e === this.#epoch) {
        const silence = now - this.#lastPong;
        this.#lastPong = now;
        this.#lagMs = Math.max(0, now - envelope.t);
        if (silence > this.#staleAfter()) this.#recover().catch((err) => this.#fail(err));
      }
      return;
    }
    if (envelope.t) this.#lagMs = Math.max(0, now - envelope.t);
    this.#nodes.heard(envelope)?.catch((err) => this.#fail(err));
    for (const m of envelope.m ?? []) {
      try {
        this.#onMessage(m);
      } catch (err) {
        this.#log.error("delivering a message from another node failed", {
          error: describeError(err),
        });
      }
    }
  }

  #tick(): void {
    this.#heartbeatDue = true;
    this.#scheduleFlush();
    const now = this.#clock.now();
    const silent = now - Math.max(this.#lastPong, this.#subscribedAt);
    // The client does not report a subscription stream that ended: our own pings tell us.
    if (silent > this.#staleAfter()) {
      this.#lastError ??= "no message on the subscription for " + silent + " ms";
      this.#resubscribeLater();
    }
    // A node not heard from (its heartbeat envelopes) within the TTL is dead.
    this.#nodes.expire();
    if (now - this.#lastSweep >= this.#nodes.ttlMs / 2) {
      this.#lastSweep = now;
      this.#nodes.sweepDead().catch((err) => this.#fail(err));
    }
  }

  #staleAfter(): number {
    return this.#pingMs * 3 + 2_000;
  }

  #fail(err: unknown): void {
    this.#lastError = err instanceof Error ? err.message : String(err);
  }
}
