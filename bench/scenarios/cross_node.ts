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
import { redisStats } from "../../scripts/support/redis.ts";
import { idleCommandsPerDay } from "../../lib/cluster/redis/broker.ts";
import { sleep } from "../../scripts/support/process.ts";
import { closeNotes, count, notesOf, type Row, type Section, withRatios } from "../lib/report.ts";
import { startTarget, type Subject } from "../lib/targets.ts";
import { startRedisNodes } from "./redis_nodes.ts";
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
  /** Redis commands (Redis' own `INFO commandstats`), what Upstash bills. */
  redis?: RedisCost;
  error?: string;
}

/** What the cluster costs in Redis commands. */
export interface RedisCost {
  /** Measured: commands of one idle node per minute (two idle nodes, averaged). */
  idlePerNodeMinute: number;
  /** How long the idle window was. */
  idleWindowMs: number;
  /** By the default schedule: commands of one idle node per day. */
  idlePerNodeDayBySchedule: number;
  /** Measured: commands per broadcast, published one per API request (idle share taken out). */
  perBroadcast: number;
  /** Measured: commands per broadcast, 40 per API request (one tick, one envelope). */
  perBroadcastBatched: number;
}

/** Idles, then publishes single and batched broadcasts, counting Redis commands. */
async function measureRedisCost(redisUrl: string, publishUrl: string): Promise<RedisCost> {
  const idleWindowMs = 60_000;
  await sleep(2_000);
  const idleStart = await redisStats(redisUrl);
  await sleep(idleWindowMs);
  const idleEnd = await redisStats(redisUrl);
  const idle = idleEnd.totalCalls - idleStart.totalCalls;
  const idlePerNodeMinute = idle / 2 / (idleWindowMs / 60_000);
  const post = async (body: unknown) => {
    const res = await fetch(publishUrl, { method: "POST", body: JSON.stringify(body) });
    await res.body?.cancel();
  };
  const count = async (messages: number, perRequest: number) => {
    const before = await redisStats(redisUrl);
    const started = Date.now();
    for (let sent = 0; sent < messages; sent += perRequest) {
      await post(Array.from({ length: perRequest }, (_, k) => ({
        topic: `status:bench-cost-${(sent + k) % 10}`,
        event: "status",
        payload: { n: sent + k },
      })));
      await sleep(5);
    }
    await sleep(300);
    const after = await redisStats(redisUrl);
    const idleShare = (Date.now() - started) / 60_000 * idlePerNodeMinute * 2;
    return (after.totalCalls - before.totalCalls - idleShare) / messages;
  };
  return {
    idlePerNodeMinute,
    idleWindowMs,
    idlePerNodeDayBySchedule: idleCommandsPerDay(),
    perBroadcast: await count(200, 1),
    perBroadcastBatched: await count(2_000, 40),
  };
}

/** The key of the two-node subject in results. */
export const TWO_NODES = "switchboard_2node";

export async function health(
  url: string,
): Promise<{ broker?: { kind?: string; connected?: boolean } }> {
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
  const cleanup: (() => Promise<unknown>)[] = [];
  try {
    const { redisUrl, nodes } = await startRedisNodes(["bench-a", "bench-b"], token, cleanup);
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
    log(`  two nodes up (${JSON.stringify(state.broker)}), broker via the Upstash bridge`);
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
    log("cross-node Redis cost: 60 s of two idle nodes, then single and batched broadcasts");
    result.redis = await measureRedisCost(redisUrl, a.broadcastUrl);
    log(`  ${JSON.stringify(result.redis)}`);
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

/**
 * Scenario 5's table (information, no pass rule: raw Deno is one process): fan-out and latency
 * from node A to node B, and what the cluster costs in Redis commands.
 *
 * @example
 * ```ts
 * const { rows, notes } = crossNodeReport(await runCrossNode(fanouts, latency), latency, true);
 * ```
 */
export function crossNodeReport(
  cross: CrossNodeResult,
  latency: LatencyOptions,
  sioOk: boolean,
): Section {
  const rows: Row[] = [];
  const notes: string[] = [];
  if (cross.skipped || cross.error) {
    rows.push({
      scenario: "5 cross-node (2 nodes + Redis)",
      metric: "fan-out and latency",
      unit: "-",
      values: {},
      notes: { switchboard: cross.skipped ? `skipped: ${cross.skipped}` : "error" },
    });
  }
  for (const [size, r] of Object.entries(cross.fanout ?? {})) {
    rows.push(withRatios({
      scenario: `5 cross-node fan-out ${count(Number(size))}`,
      metric: "throughput node A→B",
      unit: "deliveries/s",
      values: { [TWO_NODES]: r[TWO_NODES]?.deliveriesPerSec, raw: r.raw?.deliveriesPerSec },
      notes: { ...notesOf(r, sioOk), socketio: "n/a" },
      goal: "info (raw = 1 process)",
    }, TWO_NODES));
    notes.push(...closeNotes(`cross-node fan-out ${size}`, r));
  }
  if (cross.latency) {
    const r = cross.latency;
    for (const q of ["p50", "p99"] as const) {
      rows.push(withRatios({
        scenario: q === "p50" ? `5 cross-node latency ${count(latency.n)}` : "",
        metric: `${q} publish→receive`,
        unit: "ms",
        values: { [TWO_NODES]: r[TWO_NODES]?.latencyMs?.[q], raw: r.raw?.latencyMs?.[q] },
        notes: { ...notesOf(r, sioOk), socketio: "n/a" },
        goal: "info (raw = 1 process)",
      }, TWO_NODES));
    }
    notes.push(...closeNotes("cross-node latency", r));
  }
  if (cross.redis) {
    const r = cross.redis;
    rows.push({
      scenario: "5 cross-node Redis commands",
      metric: "per idle node-minute (measured)",
      unit: "commands",
      values: { [TWO_NODES]: r.idlePerNodeMinute },
      notes: {
        [TWO_NODES]: `schedule: ${count(r.idlePerNodeDayBySchedule)} per idle node per day`,
      },
      goal: "about one every few seconds",
    }, {
      scenario: "",
      metric: "per broadcast, one per API request",
      unit: "commands",
      values: { [TWO_NODES]: r.perBroadcast },
      goal: "info",
    }, {
      scenario: "",
      metric: "per broadcast, 40 per API request",
      unit: "commands",
      values: { [TWO_NODES]: r.perBroadcastBatched },
      goal: "info",
    });
  }
  return { rows, notes };
}
