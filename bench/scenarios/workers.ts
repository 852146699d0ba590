/**
 * Scenario 7, Cloudflare Workers: scenarios 1 and 2 (fan-out throughput, latency) against the
 * Worker on workerd, started as a user starts it (`deno task dev:worker`: the pinned
 * `wrangler dev`), and against Switchboard on Deno and the raw Deno reference in the same
 * rounds. All subscribers land on one node Durable Object (the default, one node). Server CPU
 * counts every process of the dev stack (wrangler's Node process, its proxy workerd and the
 * Worker's workerd): `wrangler dev` puts a local proxy in front of the Worker, so the numbers
 * are those of local development on workerd, not of Cloudflare's edge.
 *
 * Skipped (never faked) when the pinned wrangler is not installed.
 * @module
 */
import { processTree, registerChild, spawnListening } from "../../scripts/support/process.ts";
import { closeNotes, count, notesOf, type Row, type Section, withRatios } from "../lib/report.ts";
import { ROOT, startTarget, type Subject, type Target } from "../lib/targets.ts";
import { describe, log } from "./common.ts";
import { type FanoutOptions, type FanoutResult, runFanout } from "./fanout.ts";
import { type LatencyOptions, type LatencyResult, runLatency } from "./latency.ts";

/** The key of the Worker subject in results. */
export const WORKER = "switchboard_worker";

/** The scenario's result. */
export interface WorkersResult {
  /** Why it did not run. */
  skipped?: string;
  /** Fan-out results by subscriber count, then by subject key. */
  fanout?: Record<string, Record<string, FanoutResult>>;
  latency?: Record<string, LatencyResult>;
  error?: string;
}

/** Runs the scenario (or reports why it was skipped). */
export async function runWorkers(
  fanouts: FanoutOptions[],
  latency: LatencyOptions,
): Promise<WorkersResult> {
  try {
    await Deno.stat(`${ROOT}deploy/cloudflare/node_modules/.bin/wrangler`);
  } catch {
    return { skipped: "wrangler not installed (npm ci --prefix deploy/cloudflare)" };
  }
  const running: { stop(): Promise<unknown> }[] = [];
  try {
    const worker = await spawnListening({
      name: "worker",
      args: ["task", "dev:worker"],
      // One node, open API, whatever the shell has: like the Deno target's single node.
      env: {
        PORT: "0",
        HOST: "127.0.0.1",
        LOG_LEVEL: "warn",
        API_TOKEN: "",
        UPSTASH_REDIS_REST_URL: "",
        UPSTASH_REDIS_REST_TOKEN: "",
        SWITCHBOARD_NODES: "",
        // No line per request from wrangler: its Node process counts as server CPU here.
        WRANGLER_LOG: "warn",
      },
      timeoutMs: 90_000,
      stopGraceMs: 5_000,
    });
    running.push(worker);
    const pids = processTree(worker.pid);
    // An interrupted bench kills `deno task` only; its tree (dev_worker, wrangler, workerd) too.
    const unregister = registerChild(() => {
      for (const pid of pids) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
    });
    running.push({ stop: () => Promise.resolve(void unregister()) });
    log(`  worker up on ${worker.url} (${pids.length} processes: wrangler, workerd)`);
    const deno: Target = await startTarget("switchboard");
    running.push(deno);
    const raw = await startTarget("raw");
    running.push(raw);
    const onWorkerd: Subject = {
      key: WORKER,
      label: "Switchboard on workerd",
      host: worker.host,
      port: worker.port,
      proto: "phoenix",
      wsPath: deno.wsPath,
      ssePath: deno.ssePath,
      broadcastUrl: `${worker.url}/api/broadcast`,
      pids,
    };
    const result: WorkersResult = { fanout: {} };
    for (const o of fanouts) {
      log(`Workers fan-out, ${o.n.toLocaleString("en-US")} subscribers on one node object`);
      result.fanout![o.n] = await runFanout([onWorkerd, deno, raw], o);
    }
    log(`Workers latency, ${latency.n} subscribers, ${latency.rate} msg/s`);
    result.latency = await runLatency([onWorkerd, deno, raw], latency);
    return result;
  } catch (err) {
    log(`  workers: ${describe(err)}`);
    return { error: describe(err) };
  } finally {
    for (const server of running.reverse()) await server.stop().catch(() => {});
  }
}

/**
 * Scenario 7's table (information): per metric one row for the Worker on workerd and one for
 * Switchboard on Deno, each against raw Deno from the same rounds, and the workerd / Deno ratio
 * in the goal column.
 *
 * @example
 * ```ts
 * const { rows, notes } = workersReport(await runWorkers(fanouts, latency), latency);
 * ```
 */
export function workersReport(w: WorkersResult, latency: LatencyOptions): Section {
  if (w.skipped || w.error) {
    return {
      rows: [{
        scenario: "7 Workers (workerd, wrangler dev)",
        metric: "fan-out and latency",
        unit: "-",
        values: {},
        notes: { switchboard: w.skipped ? `skipped: ${w.skipped}` : "error" },
      }],
    };
  }
  const rows: Row[] = [];
  const notes: string[] = [];
  const pair = (
    scenario: string,
    metric: string,
    unit: string,
    r: Record<string, FanoutResult | LatencyResult>,
    read: (x: FanoutResult & LatencyResult) => number | undefined,
  ) => {
    const get = (key: string) => {
      const x = r[key] as (FanoutResult & LatencyResult) | undefined;
      return x && !x.error ? read(x) : undefined;
    };
    const onWorkerd = get(WORKER);
    const onDeno = get("switchboard");
    const ratio = onWorkerd !== undefined && onDeno ? (onWorkerd / onDeno).toFixed(2) : "—";
    const cells = { ...notesOf(r, true), socketio: "n/a" };
    rows.push(
      withRatios({
        scenario,
        metric: `${metric}, workerd`,
        unit,
        values: { [WORKER]: onWorkerd, raw: get("raw") },
        notes: cells,
        goal: `info: workerd/Deno ${ratio}x`,
      }, WORKER),
      withRatios({
        scenario: "",
        metric: `${metric}, Deno`,
        unit,
        values: { switchboard: onDeno, raw: get("raw") },
        notes: cells,
      }),
    );
  };
  for (const [size, r] of Object.entries(w.fanout ?? {})) {
    pair(
      `7 Workers fan-out ${count(Number(size))}`,
      "throughput",
      "deliveries/s",
      r,
      (x) => x.deliveriesPerSec,
    );
    pair("", "server CPU per delivery", "µs", r, (x) => x.cpuUsPerDelivery);
    notes.push(...closeNotes(`Workers fan-out ${size}`, r));
  }
  if (w.latency) {
    pair(
      `7 Workers latency ${count(latency.n)} @${latency.rate}/s`,
      "p99 publish→receive",
      "ms",
      w.latency,
      (x) => x.latencyMs?.p99,
    );
    notes.push(...closeNotes("Workers latency", w.latency));
  }
  return { rows, notes };
}
