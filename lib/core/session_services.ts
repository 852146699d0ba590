/**
 * What sessions and channel servers need of the node they run on: its options, time, logs,
 * metrics, the channel router, the hub and the presence tracker. They depend on this small
 * interface, not on the whole {@link Switchboard}, so the module graph has no circles.
 *
 * @example
 * ```ts
 * function countJoin(node: SessionServices, transport: string) {
 *   node.metrics.inc("switchboard_joins_total", { transport });
 * }
 * ```
 * @module
 */
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { UserQuotas } from "./user_quotas.ts";
import type { ChannelRouter } from "./channel.ts";
import type { Hub } from "./hub.ts";
import type { NodeOptions } from "./options.ts";
import type { PresenceTracker } from "./presence.ts";
import type { Clock } from "./time.ts";

import type { Identity } from "./identity.ts";

export type { Identity } from "./identity.ts";

/** The outcome of {@link SessionServices.verifyIdentity}; `error` says why a token was refused. */
export type IdentityCheck = { ok: true; identity: Identity } | { ok: false; error: string };

/** The node's services, as a session and its channels use them. */
export interface SessionServices {
  /**
   * Verifies a token as a connect token is verified (the injected authenticate hook);
   * undefined when the node has none (dev: tokens are not checked).
   */
  verifyIdentity(token: string): Promise<IdentityCheck> | undefined;
  readonly options: NodeOptions;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly router: ChannelRouter;
  readonly hub: Hub;
  readonly presence: PresenceTracker;
  /** Per-user bounds (issue 21); absent: none apply. */
  readonly quotas?: UserQuotas;
}
