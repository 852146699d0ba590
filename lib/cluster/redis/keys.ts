/**
 * The Redis keys of the Redis broker (the bus envelope is in `../envelope.ts`).
 * @module
 */

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
  /** Hash of one node: topic → its presence state there; `_meta` → {epoch, seq} (`epoch`:
   * the run id, under the name nodes of earlier releases read). */
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

/** `[k1, v1, k2, v2]` (a raw HGETALL or XRANGE entry) as an object. */
export function pairs(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]] = flat[i + 1];
  return out;
}
