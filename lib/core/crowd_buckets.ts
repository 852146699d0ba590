/**
 * How a crowd's members cross the bus: a node's state of a crowd topic is split by key hash
 * into {@link CROWD_BUCKETS} buckets, each replicated as its own presence entry (the topic name,
 * a NUL and the bucket number: no client topic can hold a NUL), and only the buckets that changed
 * since the last send go out (at most once a second, see crowd.ts). A join in a crowd of 100,000
 * sends one bucket of about 1,600 keys with the next tick, not 100,000; no bucket comes near the
 * bus' message limit where a whole state would. The receiving nodes keep the buckets as they
 * keep whole states, so counts, visible sets and pages stay the cluster's.
 *
 * @example
 * ```ts
 * const sender = new BucketSender();
 * sender.changed("record:1", { ann: { metas: [{ phx_ref: "1" }] } }); // [["record:1", {}], [bucket of ann, …]]
 * ```
 * @module
 */
import type { PresenceState } from "./broker.ts";
import { emptyPresenceState } from "./presence_diff.ts";

/** Buckets per crowd topic and node. */
export const CROWD_BUCKETS = 64;

const _SEPARATOR = "\u0000crowd:";

/** The replicated name of one bucket of `topic`. */
export function bucketTopic(topic: string, bucket: number): string {
  return `${topic}${_SEPARATOR}${bucket}`;
}

/** The topic and bucket of a replicated name; undefined for a plain topic. */
export function parseBucketTopic(name: string): { topic: string; bucket: number } | undefined {
  const at = name.lastIndexOf(_SEPARATOR);
  if (at < 0) return undefined;
  const bucket = Number(name.slice(at + _SEPARATOR.length));
  if (!Number.isInteger(bucket) || bucket < 0 || bucket >= CROWD_BUCKETS) return undefined;
  return { topic: name.slice(0, at), bucket };
}

/** The bucket of a key (FNV-1a over its UTF-16 code units): the same on every node. */
export function bucketOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % CROWD_BUCKETS;
}

/** A node's sending side: what each crowd topic's buckets were when last sent. */
export class BucketSender {
  /** topic → per bucket the signature last sent ("" for empty). */
  readonly #sent = new Map<string, string[]>();

  /**
   * The entries to replicate for a crowd topic whose state here is `state`: the buckets that
   * changed since the last call (an empty state deletes a bucket), and, the first time, the
   * plain topic emptied (the other nodes drop the whole state they had from this node).
   */
  changed(topic: string, state: PresenceState): [string, PresenceState][] {
    const buckets: PresenceState[] = Array.from(
      { length: CROWD_BUCKETS },
      () => emptyPresenceState(),
    );
    const signatures: string[] = Array(CROWD_BUCKETS).fill("");
    for (const [key, entry] of Object.entries(state)) {
      const b = bucketOf(key);
      buckets[b][key] = entry;
      signatures[b] += `${key}\u0000${entry.metas.map((m) => m.phx_ref).join(",")}\u0000`;
    }
    const before = this.#sent.get(topic);
    const out: [string, PresenceState][] = before ? [] : [[topic, emptyPresenceState()]];
    for (let b = 0; b < CROWD_BUCKETS; b++) {
      if ((before?.[b] ?? "") !== signatures[b]) out.push([bucketTopic(topic, b), buckets[b]]);
    }
    if (signatures.every((s) => s === "")) this.#sent.delete(topic);
    else this.#sent.set(topic, signatures);
    return out;
  }

  /** The entries that delete every bucket sent for `topic` (it is a room again). */
  clear(topic: string): [string, PresenceState][] {
    const before = this.#sent.get(topic);
    if (!before) return [];
    this.#sent.delete(topic);
    return before.flatMap((signature, b) =>
      signature === ""
        ? []
        : [[bucketTopic(topic, b), emptyPresenceState()] as [string, PresenceState]]
    );
  }
}
