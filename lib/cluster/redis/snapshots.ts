/**
 * The node directory and presence snapshots in Redis: the sorted set `<prefix>:nodes` (node →
 * time of its last directory refresh) and one hash per node (topic → its presence state there,
 * `_meta` → run and envelope sequence), so a node that (re)connects can rebuild its mirror of
 * the others (see `../nodes.ts`). Every key lives 3 directory periods after its last refresh.
 * @module
 */
import type { Redis } from "@upstash/redis";
import type { PeerDirectory } from "../peers.ts";
import type { PresenceState } from "../../core/broker.ts";
import { pairs, type RedisKeys } from "./keys.ts";

type _Pipeline = ReturnType<Redis["pipeline"]>;

/** Where the snapshots are, and whose they are not. */
export interface RedisSnapshotsInit {
  redis: Redis;
  keys: RedisKeys;
  /** This node's id (its own entry is not another node's). */
  selfId: string;
  /** A directory entry (and presence hash) not refreshed within this long is a dead node's. */
  directoryTtlMs: number;
}

/** Reads and refreshes the directory and presence snapshots in Redis. */
export class RedisSnapshots {
  constructor(readonly init: RedisSnapshotsInit) {}

  /**
   * Adds this node's directory entry to a pipeline, drops the entries of nodes that stopped
   * refreshing theirs, and gives the directory and this node's presence hash a lifetime of the
   * directory TTL (so a node that dies leaves nothing behind for long, and no node has to sweep
   * for it). 4 commands; returns the position of the `ZADD` (1: the entry was new).
   */
  appendDirectory(p: _Pipeline, now: number): number {
    const { keys, selfId, directoryTtlMs } = this.init;
    const position = p.length();
    p.zadd(keys.nodes, { score: now, member: selfId });
    p.zremrangebyscore(keys.nodes, 0, now - directoryTtlMs);
    p.pexpire(keys.nodes, directoryTtlMs);
    p.pexpire(keys.presence(selfId), directoryTtlMs);
    return position;
  }

  /** Reads the presence snapshot of every node alive in the directory into `directory`. */
  async loadLive(directory: PeerDirectory, now: number): Promise<void> {
    const { redis, keys, selfId, directoryTtlMs } = this.init;
    const flat = await redis.zrange<string[]>(keys.nodes, 0, -1, { withScores: true });
    const alive: string[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const node = String(flat[i]);
      if (node !== selfId && now - Number(flat[i + 1]) <= directoryTtlMs) alive.push(node);
    }
    await Promise.all(alive.map((node) => this.load(node, directory)));
  }

  /** Reads one node's presence snapshot into `directory` (unless a newer state is there). */
  async load(nodeId: string, directory: PeerDirectory): Promise<void> {
    const flat = await this.init.redis.hgetall(this.init.keys.presence(nodeId)) as unknown;
    const fields = Array.isArray(flat)
      ? pairs(flat as string[])
      : (flat ?? {}) as Record<string, string>;
    if (!fields._meta) return;
    const meta = JSON.parse(String(fields._meta)) as { epoch: string; seq: number };
    const states: Record<string, PresenceState> = {};
    for (const [topic, json] of Object.entries(fields)) {
      if (topic !== "_meta") states[topic] = JSON.parse(String(json));
    }
    // Checked after the read: envelopes applied meanwhile are newer than this snapshot.
    directory.snapshot(nodeId, meta, states);
  }
}
