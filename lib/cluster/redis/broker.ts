/**
 * The Redis broker: many nodes act as one through Redis, reached over HTTP with
 * `@upstash/redis` (so it runs where TCP is not available). The replication itself (batching,
 * catch-up, presence, node liveness) is `../replication.ts`; this is its Redis bus.
 *
 * One shared subscription per node to one bus channel carries everything; what a node publishes
 * in one tick goes out as one `/pipeline` request, its messages packed into envelopes that stay
 * well under the subscription reader's 1 MB line limit. Each node also keeps, in Redis, its entry
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
import type { BrokerMessage } from "../../core/broker.ts";
import { DEFAULT_HISTORY, type Heads, type HistoryLimits } from "../../resume/history.ts";
import type { Logger } from "../../log.ts";
import type { Clock, Timers } from "../../core/time.ts";
import type { BusBatch, ClusterBus, SendOutcome, SubscriptionHandlers } from "../bus.ts";
import { ReplicatingBroker } from "../replication.ts";
import type { PeerDirectory } from "../peers.ts";
import { RedisKeys } from "./keys.ts";
import { appendLifetimes, appendToHistory, readHeads, readLast, readRecent } from "./history.ts";
import { RedisSnapshots } from "./snapshots.ts";

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
 * `pingMs`, one directory refresh per `directoryMs` (default 3 heartbeats).
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

/** The fields of a {@link RedisBus}. */
export interface RedisBusInit {
  redis: Redis;
  keys: RedisKeys;
  nodeId: string;
  history: HistoryLimits;
  lastTtlMs: number;
  directoryTtlMs: number;
  clock: Clock;
}

/** Pub/sub for the bus, and the shared history, last messages, directory and snapshots. */
export class RedisBus implements ClusterBus {
  readonly kind = "redis";
  readonly echoes = true;
  readonly snapshots = true;
  readonly #init: RedisBusInit;
  readonly #snapshots: RedisSnapshots;
  #subscription?: _Subscription;
  /** Topics whose stream and heads lifetimes were set recently (refreshed at a quarter). */
  readonly #ttlSetAt = new Map<string, number>();
  /** Topics whose keys Redis recreated without a lifetime (it lost them): fixed next send. */
  #ttlFix = new Set<string>();
  /** This run has an entry in the directory (a new one afterwards means Redis lost it). */
  #registered = false;

  constructor(init: RedisBusInit) {
    this.#init = init;
    this.#snapshots = new RedisSnapshots({
      redis: init.redis,
      keys: init.keys,
      selfId: init.nodeId,
      directoryTtlMs: init.directoryTtlMs,
    });
  }

  async start(): Promise<void> {
    // An earlier run with this NODE_ID may have left presences: they are not ours any more.
    await this.#init.redis.del(this.#init.keys.presence(this.#init.nodeId));
  }

  async send(batch: BusBatch): Promise<SendOutcome> {
    const { redis, keys, clock } = this.#init;
    const now = clock.now();
    const p = redis.pipeline();
    const history = { keys, limits: this.#init.history, lastTtlMs: this.#init.lastTtlMs };
    /** Heads writes that must find their field (this run wrote it before). */
    const expectKnown: { at: number; topic: string }[] = [];
    for (const q of batch.messages) {
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
    if (batch.presence.size) {
      const key = keys.presence(this.#init.nodeId);
      const fields: Record<string, string> = {
        _meta: JSON.stringify({ epoch: batch.runId, seq: batch.presenceSeq }),
      };
      const gone: string[] = [];
      for (const [topic, state] of batch.presence) {
        if (Object.keys(state).length === 0) gone.push(topic);
        else fields[topic] = JSON.stringify(state);
      }
      p.hset(key, fields);
      if (gone.length) p.hdel(key, ...gone);
      p.pexpire(key, this.#init.directoryTtlMs);
    }
    const directoryAt = batch.directory ? this.#snapshots.appendDirectory(p, now) : -1;
    for (const json of batch.envelopes) p.publish(keys.bus, json);
    let results: unknown[];
    try {
      results = await p.exec();
    } catch (err) {
      for (const topic of fixes) this.#ttlFix.add(topic);
      // Redis may come back empty: set the topics' lifetimes again.
      this.#ttlSetAt.clear();
      throw err;
    }
    const recreated = expectKnown.filter(({ at }) => Number(results[at]) === 1);
    const unregistered = directoryAt >= 0 && this.#registered &&
      Number(results[directoryAt]) === 1;
    if (directoryAt >= 0) this.#registered = true;
    if (recreated.length === 0 && !unregistered) return {};
    this.#ttlSetAt.clear();
    for (const { topic } of recreated) this.#ttlFix.add(topic);
    return { lostKeys: true };
  }

  subscribe(handlers: SubscriptionHandlers): void {
    this.#subscription?.unsubscribe().catch(() => {});
    const subscription = this.#init.redis.subscribe<string>([this.#init.keys.bus]);
    this.#subscription = subscription;
    subscription.on("subscribe", () => handlers.subscribed());
    subscription.on("message", ({ message }) => handlers.message(String(message)));
    subscription.on("error", (err) => handlers.failed(err));
  }

  async unsubscribe(): Promise<void> {
    await this.#subscription?.unsubscribe();
  }

  async goodbye(byeJson: string): Promise<void> {
    const { redis, keys, nodeId } = this.#init;
    const p = redis.pipeline();
    p.del(keys.presence(nodeId));
    p.zrem(keys.nodes, nodeId);
    p.publish(keys.bus, byeJson);
    await p.exec();
  }

  fetchLast(topic: string): Promise<BrokerMessage | undefined> {
    return readLast(this.#init.redis, this.#init.keys, topic);
  }

  fetchHeads(topic: string): Promise<Heads> {
    const { redis, keys, history, clock } = this.#init;
    return readHeads(redis, keys, history, topic, clock.now());
  }

  fetchRecent(topic: string, count: number): Promise<BrokerMessage[]> {
    const { redis, keys, history, clock } = this.#init;
    const bounded = Math.min(count, history.size);
    return readRecent(redis, keys, history, topic, { count: bounded, now: clock.now() });
  }

  loadLive(directory: PeerDirectory, now: number): Promise<void> {
    return this.#snapshots.loadLive(directory, now);
  }

  loadNode(nodeId: string, directory: PeerDirectory): Promise<void> {
    return this.#snapshots.load(nodeId, directory);
  }

  /** True when the topic's stream and heads need their lifetime (re)set with this write. */
  #ttlDue(topic: string, now: number): boolean {
    const at = this.#ttlSetAt.get(topic);
    if (at !== undefined && now - at < this.#init.history.maxAgeMs / 4) return false;
    this.#ttlSetAt.delete(topic);
    this.#ttlSetAt.set(topic, now);
    if (this.#ttlSetAt.size > 10_000) this.#ttlSetAt.delete(this.#ttlSetAt.keys().next().value!);
    return true;
  }
}

/** Joins this node to the others through Redis: one bus subscription, one pipeline per tick. */
export class RedisBroker extends ReplicatingBroker {
  constructor(options: RedisBrokerOptions) {
    const d = REDIS_BROKER_DEFAULTS;
    const redis = new Redis({
      url: options.url,
      token: options.token,
      automaticDeserialization: false,
      enableTelemetry: false,
      retry: { retries: 1, backoff: () => 100 },
    });
    const pingMs = options.pingMs ?? d.pingMs;
    const directoryMs = options.directoryMs ?? pingMs * 3;
    const history = options.history ?? DEFAULT_HISTORY;
    const clock = options.clock ?? Date;
    const bus = new RedisBus({
      redis,
      keys: new RedisKeys(options.prefix ?? "switchboard"),
      nodeId: options.nodeId,
      history,
      lastTtlMs: options.lastTtlMs ?? d.lastTtlMs,
      directoryTtlMs: directoryMs * 3,
      clock,
    });
    super(bus, {
      nodeId: options.nodeId,
      pingMs,
      nodeTtlMs: options.nodeTtlMs ?? d.nodeTtlMs,
      directoryMs,
      echoTimeoutMs: options.echoTimeoutMs ?? d.echoTimeoutMs,
      maxMessageBytes: options.maxMessageBytes ?? d.maxMessageBytes,
      envelopeBytes: options.envelopeBytes ?? d.envelopeBytes,
      clock,
      timers: options.timers,
      log: options.log,
      history,
    });
  }
}
