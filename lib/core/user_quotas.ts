/**
 * Per-user bounds across every socket of one user on this node: how many presence metas and
 * how many bytes of them, and how many topics joined. A token is one user, whatever the number
 * of connections it opens; without these, one token with 50 sockets × 100 topics × 60 KB
 * metas took 440 MB. Anonymous identities are not pooled (they share no id): per-session
 * limits bound them.
 *
 * @example
 * ```ts
 * const quotas = new UserQuotas({
 *   presenceMetaBytes: 32_768,
 *   presencesPerUser: 200,
 *   presenceBytesPerUser: 2 << 20,
 *   topicsPerUser: 1000,
 * });
 * quotas.reservePresence("ann", "ch1 ann", 120); // throws LimitError past a bound
 * quotas.releasePresence("ann", "ch1 ann");
 * ```
 * @module
 */
import { LimitError } from "./limits.ts";

/** The bounds, as `Config.limits` holds them. */
export interface UserQuotaLimits {
  presenceMetaBytes: number;
  presencesPerUser: number;
  presenceBytesPerUser: number;
  topicsPerUser: number;
}

/** Reasons of the refusals (`switchboard_refused_total{reason}` and the error replies). */
export const QuotaReason = {
  presenceMetaTooLarge: "presence_meta_too_large",
  tooManyPresences: "too_many_presences",
  tooManyTopicsForUser: "too_many_topics_for_user",
  /** A topic's presences on this node would not fit the cluster bus (`presence.ts`). */
  presenceTopicFull: "presence_topic_full",
} as const;

interface _UserPresence {
  bytes: number;
  /** slot (channel instance and key) → bytes of its meta */
  slots: Map<string, number>;
}

/** Counts presence metas and joined topics per user, refusing past the bounds. */
export class UserQuotas {
  readonly #presence = new Map<string, _UserPresence>();
  readonly #topics = new Map<string, number>();

  constructor(readonly limits: UserQuotaLimits) {}

  /**
   * Takes (or resizes, on an update) the room of one meta of `userId`; throws
   * {@link LimitError} when the meta or the user's total would pass a bound.
   */
  reservePresence(userId: string, slot: string, bytes: number): void {
    const { presencesPerUser, presenceBytesPerUser } = this.limits;
    this.checkMetaBytes(bytes);
    let user = this.#presence.get(userId);
    const before = user?.slots.get(slot);
    const count = (user?.slots.size ?? 0) + (before === undefined ? 1 : 0);
    if (count > presencesPerUser) {
      throw new LimitError(
        QuotaReason.tooManyPresences,
        `user has ${presencesPerUser} presences tracked on this node (MAX_PRESENCES_PER_USER): ` +
          "untrack some, or leave topics",
      );
    }
    const total = (user?.bytes ?? 0) - (before ?? 0) + bytes;
    if (total > presenceBytesPerUser) {
      throw new LimitError(
        QuotaReason.tooManyPresences,
        `user's presence metas would take ${total} bytes on this node; at most ` +
          `${presenceBytesPerUser} (MAX_PRESENCE_BYTES_PER_USER)`,
      );
    }
    if (!user) this.#presence.set(userId, user = { bytes: 0, slots: new Map() });
    user.slots.set(slot, bytes);
    user.bytes = total;
  }

  /** Throws {@link LimitError} for a meta larger than `MAX_PRESENCE_META_BYTES`. */
  checkMetaBytes(bytes: number): void {
    const max = this.limits.presenceMetaBytes;
    if (bytes <= max) return;
    throw new LimitError(
      QuotaReason.presenceMetaTooLarge,
      `presence meta of about ${bytes} bytes; at most ${max} (MAX_PRESENCE_META_BYTES): ` +
        "keep metas small, put data in messages",
    );
  }

  /** Gives back the room of one meta (a no-op when it holds none). */
  releasePresence(userId: string, slot: string): void {
    const user = this.#presence.get(userId);
    const bytes = user?.slots.get(slot);
    if (!user || bytes === undefined) return;
    user.slots.delete(slot);
    user.bytes -= bytes;
    if (user.slots.size === 0) this.#presence.delete(userId);
  }

  /** Counts one more topic joined by `userId`; throws {@link LimitError} past the bound. */
  joinTopic(userId: string): void {
    const joined = this.#topics.get(userId) ?? 0;
    if (joined >= this.limits.topicsPerUser) {
      throw new LimitError(
        QuotaReason.tooManyTopicsForUser,
        `user has ${joined} topics joined on this node over all its connections; at most ` +
          `${this.limits.topicsPerUser} (MAX_TOPICS_PER_USER)`,
      );
    }
    this.#topics.set(userId, joined + 1);
  }

  /** Counts a topic left by `userId`. */
  leaveTopic(userId: string): void {
    const joined = (this.#topics.get(userId) ?? 1) - 1;
    if (joined <= 0) this.#topics.delete(userId);
    else this.#topics.set(userId, joined);
  }
}
