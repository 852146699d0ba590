/**
 * The Redis broker: many nodes act as one through Redis, reached over HTTP with
 * `@upstash/redis` (so it runs where TCP is not available).
 *
 * One shared subscription per node to one bus channel carries everything; what a node publishes
 * in one tick goes out as one `/pipeline` request, its messages packed into envelopes that stay
 * well under the subscription reader's 1 MB line limit. Messages are numbered per node run; a
 * node that missed some (an outage) asks for them again and gets them in order, or resets its
 * clients when they are gone (see `../catch_up.ts`). Each node also keeps, in Redis, its entry
 * in the node directory, its presence state per topic in a hash, and the history and last
 * message of each topic, every key with a lifetime.
 *
 * Redis commands (Upstash bills each): an idle node sends one heartbeat `PUBLISH` every
 * `pingMs` and refreshes its directory entry every `directoryMs` (4 commands); a broadcast
 * costs 3 commands plus one `PUBLISH` per envelope (shared by everything of its tick). See
 * {@link idleCommandsPerDay}.
 *
 * @example
 * ```ts
 * const broker = new RedisBroker({ url, token, nodeId: "a" });
 * const switchboard = new Switchboard({ config, channels, broker });
 * ```
 * @module
 */
import { Redis } from "@upstash/redis";
import {
  type Broker,
  type BrokerLoss,
  type BrokerMessage,
  type BrokerState,
  MessageTooLargeError,
} from "../broker.ts";
import type { PresenceReplicaHandlers } from "../broker.ts";
import { DEFAULT_HISTORY, type Heads, type HistoryLimits } from "../../resume/history.ts";
import { defaultLogger, describeError, type Logger } from "../../log.ts";
import { type Clock, plainTimers, type Timers } from "../../core/time.ts";
import type { PresenceState } from "../../core/presence_types.ts";
import {
  type BusEnvelope,
  bytesOver,
  type CatchUpRequest,
  type EnvelopeHeader,
  envelopeJson,
  packByBytes,
  parseEnvelope,
} from "../envelope.ts";
import { InboundRuns, SentLog } from "../catch_up.ts";
import { RedisKeys } from "./keys.ts";
import { appendLifetimes, appendToHistory, readHeads, readLast, readRecent } from "./history.ts";
import { RedisNodes } from "./nodes.ts";

/** Options of {@link RedisBroker}. */
export interface RedisBrokerOptions {
  url: string;
  token: string;
  nodeId: string;
  /** Prefix of every key and channel (default `switchboard`). */
  prefix?: string;
  /**
   * Heartbeat interval: an idle node publishes one heartbeat (1 command) this often, which also
   * checks its own subscription (default 10 000 ms). A busy node's envelopes are its heartbeats.
   */
  pingMs?: number;
  /** A node not heard from for this long is dead (default 25 000 ms: noticed within 26 s). */
  nodeTtlMs?: number;
  /**
   * Directory refresh interval (4 commands; default 3 heartbeats, 30 s; the keys it refreshes
   * live 3 times as long). It also notices a Redis that lost this node's keys.
   */
  directoryMs?: number;
  /** Own envelope not back this long after it was sent: resubscribe (default 3 000 ms). */
  echoTimeoutMs?: number;
  /** Lifetime of `<prefix>:last:<topic>` (default 7 days: a status page updated rarely). */
  lastTtlMs?: number;
  /** Largest message the bus carries, encoded (default 512 KiB); larger ones are refused. */
  maxMessageBytes?: number;
  /** Envelopes are packed up to this many bytes (default 128 KiB). */
  envelopeBytes?: number;
  clock?: Clock;
  /** The runtime's timers (default: plain `setInterval`). */
  timers?: Timers;
  /** Where the broker logs (default: warnings and errors to stderr). */
  log?: Logger;
  /** Each topic's history window in Redis (default {@link DEFAULT_HISTORY}). */
  history?: HistoryLimits;
}

/** The schedule's defaults, used by {@link idleCommandsPerDay} and the README. */
export const REDIS_BROKER_DEFAULTS = Object.freeze({
  pingMs: 10_000,
  nodeTtlMs: 25_000,
  echoTimeoutMs: 3_000,
  lastTtlMs: 7 * 24 * 3_600_000,
  maxMessageBytes: 512 * 1024,
  envelopeBytes: 128 * 1024,
});

/** Commands in one directory refresh (ZADD, ZREMRANGEBYSCORE, 2 × PEXPIRE). */
const _DIRECTORY_COMMANDS = 4;

/**
 * Redis commands an idle node issues per day by its schedule: one heartbeat `PUBLISH` per
 * `pingMs`, one directory refresh per `directoryMs`.
 */
export function idleCommandsPerDay(
  schedule: { pingMs?: number; directoryMs?: number } = {},
): number {
  const day = 86_400_000;
  const ping = schedule.pingMs ?? REDIS_BROKER_DEFAULTS.pingMs;
  const directory = schedule.directoryMs ?? ping * 3;
  return day / ping + (day / directory) * _DIRECTORY_COMMANDS;
}

type _Subscription = ReturnType<Redis["subscribe"]>;

interface _Queued {
  index: number;
  msg: BrokerMessage;
  json: string;
}

/** What one flush sends in one request. */
interface _Batch {
  messages: _Queued[];
  presence: Map<string, PresenceState>;
  requests: CatchUpRequest[];
  resendFrom?: number;
  directory: boolean;
  announce: boolean;
}

/** Messages kept for retry while Redis cannot be reached (beyond: re-sent on request). */
const _RETRY_LIMIT = 10_000;

/** How long a silent node run is remembered for catch-up (an hour). */
const _RUN_MEMORY_MS = 3_600_000;

/** Joins this node to the others through Redis: one bus subscription, one pipeline per tick. */
export class RedisBroker implements Broker {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #nodeId: string;
  /** Distinguishes this run of the node from an earlier run with the same NODE_ID. */
  readonly #epoch = crypto.randomUUID().slice(0, 8);
  readonly #pingMs: number;
  readonly #directoryMs: number;
  readonly #echoTimeoutMs: number;
  readonly #lastTtlMs: number;
  readonly #envelopeBytes: number;
  readonly maxMessageBytes: number;
  readonly #clock: Clock;
  readonly #history: HistoryLimits;
  readonly #log: Logger;
  readonly #nodes: RedisNodes;
  readonly #sent: SentLog;
  readonly #inbound: InboundRuns;
  #onMessage: (msg: BrokerMessage) => void = () => {};
  #onLoss: (loss: BrokerLoss) => void = () => {};
  #presence?: PresenceReplicaHandlers;

  #outbox: _Queued[] = [];
  #presenceOut = new Map<string, PresenceState>();
  #requestsOut = new Map<string, CatchUpRequest>();
  /** The lowest index another node asked this run to re-send from. */
  #resendFrom?: number;
  #heartbeatDue = true;
  #directoryDue = true;
  /** The next envelope carries this node's full presence, announced (after an outage). */
  #announceNext = false;
  #flushScheduled = false;
  #flushing = false;
  #seq = 0;
  /** The highest message index put into an envelope so far (sent or not). */
  #sentHigh = 0;
  #lastSentAt = 0;
  #lastDirectoryAt = 0;
  /** Topics whose stream and heads lifetimes were set recently (refreshed at a quarter). */
  readonly #ttlSetAt = new Map<string, number>();
  /** Topics whose keys Redis recreated without a lifetime (it lost them): fixed next flush. */
  #ttlFix = new Set<string>();
  /** This run has an entry in the directory (a new one afterwards means Redis lost it). */
  #registered = false;

  #subscription?: _Subscription;
  #subscribed = false;
  #subscribeStartedAt = 0;
  /** Our oldest envelope not yet heard back on the subscription. */
  #awaitingEcho?: { seq: number; at: number };
  #continuity = 0;
  #lagMs = 0;
  #attempt = 0;
  #resubscribeTimer?: ReturnType<typeof setTimeout>;
  #stopTicker?: () => void;
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
    const d = REDIS_BROKER_DEFAULTS;
    this.#nodeId = options.nodeId;
    this.#keys = new RedisKeys(options.prefix ?? "switchboard");
    this.#pingMs = options.pingMs ?? d.pingMs;
    this.#directoryMs = options.directoryMs ?? this.#pingMs * 3;
    this.#echoTimeoutMs = options.echoTimeoutMs ?? d.echoTimeoutMs;
    this.#lastTtlMs = options.lastTtlMs ?? d.lastTtlMs;
    this.maxMessageBytes = options.maxMessageBytes ?? d.maxMessageBytes;
    this.#envelopeBytes = options.envelopeBytes ?? d.envelopeBytes;
    this.#clock = options.clock ?? Date;
    this.#log = options.log ?? defaultLogger;
    this.#history = options.history ?? DEFAULT_HISTORY;
    this.#nodes = new RedisNodes({
      redis: this.#redis,
      keys: this.#keys,
      selfId: this.#nodeId,
      ttlMs: options.nodeTtlMs ?? d.nodeTtlMs,
      directoryTtlMs: this.#directoryMs * 3,
      clock: this.#clock,
    });
    this.#sent = new SentLog({
      count: Math.max(this.#history.size, _RETRY_LIMIT),
      bytes: 32 << 20,
      maxAgeMs: this.#history.maxAgeMs,
    }, this.#clock);
    this.#inbound = new InboundRuns({
      clock: this.#clock,
      deliver: (msg) => this.#deliver(msg),
      lost: (nodeId, count) => this.#lost(nodeId, count),
      request: (nodeId, epoch, from) => {
        const known = this.#requestsOut.get(nodeId);
        if (!known || known.e !== epoch || from < known.from) {
          this.#requestsOut.set(nodeId, { n: nodeId, e: epoch, from });
        }
        this.#scheduleFlush();
      },
    });
    // An earlier run with this NODE_ID may have left presences: they are not ours any more.
    this.#redis.del(this.#keys.presence(this.#nodeId)).catch((err) => this.#fail(err));
    this.#subscribe();
    // Checked often enough that a heartbeat is at most a quarter period late.
    const checkMs = Math.min(1_000, this.#pingMs / 4);
    this.#stopTicker = (options.timers ?? plainTimers).every(checkMs, () => this.#tick());
  }

  publish(msg: BrokerMessage): void {
    if (this.#closed) return;
    const json = JSON.stringify(msg);
    const over = bytesOver(json, this.maxMessageBytes);
    if (over !== undefined) throw new MessageTooLargeError(over, this.maxMessageBytes);
    this.#outbox.push({ index: this.#sent.add(json), msg, json });
    this.#scheduleFlush();
  }

  onMessage(handler: (msg: BrokerMessage) => void): void {
    this.#onMessage = handler;
  }

  onLoss(handler: (loss: BrokerLoss) => void): void {
    this.#onLoss = handler;
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

  fetchHeads(topic: string): Promise<Heads> {
    return readHeads(this.#redis, this.#keys, this.#history, topic, this.#clock.now());
  }

  fetchRecent(topic: string, count: number): Promise<BrokerMessage[]> {
    const bounded = Math.min(count, this.#history.size);
    return readRecent(this.#redis, this.#keys, this.#history, topic, {
      count: bounded,
      now: this.#clock.now(),
    });
  }

  continuity(): number | undefined {
    return this.#connected() ? this.#continuity : undefined;
  }

  state(): BrokerState {
    const connected = this.#connected();
    return {
      kind: "redis",
      connected,
      lagMs: this.#lagMs,
      pending: this.#outbox.length,
      nodes: this.#nodes.size + 1,
      ...(connected || !this.#lastError ? {} : { error: this.#lastError }),
    };
  }

  /** Messages that could not be handed to Redis and were dropped from the retry queue. */
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
      h: this.#sentHigh,
      bye: true,
    };
    const p = this.#redis.pipeline();
    p.del(this.#keys.presence(this.#nodeId));
    p.zrem(this.#keys.nodes, this.#nodeId);
    p.publish(this.#keys.bus, JSON.stringify(bye));
    await p.exec().catch(() => {});
  }

  #connected(): boolean {
    if (!this.#subscribed) return false;
    const echo = this.#awaitingEcho;
    return !echo || this.#clock.now() - echo.at <= this.#echoTimeoutMs;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#closed) return;
    this.#flushScheduled = true;
    // Everything published in this tick goes out in one request.
    setTimeout(() => {
      this.#flushScheduled = false;
      this.#flush();
    }, 0);
  }

  #hasWork(): boolean {
    return this.#outbox.length > 0 || this.#presenceOut.size > 0 || this.#heartbeatDue ||
      this.#directoryDue || this.#requestsOut.size > 0 || this.#resendFrom !== undefined;
  }

  /** Sends the batch; one request in flight at a time keeps publish order per node. */
  async #flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (!this.#closed && this.#hasWork()) {
        const batch: _Batch = {
          messages: this.#outbox,
          presence: this.#presenceOut,
          requests: [...this.#requestsOut.values()],
          resendFrom: this.#resendFrom,
          directory: this.#directoryDue,
          announce: this.#announceNext,
        };
        this.#outbox = [];
        this.#presenceOut = new Map();
        this.#requestsOut = new Map();
        this.#resendFrom = undefined;
        this.#heartbeatDue = false;
        this.#directoryDue = false;
        this.#announceNext = false;
        try {
          await this.#send(batch);
        } catch (err) {
          this.#fail(err);
          this.#requeue(batch);
          break;
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  /** Puts a batch that Redis did not take back in front of the queue, for the next tick. */
  #requeue(batch: _Batch): void {
    this.#outbox = batch.messages.concat(this.#outbox);
    if (this.#outbox.length > _RETRY_LIMIT) {
      // The oldest leave the queue; they stay in the sent log, and the others ask for them.
      const dropped = this.#outbox.splice(0, this.#outbox.length - _RETRY_LIMIT);
      this.#dropped += dropped.length;
      this.#sentHigh = Math.max(this.#sentHigh, dropped.at(-1)!.index);
    }
    // Presence is state, not a stream: resend the newest state once Redis answers.
    for (const [topic, state] of batch.presence) {
      if (!this.#presenceOut.has(topic)) this.#presenceOut.set(topic, state);
    }
    // The clients' diffs went down with this batch: the receivers must derive them.
    this.#announceNext ||= batch.announce || batch.presence.size > 0;
    for (const q of batch.requests) {
      const known = this.#requestsOut.get(q.n);
      if (!known || q.from < known.from) this.#requestsOut.set(q.n, q);
    }
    if (batch.resendFrom !== undefined) {
      this.#resendFrom = Math.min(this.#resendFrom ?? Infinity, batch.resendFrom);
    }
    // Redis may come back empty: register in the directory again at once.
    this.#directoryDue = true;
    this.#heartbeatDue = true;
    // Redis may have restarted empty: set the topics' lifetimes again.
    this.#ttlSetAt.clear();
  }

  async #send(batch: _Batch): Promise<void> {
    const now = this.#clock.now();
    const { messages, presence } = batch;
    const p = this.#redis.pipeline();
    const history = { keys: this.#keys, limits: this.#history, lastTtlMs: this.#lastTtlMs };
    /** Heads writes that must find their field (this run wrote it before). */
    const expectKnown: { at: number; topic: string }[] = [];
    for (const q of messages) {
      // The hub numbers what belongs in history (seq ≥ 1); presence events have seq 0.
      if (q.msg.seq > 0) {
        const refreshTtl = this.#ttlDue(q.msg.topic, now);
        const at = appendToHistory(p, q.msg, q.json, { ...history, refreshTtl });
        if (!refreshTtl) expectKnown.push({ at, topic: q.msg.topic });
      }
    }
    const fixes = this.#ttlFix;
    this.#ttlFix = new Set();
    for (const topic of fixes) appendLifetimes(p, history, topic);
    const envelopes: string[] = [];
    const header = (extra: Partial<EnvelopeHeader>): EnvelopeHeader => ({
      v: 1,
      n: this.#nodeId,
      e: this.#epoch,
      s: ++this.#seq,
      t: now,
      h: this.#sentHigh,
      ...extra,
    });
    if (presence.size) {
      const key = this.#keys.presence(this.#nodeId);
      const fields: Record<string, string> = {};
      const gone: string[] = [];
      const entries: string[] = [];
      for (const [topic, state] of presence) {
        const json = JSON.stringify(state);
        entries.push(`${JSON.stringify(topic)}:${json}`);
        if (Object.keys(state).length === 0) gone.push(topic);
        else fields[topic] = json;
      }
      const groups = packByBytes(entries, this.#envelopeBytes);
      // The snapshot is as new as the last envelope that carries it.
      fields._meta = JSON.stringify({ epoch: this.#epoch, seq: this.#seq + groups.length });
      p.hset(key, fields);
      if (gone.length) p.hdel(key, ...gone);
      p.pexpire(key, this.#directoryMs * 3);
      for (const group of groups) {
        envelopes.push(envelopeJson(header(batch.announce ? { a: true } : {}), { p: group }));
      }
    }
    let index = messages[0]?.index ?? 0;
    for (const group of packByBytes(messages.map((q) => q.json), this.#envelopeBytes)) {
      // Each envelope's `h` is its own last index: a receiver is behind only if it lacks one.
      this.#sentHigh = Math.max(this.#sentHigh, index + group.length - 1);
      envelopes.push(envelopeJson(header({ i: index }), { m: group }));
      index += group.length;
    }
    if (batch.resendFrom !== undefined) {
      const { first, messages: kept } = this.#sent.from(batch.resendFrom);
      // Only what was really sent: what is still queued goes out in order by itself.
      const upTo = Math.max(0, Math.min(kept.length, this.#sentHigh - first + 1));
      let at = first;
      const groups = packByBytes(kept.slice(0, upTo), this.#envelopeBytes);
      if (groups.length === 0) groups.push([]);
      for (const group of groups) {
        envelopes.push(envelopeJson(header({ i: at, r: true }), { m: group }));
        at += group.length;
      }
    }
    if (batch.requests.length) {
      envelopes.push(envelopeJson(header({ q: batch.requests })));
    }
    if (envelopes.length === 0) envelopes.push(envelopeJson(header({})));
    const directoryAt = p.length();
    if (batch.directory) this.#nodes.appendDirectory(p, now);
    for (const json of envelopes) p.publish(this.#keys.bus, json);
    let results: unknown[];
    try {
      results = await p.exec();
    } catch (err) {
      for (const topic of fixes) this.#ttlFix.add(topic);
      throw err;
    }
    const recreated = expectKnown.filter(({ at }) => Number(results[at]) === 1);
    const unregistered = batch.directory && this.#registered &&
      Number(results[directoryAt]) === 1;
    if (recreated.length || unregistered) {
      this.#redisLostData(recreated.map(({ topic }) => topic));
    }
    if (batch.directory) this.#registered = true;
    this.#lastSentAt = now;
    if (batch.directory) this.#lastDirectoryAt = now;
    this.#awaitingEcho ??= { seq: this.#seq, at: this.#clock.now() };
  }

  /**
   * Redis answered as if it had lost this node's keys (restarted empty, or our entries expired
   * in a long outage): write them again, with their lifetimes.
   */
  #redisLostData(topics: string[]): void {
    this.#log.warn("Redis lost this node's keys (restarted empty?): writing them again");
    this.#ttlSetAt.clear();
    for (const topic of topics) this.#ttlFix.add(topic);
    this.#directoryDue = true;
    this.#presence?.resync();
    this.#scheduleFlush();
  }

  /** True when the topic's stream and heads need their lifetime (re)set with this write. */
  #ttlDue(topic: string, now: number): boolean {
    const at = this.#ttlSetAt.get(topic);
    if (at !== undefined && now - at < this.#history.maxAgeMs / 4) return false;
    this.#ttlSetAt.delete(topic);
    this.#ttlSetAt.set(topic, now);
    if (this.#ttlSetAt.size > 10_000) this.#ttlSetAt.delete(this.#ttlSetAt.keys().next().value!);
    return true;
  }

  #subscribe(): void {
    if (this.#closed) return;
    this.#subscription?.unsubscribe().catch(() => {});
    this.#subscribed = false;
    this.#awaitingEcho = undefined;
    const subscription = this.#redis.subscribe<string>([this.#keys.bus]);
    this.#subscription = subscription;
    this.#subscribeStartedAt = this.#clock.now();
    subscription.on("subscribe", () => {
      if (subscription !== this.#subscription) return;
      this.#subscribed = true;
      this.#recover().catch((err) => this.#fail(err));
    });
    subscription.on("message", ({ message }) => {
      if (subscription === this.#subscription) this.#receive(String(message));
    });
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
   * (Re)subscribed: this node may have missed anything before, so it asks every node it knows
   * for what follows its position, reads the other nodes' presence from Redis, and sends all of
   * its own, announced, since the others may have dropped it meanwhile.
   */
  async #recover(): Promise<void> {
    this.#attempt = 0;
    this.#lastError = undefined;
    this.#continuity++;
    this.#announceNext = true;
    this.#presence?.resync();
    this.#heartbeatDue = true;
    this.#directoryDue = true;
    this.#inbound.askAll();
    this.#scheduleFlush();
    await this.#nodes.loadLive();
  }

  #receive(raw: string): void {
    const envelope = parseEnvelope(raw);
    if (!envelope) return;
    const now = this.#clock.now();
    if (envelope.n === this.#nodeId) {
      if (envelope.e === this.#epoch) {
        this.#lagMs = Math.max(0, now - envelope.t);
        if (this.#awaitingEcho && envelope.s >= this.#awaitingEcho.seq) {
          this.#awaitingEcho = undefined;
        }
      }
      return;
    }
    if (envelope.t) this.#lagMs = Math.max(0, now - envelope.t);
    this.#nodes.heard(envelope)?.catch((err) => this.#fail(err));
    this.#inbound.take(envelope);
    for (const q of envelope.q ?? []) {
      if (q.n !== this.#nodeId || q.e !== this.#epoch || q.from > this.#sentHigh) continue;
      this.#resendFrom = Math.min(this.#resendFrom ?? Infinity, q.from);
      this.#scheduleFlush();
    }
  }

  #deliver(msg: BrokerMessage): void {
    try {
      this.#onMessage(msg);
    } catch (err) {
      this.#log.error("delivering a message from another node failed", {
        error: describeError(err),
      });
    }
  }

  #lost(nodeId: string, count: number): void {
    this.#continuity++;
    this.#log.warn("messages from another node were lost", { node: nodeId, count });
    try {
      this.#onLoss({ nodeId, count });
    } catch (err) {
      this.#log.error("handling lost messages failed", { error: describeError(err) });
    }
  }

  #tick(): void {
    const now = this.#clock.now();
    if (now - this.#lastSentAt >= this.#pingMs) this.#heartbeatDue = true;
    if (now - this.#lastDirectoryAt >= this.#directoryMs) this.#directoryDue = true;
    if (this.#hasWork()) this.#scheduleFlush();
    // The client does not report a subscription stream that ended: our own envelopes tell us.
    const echo = this.#awaitingEcho;
    if (this.#subscribed && echo && now - echo.at > this.#echoTimeoutMs) {
      this.#lastError ??= `own envelope not back on the subscription after ${now - echo.at} ms`;
      this.#resubscribeLater();
    }
    // A subscription never confirmed (the stream ended before its first line) is tried again.
    if (!this.#subscribed && now - this.#subscribeStartedAt > this.#echoTimeoutMs * 2) {
      this.#lastError ??= "the subscription was not confirmed";
      this.#resubscribeLater();
    }
    // A node not heard from (its heartbeat envelopes) within the TTL is dead.
    this.#nodes.expire();
    this.#inbound.tick();
    this.#inbound.forgetSilent(_RUN_MEMORY_MS);
  }

  #fail(err: unknown): void {
    this.#lastError = err instanceof Error ? err.message : String(err);
  }
}
