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
import type { ChannelRouter } from "./channel.ts";
import type { Hub } from "./hub.ts";
import type { PresenceTracker } from "./presence.ts";
import type { Clock } from "./time.ts";

export type { Identity } from "./identity.ts";

/** The node's services, as a session and its channels use them. */
export interface NodeServices {
  readonly config: Config;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly router: ChannelRouter;
  readonly hub: Hub;
  readonly presence: PresenceTracker;
}
