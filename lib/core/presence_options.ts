/**
 * The options of the presence tracker (`presence.ts`): batching, the leave grace, timers,
 * crowd settings and the error and split hooks.
 *
 * @example
 * ```ts
 * const options: PresenceOptions = { batchMs: 20, leaveGraceMs: 2_000 };
 * ```
 * @module
 */
import type { CrowdSettings } from "./crowd.ts";
import type { PresenceErrorHandler } from "./presence_flush.ts";
import type { Timers } from "./time.ts";

/** Options of `PresenceTracker` (`presence.ts`). */
export interface PresenceOptions {
  /** Diffs of one topic within this window go out as one `presence_diff` (0: next tick). */
  batchMs: number;
  /**
   * How long the leave of a key's last meta on this node is held (0: sent at once). When the
   * key is tracked again on the topic within it, the leave goes out in the same diff as the
   * new join, so clients never see the key gone (a tab handing its connection to another).
   */
  leaveGraceMs?: number;
  /** Schedules batches and leave graces (default: plain timers; tests pass a fake clock). */
  timers?: Timers;
  /** The crowd settings of a topic's channel (none: the topic is never a crowd, see crowd.ts). */
  crowdSettings?: (topic: string) => CrowdSettings | undefined;
  /** Told of a failure contained in a flush or a broker callback (`presence_flush.ts`). */
  onError?: PresenceErrorHandler;
  /** Told when a topic's diff was too large for the bus and went out per key. */
  onSplit?: (topic: string) => void;
}
