/**
 * `deno task bench`: Switchboard against the raw Deno limit and Socket.IO 4, same machine,
 * same run, same load generator. Prints a table (stdout; progress goes to stderr) and writes
 * JSON to bench/results/.
 *
 * ```sh
 * deno task bench                      # everything, ~10 min
 * deno task bench --quick              # smaller N, a smoke run in ~2 min
 * deno task bench --scenario=fanout    # fanout | latency | memory | storm | cross-node | soak | workers | parallel | crowd | deltas | occupancy (or 1-11, comma-separated)
 * deno task bench --out=path.json
 * ```
 * @module
 */
import { killChildren } from "../scripts/support/process.ts";
import { type Machine, machine, renderTable, type Section } from "./lib/report.ts";
import {
  ensureSocketIo,
  startTarget,
  type Target,
  type TargetName,
  TARGETS,
} from "./lib/targets.ts";
import { budget, describe, log } from "./scenarios/common.ts";
import { crossNodeReport, type CrossNodeResult, runCrossNode } from "./scenarios/cross_node.ts";
import {
  type FanoutOptions,
  fanoutReport,
  type FanoutResult,
  runFanout,
} from "./scenarios/fanout.ts";
import {
  type LatencyOptions,
  latencyReport,
  type LatencyResult,
  runLatency,
} from "./scenarios/latency.ts";
import { memoryReport, type MemoryResult, runMemory } from "./scenarios/memory.ts";
import { runStorm, stormReport, type StormResult } from "./scenarios/storm.ts";
import { runSoak, soakReport, type SoakResult } from "./scenarios/soak.ts";
import { runWorkers, workersReport, type WorkersResult } from "./scenarios/workers.ts";
import { parallelReport, type ParallelResult, runParallel } from "./scenarios/parallel.ts";
import { type CrowdOptions, crowdReport, type CrowdResult, runCrowd } from "./scenarios/crowd.ts";
import {
  DELTAS_FULL,
  DELTAS_QUICK,
  type DeltasOptions,
  deltasReport,
  type DeltasResult,
  runDeltas,
} from "./scenarios/deltas.ts";
import {
  type OccupancyOptions,
  occupancyReport,
  type OccupancyResult,
  runOccupancy,
} from "./scenarios/occupancy.ts";

const SCENARIOS = [
  "fanout",
  "latency",
  "memory",
  "storm",
  "cross-node",
  "soak",
  "workers",
  "parallel",
  "crowd",
  "deltas",
  "occupancy",
] as const;
type Scenario = typeof SCENARIOS[number];

interface Config {
  fanout: FanoutOptions[];
  latency: LatencyOptions;
  memory: number;
  /** Wait before reading RSS. */
  settleMs: number;
  /** Disturbed rounds are measured again only during this long from the start. */
  retryForMs: number;
  storm: { n: number; spreadMs: number };
  crossNode: { fanout: FanoutOptions[]; latency: LatencyOptions };
  /** Churn seconds after the warm-up, and clients alive at a time. */
  soak: { seconds: number; concurrency: number };
  /** The Worker on workerd (one node object) against Switchboard on Deno, same rounds. */
  workers: { fanout: FanoutOptions[]; latency: LatencyOptions };
  /** `deno serve --parallel` with 1 and 2 workers, same rounds. */
  parallel: { fanout: FanoutOptions; latency: LatencyOptions };
  /** Crowd presence: a join storm on one node and on two (bench/scenarios/crowd.ts). */
  crowd: CrowdOptions;
  /** Fossil deltas against full payloads on a status page (scenarios/deltas.ts). */
  deltas: DeltasOptions;
  /** An occupancy-heavy status page on two nodes with Redis. */
  occupancy: OccupancyOptions;
}

const _fanout = (n: number, batch: number, perRound: number, rounds: number): FanoutOptions => ({
  n,
  batch,
  window: batch * 3,
  perRound,
  rounds,
  timeoutMs: 60_000,
});

const FULL: Config = {
  fanout: [_fanout(2_000, 10, 150, 3), _fanout(10_000, 5, 40, 3)],
  latency: { n: 2_000, rate: 10, seconds: 5, rounds: 3, sampleEvery: 10 },
  memory: 5_000,
  settleMs: 2_000,
  retryForMs: 420_000,
  storm: { n: 2_000, spreadMs: 1_000 },
  crossNode: {
    fanout: [_fanout(2_000, 10, 150, 3), _fanout(10_000, 5, 40, 3)],
    latency: { n: 2_000, rate: 10, seconds: 5, rounds: 3, sampleEvery: 10 },
  },
  soak: { seconds: 120, concurrency: 40 },
  workers: {
    fanout: [_fanout(2_000, 10, 150, 3)],
    latency: { n: 2_000, rate: 10, seconds: 5, rounds: 3, sampleEvery: 10 },
  },
  parallel: {
    fanout: _fanout(2_000, 10, 150, 3),
    latency: { n: 2_000, rate: 10, seconds: 5, rounds: 3, sampleEvery: 10 },
  },
  crowd: { n: 5_000, spreadMs: 2_500 },
  deltas: DELTAS_FULL,
  occupancy: { viewers: 2_000, churnPerSecond: 50, seconds: 10, idleSeconds: 60 },
};

const QUICK: Config = {
  fanout: [_fanout(500, 10, 200, 2), _fanout(2_000, 10, 60, 2)],
  latency: { n: 500, rate: 10, seconds: 2, rounds: 2, sampleEvery: 5 },
  memory: 1_000,
  settleMs: 500,
  // A smoke run: disturbed rounds are kept as they are.
  retryForMs: 0,
  storm: { n: 500, spreadMs: 1_000 },
  crossNode: {
    fanout: [_fanout(500, 10, 200, 2)],
    latency: { n: 500, rate: 10, seconds: 2, rounds: 2, sampleEvery: 5 },
  },
  soak: { seconds: 20, concurrency: 20 },
  workers: {
    fanout: [_fanout(500, 10, 200, 2)],
    latency: { n: 500, rate: 10, seconds: 2, rounds: 2, sampleEvery: 5 },
  },
  parallel: {
    fanout: _fanout(500, 10, 200, 2),
    latency: { n: 500, rate: 10, seconds: 2, rounds: 2, sampleEvery: 5 },
  },
  crowd: { n: 1_000, spreadMs: 1_000 },
  deltas: DELTAS_QUICK,
  occupancy: { viewers: 500, churnPerSecond: 20, seconds: 5, idleSeconds: 20 },
};

function parseArgs(args: string[]) {
  let quick = false;
  let out: string | undefined;
  let scenarios: Scenario[] = [...SCENARIOS];
  for (const arg of args) {
    if (arg === "--quick") quick = true;
    else if (arg.startsWith("--out=")) out = arg.slice(6);
    else if (arg.startsWith("--scenario=")) {
      scenarios = arg.slice(11).split(",").map((name) => {
        const s = /^\d+$/.test(name) ? SCENARIOS[Number(name) - 1] : name.replace("_", "-");
        if (!SCENARIOS.includes(s as Scenario)) {
          throw new Error(
            `unknown scenario "${name}": use ${SCENARIOS.join(", ")} or 1-${SCENARIOS.length}`,
          );
        }
        return s as Scenario;
      });
    } else if (arg === "--help" || arg === "-h") {
      console.log(
        "deno task bench [--quick] [--scenario=fanout,latency,memory,storm,cross-node,soak,workers,parallel,crowd,deltas,occupancy] [--out=FILE]",
      );
      Deno.exit(0);
    } else throw new Error(`unknown argument ${arg} (try --help)`);
  }
  const all = scenarios.length === SCENARIOS.length;
  out ??= new URL(
    `./results/${quick ? "quick" : all ? "latest" : scenarios.join("+")}.json`,
    import.meta.url,
  ).pathname;
  return { quick, out, scenarios };
}

interface Results {
  fanout?: Record<string, Record<string, FanoutResult>>;
  latency?: Record<string, LatencyResult>;
  memory?: Record<"websocket" | "sse", Record<string, MemoryResult>>;
  storm?: Record<string, StormResult>;
  crossNode?: CrossNodeResult;
  soak?: SoakResult;
  workers?: WorkersResult;
  parallel?: ParallelResult;
  crowd?: CrowdResult;
  deltas?: DeltasResult;
  occupancy?: OccupancyResult;
}

async function main() {
  const { quick, out, scenarios } = parseArgs(Deno.args);
  const config = quick ? QUICK : FULL;
  const started = new Date();
  const loadStart = Deno.loadavg();
  budget.retryUntil = performance.now() + config.retryForMs;
  const sio = await ensureSocketIo(log);
  if (!sio.ok) log(`Socket.IO unavailable, its column stays empty: ${sio.error}`);
  const targets = TARGETS.filter((t) => t !== "socketio" || sio.ok);
  const info: Machine = await machine(sio.version);
  log(
    `${info.cpu}, ${info.cores} cores, Deno ${info.deno}, Node ${info.node}, socket.io ${
      sio.version ?? "—"
    }`,
  );
  const results: Results = {};

  if (scenarios.includes("fanout")) {
    results.fanout = {};
    for (const o of config.fanout) {
      log(
        `fan-out, ${
          o.n.toLocaleString("en-US")
        } subscribers, batches of ${o.batch}, ${o.rounds} rounds`,
      );
      results.fanout[o.n] = await withTargets(targets, (ts) => runFanout(ts, o));
    }
  }
  if (scenarios.includes("latency")) {
    const o = config.latency;
    log(`latency, ${o.n} subscribers, ${o.rate} msg/s, sampled on every ${o.sampleEvery}th`);
    results.latency = await withTargets(targets, (ts) => runLatency(ts, o));
  }
  if (scenarios.includes("memory")) {
    results.memory = { websocket: {}, sse: {} };
    for (const transport of ["websocket", "sse"] as const) {
      log(`memory per idle ${transport} connection, ${config.memory} connections`);
      for (const kind of targets) {
        if (transport === "sse" && kind === "socketio") continue;
        results.memory[transport][kind] = await runMemory(
          kind,
          transport,
          config.memory,
          config.settleMs,
        );
      }
    }
  }
  if (scenarios.includes("storm")) {
    results.storm = {};
    const { n, spreadMs } = config.storm;
    log(`presence join storm, ${n} users joining within ${spreadMs} ms`);
    for (const kind of targets) results.storm[kind] = await runStorm(kind, n, spreadMs);
  }
  if (scenarios.includes("cross-node")) {
    log("cross-node: redis-server + Upstash bridge + two Switchboard nodes");
    results.crossNode = await runCrossNode(config.crossNode.fanout, config.crossNode.latency);
    if (results.crossNode.skipped) log(`cross-node skipped: ${results.crossNode.skipped}`);
  }
  if (scenarios.includes("workers")) {
    log("Workers: the Worker on workerd (deno task dev:worker) and Switchboard on Deno");
    results.workers = await runWorkers(config.workers.fanout, config.workers.latency);
    if (results.workers.skipped) log(`workers skipped: ${results.workers.skipped}`);
  }
  if (scenarios.includes("soak")) {
    const { seconds, concurrency } = config.soak;
    log(`soak: ${seconds} s of connect/join/leave churn with broadcasts (after a warm-up)`);
    results.soak = await runSoak(seconds, concurrency);
  }

  if (scenarios.includes("parallel")) {
    log("all cores: deno serve --parallel with 1 and 2 workers");
    results.parallel = await runParallel(config.parallel.fanout, config.parallel.latency);
  }

  if (scenarios.includes("crowd")) results.crowd = await runCrowd(config.crowd);
  if (scenarios.includes("deltas")) {
    log("Fossil deltas: a status page's SSE viewers with and without deltas, same server");
    results.deltas = await runDeltas(config.deltas);
  }
  if (scenarios.includes("occupancy")) {
    results.occupancy = await runOccupancy(config.occupancy);
  }

  const { rows, notes } = buildReport(results, config, sio.ok);
  const finished = new Date();
  const table = renderTable(rows);
  console.log(
    `\nSwitchboard bench (${quick ? "quick" : "full"}), ${started.toISOString()}\n` +
      `machine: ${info.cpu}, ${info.cores} cores, ${info.memoryMiB} MiB, ${info.os}; ` +
      `Deno ${info.deno}, Node ${info.node}, socket.io ${info.socketIo ?? "—"}\n`,
  );
  console.log(table);
  if (results.crossNode?.skipped) {
    console.log(`\ncross-node: skipped: ${results.crossNode.skipped}`);
  }
  if (notes.length) console.log(`\n${notes.join("\n")}`);
  const report = {
    command: `deno task bench ${Deno.args.join(" ")}`.trim(),
    mode: quick ? "quick" : "full",
    scenarios,
    startedAt: started.toISOString(),
    durationS: Math.round((finished.getTime() - started.getTime()) / 1000),
    machine: info,
    loadAverage: { start: loadStart, end: Deno.loadavg() },
    config,
    table: rows,
    results,
  };
  await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(out, JSON.stringify(report, null, 2) + "\n");
  log(`wrote ${out} (${report.durationS} s)`);
}

/** Starts the targets, runs `fn` with the ones that came up, stops them all. */
async function withTargets<T>(
  kinds: TargetName[],
  fn: (targets: Target[]) => Promise<Record<string, T>>,
): Promise<Record<string, T | { error: string }>> {
  const running: Target[] = [];
  const failed: Record<string, { error: string }> = {};
  try {
    for (const kind of kinds) {
      try {
        running.push(await startTarget(kind));
      } catch (err) {
        failed[kind] = { error: describe(err) };
        log(`  ${kind} did not start: ${failed[kind].error}`);
      }
    }
    return { ...failed, ...await fn(running) };
  } finally {
    await Promise.all(running.map((t) => t.stop()));
  }
}

/**
 * The table and the notes under it: each scenario's own section (its rows and their pass
 * rules live with the scenario), in table order.
 */
function buildReport(results: Results, config: Config, sioOk: boolean): Required<Section> {
  const sections: Section[] = [];
  if (results.fanout) sections.push(fanoutReport(results.fanout, sioOk));
  if (results.latency) sections.push(latencyReport(results.latency, config.latency, sioOk));
  if (results.memory) sections.push(memoryReport(results.memory, config.memory, sioOk));
  if (results.storm) sections.push(stormReport(results.storm, config.storm.n, sioOk));
  if (results.crossNode) {
    sections.push(crossNodeReport(results.crossNode, config.crossNode.latency, sioOk));
  }
  if (results.workers) sections.push(workersReport(results.workers, config.workers.latency));
  if (results.parallel) sections.push(parallelReport(results.parallel, config.parallel.fanout));
  if (results.soak) sections.push(soakReport(results.soak));
  if (results.crowd) sections.push(crowdReport(results.crowd));
  if (results.deltas) sections.push(deltasReport(results.deltas));
  if (results.occupancy) sections.push(occupancyReport(results.occupancy, config.occupancy));
  return {
    rows: sections.flatMap((s) => s.rows),
    notes: sections.flatMap((s) => s.notes ?? []),
  };
}

if (import.meta.main) {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      console.error(`bench: ${signal}, stopping the servers and generators`);
      killChildren();
      Deno.exit(130);
    });
  }
  try {
    await main();
  } catch (err) {
    console.error(`bench failed: ${err instanceof Error ? err.message : err}`);
    Deno.exit(1);
  }
  Deno.exit(0);
}
