/**
 * Two (or more) Switchboard nodes joined by the Redis broker, for the scenarios that cross nodes:
 * a real `redis-server`, the Upstash REST bridge in front of it, and the nodes pointed at the
 * bridge. Every process is killed on an interrupt and stopped by the cleanup steps it adds.
 *
 * @example
 * ```ts
 * const cleanup: (() => Promise<unknown>)[] = [];
 * const { redisUrl, nodes } = await startRedisNodes(["a", "b"], "token", cleanup);
 * for (const stop of cleanup.reverse()) await stop();
 * ```
 * @module
 */
import { startBridge, startRedis } from "../../scripts/support/redis.ts";
import { startTarget, type Target } from "../lib/targets.ts";

/** Starts Redis, the bridge and one node per id; pushes their cleanup steps onto `cleanup`. */
export async function startRedisNodes(
  ids: string[],
  token: string,
  cleanup: (() => Promise<unknown>)[],
): Promise<{ redisUrl: string; nodes: Target[] }> {
  const redis = await startRedis();
  cleanup.push(() => redis.stop());
  const bridge = await startBridge({ redisUrl: redis.url, token });
  cleanup.push(() => bridge.stop());
  const env = { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: token };
  const nodes: Target[] = [];
  for (const id of ids) {
    const node = await startTarget("switchboard", { ...env, NODE_ID: id });
    cleanup.push(() => node.stop());
    nodes.push(node);
  }
  return { redisUrl: redis.url, nodes };
}
