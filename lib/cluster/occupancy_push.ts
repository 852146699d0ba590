/**
 * The `occupancy` event: to the subscribers of a channel with `occupancy: true`, each node
 * pushes the topic's cluster-wide `{subscribers, users}` when it changed, at most once per tick
 * of {@link ClusterOccupancy} (a second). Each node tells its own subscribers: nothing more
 * crosses the bus than the counts themselves.
 *
 * @example
 * ```ts
 * pushOccupancy({ cluster, hub, wants: (topic) => topic.startsWith("status:") });
 * ```
 * @module
 */
import type { Hub } from "../core/hub.ts";
import { ControlEvent } from "../core/protocol.ts";
import type { ClusterOccupancy } from "./occupancy.ts";

/** Options of {@link pushOccupancy}. */
export interface OccupancyPushOptions {
  cluster: ClusterOccupancy;
  hub: Hub;
  /** True when the topic's channel opted in (`occupancy: true`). */
  wants(topic: string): boolean;
}

/** Starts pushing `occupancy` events on every tick of `cluster`. */
export function pushOccupancy({ cluster, hub, wants }: OccupancyPushOptions): void {
  /** What this node's subscribers of each topic were last told (`subscribers,users`). */
  const told = new Map<string, string>();
  cluster.onTick((topics) => {
    for (const topic of topics) {
      if (hub.subscriberCount(topic) === 0) {
        told.delete(topic);
        continue;
      }
      if (!wants(topic)) continue;
      const counts = cluster.of(topic);
      const key = `${counts.subscribers},${counts.users}`;
      if (told.get(topic) === key) continue;
      told.set(topic, key);
      hub.deliverLocal(topic, ControlEvent.occupancy, { ...counts });
    }
  });
}
