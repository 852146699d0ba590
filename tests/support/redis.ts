/**
 * The tests' real Redis: `redis-server` and the Upstash bridge as subprocesses, shared with the
 * bench and `deno task dev:cluster` (the code lives in scripts/support/redis.ts).
 *
 * @example
 * ```ts
 * await using redis = await startRedis();
 * await using bridge = await startBridge({ redisUrl: redis.url, token: "t" });
 * ```
 * @module
 */
export * from "../../scripts/support/redis.ts";
export { freePort } from "../../scripts/support/process.ts";
