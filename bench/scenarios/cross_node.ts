/**
 * Scenario 5, cross-node: scenarios 1 and 2 across two Switchboard nodes joined by the Redis
 * broker (UPSTASH_REDIS_REST_URL/TOKEN pointing at the Upstash REST bridge in front of a real
 * `redis-server`). Subscribers connect to node B, messages are published to node A, so every
 * delivery crosses the broker. The raw Deno reference (one process) runs in the same rounds
 * for the ratios.
 *
 * Runs only when node A's `/healthz` reports `broker.kind === "redis"`; otherwise it is skipped
 * (never faked).
 * @module
 */
import { startBridge, startRedis } from "../../tests/support/redis.ts";
import { registerChild, sleep } from "../lib/proc.ts";
import { startTarget, type Subject, type Target } from "../lib/targets.ts";
import { describe, log } from "./common.ts";
import { type FanoutOptions, type FanoutResult, runFanout } from "./fanout.ts";
import { type LatencyOptions, type LatencyResult, runLatency } from "./latency.ts";

/** The scenario's result. */
export interface CrossNodeResult {
  /** Why it did not run. */
  skipped?: string;
  broker?: unknown;
  /** Fan-out results by subscriber count, then by subject key. */
  fanout?: Record<string, Record<string, FanoutResult>>;
  latency?: Record<string, LatencyResult>;
  error?: string;
}

/** Registers a kill for interruptions; returns a cleanup step that unregisters it. */
function registerAsync(kill: () => Promise<void>): () => Promise<void> {
  const unregister = registerChild(() => void kill());
  return () => Promise.resolve(void unregister());
}

/** The key of the two-node subject in results. */
export const TWO_NODES = "switchboard_2node";

async function health(url: string): Promise<{ broker?: { kind?: string; connected?: boolean } }> {
  try {
    const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
    return await r.json();
  } catch {
    return {};
  }
}

/** Runs the scenario (or reports why it was skipped). */
export async function runCrossNode(
  fanouts: FanoutOptions[],
  latency: LatencyOptions,
): Promise<CrossNodeResult> {
  const token = "bench-token";
  const cleanup: (() => Promise<void>)[] = [];
  try {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    cleanup.push(registerAsync(() => redis.kill()));
    const bridge = await startBridge({ redisUrl: redis.url, token });
    cleanup.push(() => bridge.stop());
    cleanup.push(registerAsync(() => bridge.kill()));
    const env = { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: token };
    const nodes: Target[] = [];
    for (const id of ["bench-a", "bench-b"]) {
      const node = await startTarget("switchboard", { ...env, NODE_ID: id });
      cleanup.push(() => node.stop());
      nodes.push(node);
    }
    const [a, b] = nodes;
    let state = await health(a.url);
    if (state.broker?.kind !== "redis") {
      return {
        skipped: "redis broker not available",
        broker: state.broker ?? "no /healthz answer",
      };
    }
    for (
      let i = 0;
      i < 50 && !(state.broker?.connected && (await health(b.url)).broker?.connected);
      i++
    ) {
      await sleep(200);
      state = await health(a.url);
    }
    log(`  two nodes up (${JSON.stringify(state.broker)}), broker via ${bridge.url}`);
    const raw = await startTarget("raw");
    cleanup.push(() => raw.stop());
    const twoNodes: Subject = {
      key: TWO_NODES,
      label: "Switchboard 2 nodes",
      host: b.host,
      port: b.port,
      proto: "phoenix",
      wsPath: b.wsPath,
      ssePath: b.ssePath,
      broadcastUrl: a.broadcastUrl,
      pids: [a.pid, b.pid],
    };
    const result: CrossNodeResult = { broker: state.broker, fanout: {} };
    for (const o of fanouts) {
      log(
        `cross-node fan-out, ${
          o.n.toLocaleString("en-US")
        } subscribers on node B, publishing to node A`,
      );
      result.fanout![o.n] = await runFanout([twoNodes, raw], o);
    }
    log(`cross-node latency, ${latency.n} subscribers on node B, ${latency.rate} msg/s to node A`);
    result.latency = await runLatency([twoNodes, raw], latency);
    return result;
  } catch (err) {
    log(`  cross-node: ${describe(err)}`);
    return { error: describe(err) };
  } finally {
    for (const stop of cleanup.reverse()) await stop().catch(() => {});
  }
}
