/**
 * Scenario 8, all cores: fan-out against `deno serve --parallel serve_parallel.ts` (what
 * `deno task start:parallel` runs) with 1 worker and with 2 workers (`DENO_JOBS`), in the same
 * rounds, plus latency at a fixed rate. Subscribers connect to the one port (the kernel spreads
 * them over the workers); broadcasts are posted to it too, so with 2 workers each broadcast
 * crosses the BroadcastChannel to the other worker's subscribers.
 * @module
 */
import { freePort, spawnListening } from "../../scripts/support/process.ts";
import { count, type Row, type Section } from "../lib/report.ts";
import type { Subject } from "../lib/targets.ts";
import { describe, log } from "./common.ts";
import { type FanoutOptions, type FanoutResult, runFanout } from "./fanout.ts";
import { type LatencyOptions, type LatencyResult, runLatency } from "./latency.ts";

/** Result keys: 1 and 2 workers. */
export const WORKERS = ["switchboard_1w", "switchboard_2w"] as const;

/** The scenario's result. */
export interface ParallelResult {
  fanout?: Record<string, FanoutResult>;
  latency?: Record<string, LatencyResult>;
  error?: string;
}

/** Runs fan-out and latency against 1 and 2 workers. */
export async function runParallel(
  fanout: FanoutOptions,
  latency: LatencyOptions,
): Promise<ParallelResult> {
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const subjects: Subject[] = [];
    for (const jobs of [1, 2]) {
      const port = freePort();
      const server = await spawnListening({
        name: `parallel-${jobs}`,
        args: [
          "serve",
          "--parallel",
          "--allow-net",
          "--allow-env",
          "--port",
          String(port),
          "--host",
          "127.0.0.1",
          "serve_parallel.ts",
        ],
        env: { DENO_JOBS: String(jobs), LOG_LEVEL: "warn", API_TOKEN: "" },
        stopGraceMs: 5_000,
      });
      stops.push(() => server.stop());
      subjects.push({
        key: WORKERS[jobs - 1],
        label: `Switchboard ${jobs} worker${jobs > 1 ? "s" : ""}`,
        host: "127.0.0.1",
        port,
        proto: "phoenix",
        wsPath: (userId) => `/socket/websocket?vsn=2.0.0${userId ? `&user_id=${userId}` : ""}`,
        ssePath: (topic) => `/events?topic=${encodeURIComponent(topic)}`,
        broadcastUrl: `http://127.0.0.1:${port}/api/broadcast`,
        pids: [server.pid],
      });
    }
    // Both workers of the second server must know each other before clients arrive.
    await new Promise((r) => setTimeout(r, 2_000));
    log(`all cores: fan-out, ${fanout.n.toLocaleString("en-US")} subscribers, 1 vs 2 workers`);
    const result: ParallelResult = { fanout: await runFanout(subjects, fanout) };
    log(`all cores: latency, ${latency.n} subscribers at ${latency.rate} msg/s, 1 vs 2 workers`);
    result.latency = await runLatency(subjects, latency);
    return result;
  } catch (err) {
    log(`  all cores: ${describe(err)}`);
    return { error: describe(err) };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  }
}

/**
 * Scenario 8's table (information): throughput, server CPU per delivery and p99 latency with 1
 * and with 2 `deno serve --parallel` workers.
 *
 * @example
 * ```ts
 * const { rows } = parallelReport(await runParallel(fanout, latency), fanout);
 * ```
 */
export function parallelReport(par: ParallelResult, fanout: FanoutOptions): Section {
  const rows: Row[] = [];
  const [one, two] = WORKERS;
  const f = par.fanout ?? {};
  const title = `8 all cores, fan-out ${count(fanout.n)}`;
  const metrics: [string, string, (k: string) => number | undefined][] = [
    ["throughput", "deliveries/s", (k) => f[k]?.deliveriesPerSec],
    ["server CPU per delivery", "µs", (k) => f[k]?.cpuUsPerDelivery],
    ["p99 publish→receive at 10 msg/s", "ms", (k) => par.latency?.[k]?.latencyMs?.p99],
  ];
  for (const [metric, unit, pick] of metrics) {
    for (const [key, workers] of [[one, "1 worker"], [two, "2 workers"]]) {
      rows.push({
        scenario: metric === "throughput" && workers === "1 worker" ? title : "",
        metric: `${metric}, ${workers}`,
        unit,
        values: { [key]: pick(key) },
        notes: par.error ? { [key]: par.error } : undefined,
        goal: "info",
      });
    }
  }
  return { rows };
}
