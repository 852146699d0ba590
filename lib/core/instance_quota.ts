/**
 * One channel instance's share of its user's bounds (issue 21): the presence metas it holds
 * room for and the topic it counts, given back when it stops. Keeps the bookkeeping out of
 * the channel server, which only calls {@link InstanceQuota.reserveMeta} on a track and
 * {@link InstanceQuota.release} on stop.
 *
 * @example
 * ```ts
 * import { UserQuotas } from "./user_quotas.ts";
 * const quotas = new UserQuotas({
 *   presenceMetaBytes: 32_768,
 *   presencesPerUser: 200,
 *   presenceBytesPerUser: 2 << 20,
 *   topicsPerUser: 1000,
 * });
 * const taken = takeTopic(quotas, { userId: "ann" }); // throws LimitError past the bound
 * const quota = new InstanceQuota({ quotas, userId: taken, slot: "ch1", maxDepth: 32 });
 * quota.reserveMeta("ann", { name: "Ann" });
 * quota.release();
 * ```
 * @module
 */
import type { Identity } from "./identity.ts";
import { LimitError, measureJson } from "./limits.ts";
import type { Payload } from "./message.ts";
import { ReplyReason } from "./protocol.ts";
import type { UserQuotas } from "./user_quotas.ts";

/**
 * Counts a join against its user's topics; returns the user it counted for (undefined:
 * anonymous, or no quotas). Throws {@link LimitError} past `MAX_TOPICS_PER_USER`.
 */
export function takeTopic(
  quotas: UserQuotas | undefined,
  identity: Pick<Identity, "userId" | "anonymous">,
): string | undefined {
  // Anonymous visitors share no user id: per-session limits bound them.
  if (!quotas || identity.anonymous) return undefined;
  quotas.joinTopic(identity.userId);
  return identity.userId;
}

/** The fields of an {@link InstanceQuota}. */
export interface InstanceQuotaInit {
  quotas?: UserQuotas;
  /** The user whose topic was counted by {@link takeTopic}; undefined: none. */
  userId?: string;
  /** Unique per instance on the node (its id): a meta's room is `slot key`. */
  slot: string;
  /** `MAX_PAYLOAD_DEPTH`. */
  maxDepth: number;
}

/** The metas and topic one channel instance holds in its user's quotas. */
export class InstanceQuota {
  /** The quota of instance `slot` of `node`, counting against `userId` (see {@link takeTopic}). */
  static of(
    node: { quotas?: UserQuotas; options: { maxPayloadDepth: number } },
    userId: string | undefined,
    slot: string,
  ): InstanceQuota {
    return new InstanceQuota({
      quotas: node.quotas,
      userId,
      slot,
      maxDepth: node.options.maxPayloadDepth,
    });
  }

  #reserved?: Set<string>;
  #released = false;

  constructor(readonly init: InstanceQuotaInit) {}

  /**
   * Checks a meta (depth, `MAX_PRESENCE_META_BYTES`) and takes room for it in the user's
   * quota, replacing the key's earlier meta; throws {@link LimitError} otherwise.
   */
  reserveMeta(key: string, meta: Payload): void {
    const { quotas, userId, slot, maxDepth } = this.init;
    const stopAt = { depth: maxDepth, bytes: quotas?.limits.presenceMetaBytes };
    const measured = measureJson(meta, stopAt);
    if (measured.depth > maxDepth) {
      throw new LimitError(
        ReplyReason.invalidPayload,
        `presence meta nests deeper than ${maxDepth} levels (MAX_PAYLOAD_DEPTH)`,
      );
    }
    if (!quotas) return;
    if (userId === undefined) return quotas.checkMetaBytes(measured.bytes);
    quotas.reservePresence(userId, `${slot} ${key}`, measured.bytes);
    (this.#reserved ??= new Set()).add(key);
  }

  /**
   * Takes room for `meta` and runs `apply` (the tracker's track or update); when it throws
   * (a refusal), the key's room goes back to `old` (its meta before), or is given back.
   */
  withMeta(key: string, meta: Payload, apply: () => void, old?: Payload): void {
    this.reserveMeta(key, meta);
    try {
      apply();
    } catch (err) {
      if (old) this.reserveMeta(key, old);
      else this.releaseMeta(key);
      throw err;
    }
  }

  /** Gives back the room of one key's meta. */
  releaseMeta(key: string): void {
    const { quotas, userId, slot } = this.init;
    if (userId === undefined || !this.#reserved?.delete(key)) return;
    quotas?.releasePresence(userId, `${slot} ${key}`);
  }

  /** Gives back every meta and the topic (idempotent). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    for (const key of this.#reserved ?? []) this.releaseMeta(key);
    if (this.init.userId !== undefined) this.init.quotas?.leaveTopic(this.init.userId);
  }
}
