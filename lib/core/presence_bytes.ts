/**
 * The bytes of this node's presence metas per topic (issue 21). A topic's presence is
 * replicated to the other nodes as one envelope: past the bus line (less a margin for the
 * envelope) it could not reach them, so a track that would take it there is refused, per key,
 * with a clear error, before anything changes.
 *
 * @example
 * ```ts
 * const bytes = new PresenceBytes((_topic) => 512 * 1024);
 * const meta = { name: "Ann", phx_ref: "n1.1" };
 * bytes.claim("room:1", meta); // throws LimitError (presence_topic_full) past the line
 * bytes.unclaim("room:1", meta);
 * ```
 * @module
 */
import type { PresenceMeta } from "./broker.ts";
import { LimitError } from "./limits.ts";
import { QuotaReason } from "./user_quotas.ts";

/** Share of the bus line a topic's presences may take on one node. */
const _SHARE = 0.9;
/** What a meta costs beyond its JSON in a replicated state (key, separators). */
const _META_OVERHEAD = 64;

/** Counts metas' bytes per topic and refuses past the bus line. */
export class PresenceBytes {
  readonly #topics = new Map<string, number>();
  readonly #metas = new WeakMap<PresenceMeta, number>();

  /**
   * `lineOf`: what one topic's replicated presence may take on the bus: the broker's largest
   * message, times the buckets of a crowd (undefined: no limit).
   */
  constructor(readonly lineOf: (topic: string) => number | undefined) {}

  /** Counts `meta` on `topic`, replacing `old`; throws {@link LimitError} past the line. */
  claim(topic: string, meta: PresenceMeta, old?: PresenceMeta): void {
    const bytes = new TextEncoder().encode(JSON.stringify(meta)).byteLength + _META_OVERHEAD;
    const before = this.#topics.get(topic) ?? 0;
    const total = before + bytes - (old ? this.#metas.get(old) ?? 0 : 0);
    const line = this.lineOf(topic);
    const limit = line === undefined ? Infinity : Math.floor(line * _SHARE);
    if (total > limit && total > before) {
      throw new LimitError(
        QuotaReason.presenceTopicFull,
        `the presences on ${topic} would take ${total} bytes on this node; the cluster bus ` +
          `carries at most ${limit}: keep metas small`,
      );
    }
    this.#metas.set(meta, bytes);
    this.#topics.set(topic, total);
  }

  /** Stops counting `meta` (it left for good). */
  unclaim(topic: string, meta: PresenceMeta): void {
    const left = (this.#topics.get(topic) ?? 0) - (this.#metas.get(meta) ?? 0);
    if (left <= 0) this.#topics.delete(topic);
    else this.#topics.set(topic, left);
  }
}
