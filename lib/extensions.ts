/**
 * Plugs the cluster-wide services into a node: occupancy over the bus (and the `occupancy`
 * event), the server API's commands on every node, and the webhooks when `WEBHOOK_URL` is set.
 * {@link createSwitchboard} calls it for every entry point (Deno, `deno serve --parallel`, the
 * Worker).
 *
 * @example
 * ```ts
 * extendNode(switchboard, { config, timers: plainTimers, single: true });
 * switchboard.extensions.occupancy.of("status:acme"); // every node's subscribers
 * ```
 * @module
 */
import { ClusterControl } from "./cluster/control.ts";
import { ClusterOccupancy } from "./cluster/occupancy.ts";
import { pushOccupancy } from "./cluster/occupancy_push.ts";
import type { Switchboard } from "./core/switchboard.ts";
import type { Timers } from "./core/time.ts";
import type { Config } from "./config.ts";
import { WebhookSender } from "./webhooks/sender.ts";
import { WebhookWatcher } from "./webhooks/watcher.ts";

/** What {@link extendNode} needs. */
export interface NodeExtensionSetup {
  config: Config;
  timers: Timers;
  /** The node has no peers (in-memory broker): no warmup before it sends webhooks. */
  single: boolean;
}

/** Replaces the node's local-only occupancy and server API with the cluster's. */
export function extendNode(switchboard: Switchboard, setup: NodeExtensionSetup): void {
  const { config, timers, single } = setup;
  const { hub, clock, log } = switchboard;
  const cluster = new ClusterOccupancy({
    hub,
    local: switchboard.occupancy,
    timers,
    clock,
    log,
    heartbeatMs: config.redisHeartbeatMs,
    warmupMs: single ? 0 : undefined,
    single,
    sends: config.webhook !== undefined,
  });
  pushOccupancy({
    cluster,
    hub,
    // A crowd (a presence topic past its threshold) sends its own count.
    wants: (topic) =>
      switchboard.router.match(topic)?.channel.occupancy === true &&
      !switchboard.presence.isCrowd(topic),
  });
  const control = new ClusterControl({ hub, local: switchboard, log });
  const sender = config.webhook
    ? new WebhookSender({ ...config.webhook, metrics: switchboard.metrics, log, clock })
    : undefined;
  if (sender) new WebhookWatcher({ cluster, presence: switchboard.presence, sender });
  switchboard.extensions = {
    occupancy: cluster,
    disconnect: (userId) => control.disconnect(userId),
    unsubscribe: (userId, topic) => control.unsubscribe(userId, topic),
    close: async () => {
      // One last tick: the final counts (and the webhooks they make) go out, then the goodbye.
      cluster.tick();
      cluster.close();
      control.close();
      await sender?.close();
    },
  };
}
