/**
 * The Redis keys and the bus envelope of the Redis broker.
 * @module
 */
import type { BrokerMessage } from "../broker.ts";
import type { PresenceState } from "../../core/presence_types.ts";

/** Names of everything the broker keeps in Redis, under one prefix. */
export class RedisKeys {
  constructor(readonly prefix: string) {}
  /** The one pub/sub channel every node subscribes to. */
  get bus(): string {
    return `${this.prefix}:bus`;
  }
  /** Sorted set: node id → time of its last heartbeat (ms). */
  get nodes(): string {
    return `${this.prefix}:nodes`;
  }
  /** Hash of one node: topic → its presence state there; `_meta` → {epoch, seq}. */
  presence(nodeId: string): string {
    return `${this.prefix}:presence:${nodeId}`;
  }
  /** Stream of a topic's recent messages (field `m`: the message as JSON). */
  history(topic: string): string {
    return `${this.prefix}:history:${topic}`;
  }
  /** Hash of a topic: origin stream → `seq:at` of its newest message. */
  heads(topic: string): string {
    return `${this.prefix}:heads:${topic}`;
  }
  /** The last message of a topic. */
  last(topic: string): string {
    return `${this.prefix}:last:${topic}`;
  }
}

/** What one node publishes per tick on the bus. */
export interface BusEnvelope {
  v: 1;
  /** Node id. */
  n: string;
  /** The node's run (epoch): changes when the node restarts. */
  e: string;
  /** Sequence number, increasing per run. */
  s: number;
  /** Sent at (ms since the epoch, the sender's clock). */
  t: number;
  /** Broadcasts, in publish order. */
  m?: BrokerMessage[];
  /** The node's full presence state of each topic that changed (empty: none). */
  p?: Record<string, PresenceState>;
  /** `p` is the node's whole state, resent after an outage: receivers announce the change. */
  a?: boolean;
  /** The node is leaving (graceful shutdown). */
  bye?: boolean;
}

/** Parses an envelope from the bus; anything else (another tool's message) is ignored. */
export function parseEnvelope(raw: string): BusEnvelope | undefined {
  try {
    const value = JSON.parse(raw);
    if (value?.v !== 1 || typeof value.n !== "string" || typeof value.s !== "number") return;
    return value as BusEnvelope;
  } catch {
    return undefined;
  }
}

/** `[k1, v1, k2, v2]` (a raw HGETALL or XRANGE entry) as an object. */
export function pairs(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]] = flat[i + 1];
  return out;
}
