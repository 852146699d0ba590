/**
 * What sessions and channel servers need of the node they run on: configuration, time, logs,
 * metrics, the channel router, the hub and the presence tracker. They depend on this small
 * interface, not on the whole {@link Switchboard}, so the module graph has no circles.
 *
 * @example
 * ```ts
 * function countJoin(node: NodeServices, transport: string) {
 *   node.metrics.inc("switchboard_joins_total", { transport });
 * }
 * ```
 * @module
 */
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { UserQuotas } from "./user_quotas.ts";
import type { ChannelRouter } from "./channel.ts";
import type { Hub } from "./hub.ts";
import type { PresenceTracker } from "./presence.ts";
import type { Clock } from "./time.ts";

import type { Identity } from "./identity.ts";

export type { Identity } from "./identity.ts";

/** The outcome of {@link NodeServices.verifyIdentity}; `error` says why a token was refused. */
export type IdentityCheck = { ok: true; identity: Identity } | { ok: false; error: string };

/** The node's services, as a session and its channels use them. */
export interface NodeServices {
  /**
   * Verifies a token as a connect token is verified (`SOCKET_SECRET`); undefined when the node
   * has no secret (dev: tokens are not checked).
   */
  verifyIdentity(token: string): Promise<IdentityCheck> | undefined;
  readonly config: Config;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly router: ChannelRouter;
  readonly hub: Hub;
  readonly presence: PresenceTracker;
  /** Per-user bounds (issue 21); absent: none apply. */
  readonly quotas?: UserQuotas;
}
