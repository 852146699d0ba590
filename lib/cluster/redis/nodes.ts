/**
 * The other nodes as one node of the Redis broker sees them: their run, the newest presence
 * state applied, when they were last heard; and their presence snapshots in Redis, so a node
 * that (re)connects can rebuild its mirror. A node not heard from within the TTL is dead.
 * @module
 */
import type { Redis } from "@upstash/redis";
import type { Clock } from "../../core/time.ts";
import type { PresenceReplicaHandlers } from "../broker.ts";
import { pairs, type RedisKeys } from "./keys.ts";
import type { BusEnvelope } from "../envelope.ts";

type _Pipeline = ReturnType<Redis["pipeline"]>;

interface _Node {
  epoch: string;
  seq: number;
  lastSeen: number;
}

/** The fields of {@link RedisNodes}. */
export interface RedisNodesInit {
  redis: Redis;
  keys: RedisKeys;
  /** This node's id (its own envelopes are not another node's). */
  selfId: string;
  /** A node not heard from (on the bus) within this long is dead. */
  ttlMs: number;
  /** A directory entry (and presence hash) not refreshed within this long is a dead node's. */
  directoryTtlMs: number;
  clock: Clock;
}

/** The other nodes of the cluster as this node hears them, and their presence snapshots. */
export class RedisNodes {
  readonly #nodes = new Map<string, _Node>();
  presence?: PresenceReplicaHandlers;

  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly selfId: string;
  readonly ttlMs: number;
  readonly directoryTtlMs: number;
  readonly clock: Clock;

  constructor(init: RedisNodesInit) {
    this.redis = init.redis;
    this.keys = init.keys;
    this.selfId = init.selfId;
    this.ttlMs = init.ttlMs;
    this.directoryTtlMs = init.directoryTtlMs;
    this.clock = init.clock;
  }

  /** Other nodes alive as far as this node knows. */
  get size(): number {
    return this.#nodes.size;
  }

  /**
   * Takes an envelope from another node: goodbyes and restarts drop the old run's presences,
   * newer presence states are applied. Returns a promise when the node was unknown and its
   * snapshot is being read.
   */
  heard(envelope: BusEnvelope): Promise<void> | undefined {
    const now = this.clock.now();
    const known = this.#nodes.get(envelope.n);
    if (envelope.bye || (known && known.epoch !== envelope.e)) this.#drop(envelope.n);
    if (envelope.bye) return;
    let node = this.#nodes.get(envelope.n);
    let loading: Promise<void> | undefined;
    if (!node) {
      this.#nodes.set(envelope.n, node = { epoch: envelope.e, seq: 0, lastSeen: now });
      // A node we did not know (new, or dropped during an outage): read its whole state.
      if (!envelope.a) loading = this.load(envelope.n);
    }
    node.lastSeen = now;
    if (envelope.p && envelope.s > node.seq) {
      node.seq = envelope.s;
      for (const [topic, state] of Object.entries(envelope.p)) {
        this.presence?.state(envelope.n, topic, state, envelope.a === true);
      }
    }
    return loading;
  }

  /** Drops the nodes not heard from within the TTL (their presences leave). */
  expire(): void {
    const now = this.clock.now();
    for (const [nodeId, node] of this.#nodes) {
      if (now - node.lastSeen > this.ttlMs) this.#drop(nodeId);
    }
  }

  /** Reads the presence snapshot of every node alive in Redis. */
  async loadLive(): Promise<void> {
    const [alive] = await this.#read();
    await Promise.all(alive.map((node) => this.load(node)));
  }

  /**
   * Adds this node's directory entry to a pipeline, drops the entries of nodes that stopped
   * refreshing theirs, and gives the directory and this node's presence hash a lifetime of the
   * directory TTL (so a node that dies leaves nothing behind for long, and no node has to sweep
   * for it). 4 commands.
   */
  appendDirectory(p: _Pipeline, now: number): void {
    p.zadd(this.keys.nodes, { score: now, member: this.selfId });
    p.zremrangebyscore(this.keys.nodes, 0, now - this.directoryTtlMs);
    p.pexpire(this.keys.nodes, this.directoryTtlMs);
    p.pexpire(this.keys.presence(this.selfId), this.directoryTtlMs);
  }

  /** Reads one node's presence snapshot, unless a newer state was applied meanwhile. */
  async load(nodeId: string): Promise<void> {
    const flat = await this.redis.hgetall(this.keys.presence(nodeId)) as unknown;
    const fields = Array.isArray(flat)
      ? pairs(flat as string[])
      : (flat ?? {}) as Record<string, string>;
    if (!fields._meta) return;
    const meta = JSON.parse(String(fields._meta)) as { epoch: string; seq: number };
    // Checked after the read: envelopes applied meanwhile are newer than this snapshot, and a
    // node heard live under another epoch has restarted since the snapshot was written.
    const known = this.#nodes.get(nodeId);
    if (known && (known.epoch !== meta.epoch || known.seq >= meta.seq)) return;
    const node = known ?? { epoch: meta.epoch, seq: 0, lastSeen: this.clock.now() };
    node.seq = meta.seq;
    this.#nodes.set(nodeId, node);
    for (const [topic, json] of Object.entries(fields)) {
      if (topic !== "_meta") this.presence?.state(nodeId, topic, JSON.parse(String(json)), true);
    }
  }

  #drop(nodeId: string): void {
    if (!this.#nodes.delete(nodeId)) return;
    this.presence?.nodeDown(nodeId);
  }

  /** The node list from Redis, `[alive, dead]` by their last directory refresh. */
  async #read(): Promise<[string[], string[]]> {
    const now = this.clock.now();
    const flat = await this.redis.zrange<string[]>(this.keys.nodes, 0, -1, { withScores: true });
    const alive: string[] = [];
    const dead: string[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const node = String(flat[i]);
      if (node === this.selfId) continue;
      (now - Number(flat[i + 1]) > this.directoryTtlMs ? dead : alive).push(node);
    }
    return [alive, dead];
  }
}
