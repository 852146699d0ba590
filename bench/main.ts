/**
 * `deno task bench`: Switchboard against the raw Deno limit and Socket.IO 4, same machine,
 * same run, same load generator. Prints a table (stdout; progress goes to stderr) and writes
 * JSON to bench/results/.
 *
 * ```sh
 * deno task bench                      # everything, ~10 min
 * deno task bench --quick              # smaller N, a smoke run in ~2 min
 * deno task bench --scenario=fanout    # fanout | latency | memory | storm | cross-node | soak | workers | parallel | occupancy (or 1-9, comma-separated)
 * deno task bench --out=path.json
 * ```
 * @module
 */
import { killChildren } from "./lib/proc.ts";
import { type Machine, machine, renderTable, type Row, withRatios } from "./lib/report.ts";
import {
  ensureSocketIo,
  startTarget,
  type Target,
  type TargetName,
  TARGETS,
} from "./lib/targets.ts";
import { budget, describe, log } from "./scenarios/common.ts";
import { type CrossNodeResult, runCrossNode, TWO_NODES } from "./scenarios/cross_node.ts";
import { type FanoutOptions, type FanoutResult, runFanout } from "./scenarios/fanout.ts";
import { type LatencyOptions, type LatencyResult, runLatency } from "./scenarios/latency.ts";
import { type MemoryResult, runMemory } from "./scenarios/memory.ts";
import { runStorm, type StormResult } from "./scenarios/storm.ts";
import { runSoak, type SoakResult } from "./scenarios/soak.ts";
import { runWorkers, WORKER, type WorkersResult } from "./scenarios/workers.ts";
import { type ParallelResult, runParallel, WORKERS } from "./scenarios/parallel.ts";
import {
  type OccupancyOptions,
  type OccupancyResult,
  occupancyRows,
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
        const s = /^\d$/.test(name) ? SCENARIOS[Number(name) - 1] : name.replace("_", "-");
        if (!SCENARIOS.includes(s as Scenario)) {
          throw new Error(`unknown scenario "${name}": use ${SCENARIOS.join(", ")} or 1-9`);
        }
        return s as Scenario;
      });
    } else if (arg === "--help" || arg === "-h") {
      console.log(
        "deno task bench [--quick] [--scenario=fanout,latency,memory,storm,cross-node,soak,workers,parallel,occupancy] [--out=FILE]",
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

  if (scenarios.includes("occupancy")) {
    results.occupancy = await runOccupancy(config.occupancy);
  }

  const rows = buildRows(results, config, sio.ok);
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
  const notes = closeNotes(results);
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

type Errorish = { error?: string };

/** One line per scenario and subject whose server closed subscribers while measuring. */
function closeNotes(results: Results): string[] {
  const lines: string[] = [];
  const add = (
    scenario: string,
    record?: Record<string, { closeReasons?: Record<string, number> }>,
  ) => {
    for (const [key, r] of Object.entries(record ?? {})) {
      for (const [reason, count] of Object.entries(r.closeReasons ?? {})) {
        lines.push(
          `note: ${scenario}: the ${key} server closed ${count} subscribers ("${reason}"); replaced before the next round`,
        );
      }
    }
  };
  for (const [size, r] of Object.entries(results.fanout ?? {})) add(`fan-out ${size}`, r);
  add("latency", results.latency);
  for (const [size, r] of Object.entries(results.crossNode?.fanout ?? {})) {
    add(`cross-node fan-out ${size}`, r);
  }
  add("cross-node latency", results.crossNode?.latency);
  for (const [size, r] of Object.entries(results.workers?.fanout ?? {})) {
    add(`Workers fan-out ${size}`, r);
  }
  add("Workers latency", results.workers?.latency);
  return lines;
}

function notesOf(record: Record<string, Errorish | undefined> | undefined, sioOk: boolean) {
  const notes: Record<string, string> = {};
  for (const key of ["switchboard", "raw", "socketio", TWO_NODES, WORKER]) {
    const r = record?.[key];
    if (r?.error) notes[key] = "error";
  }
  if (!sioOk) notes.socketio = "n/a";
  return notes;
}

function buildRows(results: Results, config: Config, sioOk: boolean): Row[] {
  const rows: Row[] = [];
  const n = (x: number) => x.toLocaleString("en-US");
  for (const [size, r] of Object.entries(results.fanout ?? {})) {
    const row = withRatios({
      scenario: `1 fan-out ${n(Number(size))} subs`,
      metric: "throughput",
      unit: "deliveries/s",
      values: {
        switchboard: r.switchboard?.deliveriesPerSec,
        raw: r.raw?.deliveriesPerSec,
        socketio: r.socketio?.deliveriesPerSec,
      },
      notes: notesOf(r, sioOk),
      goal: ">=0.9x raw, > Socket.IO",
    });
    if (row.vsRaw !== undefined) {
      row.pass = row.vsRaw >= 0.9 && (row.vsSocketIo === undefined || row.vsSocketIo > 1);
    }
    rows.push(row);
    rows.push(withRatios({
      scenario: "",
      metric: "server CPU per delivery",
      unit: "µs",
      values: {
        switchboard: r.switchboard?.cpuUsPerDelivery,
        raw: r.raw?.cpuUsPerDelivery,
        socketio: r.socketio?.cpuUsPerDelivery,
      },
      notes: notesOf(r, sioOk),
    }));
  }
  if (results.latency) {
    const r = results.latency;
    const o = config.latency;
    for (const q of ["p50", "p99"] as const) {
      const row = withRatios({
        scenario: q === "p50" ? `2 latency ${n(o.n)} subs @${o.rate}/s` : "",
        metric: `${q} publish→receive`,
        unit: "ms",
        values: {
          switchboard: r.switchboard?.latencyMs?.[q],
          raw: r.raw?.latencyMs?.[q],
          socketio: r.socketio?.latencyMs?.[q],
        },
        notes: notesOf(r, sioOk),
        goal: q === "p99" ? "<=1.5x raw" : undefined,
      });
      if (q === "p99" && row.vsRaw !== undefined) row.pass = row.vsRaw <= 1.5;
      rows.push(row);
    }
  }
  if (results.memory) {
    for (const transport of ["websocket", "sse"] as const) {
      const r = results.memory[transport];
      const notes = notesOf(r, sioOk);
      if (transport === "sse") notes.socketio = "n/a";
      const row = withRatios({
        scenario: transport === "websocket" ? `3 memory, ${n(config.memory)} idle` : "",
        metric: transport === "websocket" ? "RSS per WebSocket" : "RSS per SSE stream",
        unit: "KiB",
        values: {
          switchboard: r.switchboard?.kibPerConnection,
          raw: r.raw?.kibPerConnection,
          socketio: r.socketio?.kibPerConnection,
        },
        notes,
        goal: transport === "websocket" ? "<=1.2x raw" : "<=1.2x raw SSE",
      });
      if (row.vsRaw !== undefined) row.pass = row.vsRaw <= 1.2;
      rows.push(row);
    }
  }
  if (results.storm) {
    const r = results.storm;
    const users = config.storm.n;
    const complete = withRatios({
      scenario: `4 presence storm ${n(users)} users`,
      metric: "all lists complete",
      unit: "s",
      values: {
        switchboard: r.switchboard?.completeSeconds,
        raw: r.raw?.completeSeconds,
        socketio: r.socketio?.completeSeconds,
      },
      notes: notesOf(r, sioOk),
      goal: users >= 2_000 ? "< 5 s" : `< 5 s (goal is for 2,000)`,
    });
    for (const key of ["switchboard", "raw", "socketio"]) {
      const s = r[key];
      if (s && !s.error && s.completeSeconds === undefined) {
        complete.notes![key] = `${s.complete}/${s.users} done`;
      }
    }
    const sb = r.switchboard;
    if (sb && !sb.error) complete.pass = sb.completeSeconds !== undefined && sb.completeSeconds < 5;
    rows.push(complete);
    const msgs = withRatios({
      scenario: "",
      metric: "presence msgs per client, mean",
      unit: "msgs",
      values: {
        switchboard: r.switchboard?.presenceMessages?.mean,
        raw: r.raw?.presenceMessages?.mean,
        socketio: r.socketio?.presenceMessages?.mean,
      },
      notes: notesOf(r, sioOk),
      goal: `far from N: <= ${n(users / 10)} (N/10)`,
    });
    if (sb?.presenceMessages) msgs.pass = sb.presenceMessages.mean <= users / 10;
    rows.push(msgs);
  }
  const cross = results.crossNode;
  if (cross) {
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
        scenario: `5 cross-node fan-out ${n(Number(size))}`,
        metric: "throughput node A→B",
        unit: "deliveries/s",
        values: { [TWO_NODES]: r[TWO_NODES]?.deliveriesPerSec, raw: r.raw?.deliveriesPerSec },
        notes: { ...notesOf(r, sioOk), socketio: "n/a" },
        goal: "info (raw = 1 process)",
      }, TWO_NODES));
    }
    if (cross.latency) {
      const r = cross.latency;
      for (const q of ["p50", "p99"] as const) {
        rows.push(withRatios({
          scenario: q === "p50" ? `5 cross-node latency ${n(config.crossNode.latency.n)}` : "",
          metric: `${q} publish→receive`,
          unit: "ms",
          values: { [TWO_NODES]: r[TWO_NODES]?.latencyMs?.[q], raw: r.raw?.latencyMs?.[q] },
          notes: { ...notesOf(r, sioOk), socketio: "n/a" },
          goal: "info (raw = 1 process)",
        }, TWO_NODES));
      }
    }
  }
  if (cross?.redis) {
    const r = cross.redis;
    rows.push({
      scenario: "5 cross-node Redis commands",
      metric: "per idle node-minute (measured)",
      unit: "commands",
      values: { [TWO_NODES]: r.idlePerNodeMinute },
      notes: { [TWO_NODES]: `schedule: ${n(r.idlePerNodeDayBySchedule)} per idle node per day` },
      goal: "about one every few seconds",
    });
    rows.push({
      scenario: "",
      metric: "per broadcast, one per API request",
      unit: "commands",
      values: { [TWO_NODES]: r.perBroadcast },
      goal: "info",
    });
    rows.push({
      scenario: "",
      metric: "per broadcast, 40 per API request",
      unit: "commands",
      values: { [TWO_NODES]: r.perBroadcastBatched },
      goal: "info",
    });
  }
  rows.push(...workersRows(results.workers, config));
  rows.push(...occupancyRows(results.occupancy, config.occupancy));
  const par = results.parallel;
  if (par) {
    const [one, two] = WORKERS;
    const f = par.fanout ?? {};
    const title = `8 all cores, fan-out ${n(config.parallel.fanout.n)}`;
    const metrics: [string, string, (k: string) => number | undefined][] = [
      ["throughput", "deliveries/s", (k) => f[k]?.deliveriesPerSec],
      ["server CPU per delivery", "µs", (k) => f[k]?.cpuUsPerDelivery],
      ["p99 publish→receive at 10 msg/s", "ms", (k) => par.latency?.[k]?.latencyMs?.p99],
    ];
    for (const [metric, unit, pick] of metrics) {
      for (const [key, workers] of [[one, "1 worker"], [two, "2 workers"]]) {
        rows.push({
          scenario: rows.at(-1)?.scenario.startsWith("8 ") || metric !== "throughput" ||
              workers !== "1 worker"
            ? ""
            : title,
          metric: `${metric}, ${workers}`,
          unit,
          values: { [key]: pick(key) },
          notes: par.error ? { [key]: par.error } : undefined,
          goal: "info",
        });
      }
    }
  }
  const soak = results.soak;
  if (soak) {
    const title = `6 soak ${soak.seconds} s, ${n(soak.cycles)} client lives`;
    const leaked = soak.sessionsLeft + soak.topicsLeft + soak.presencesLeft;
    rows.push({
      scenario: title,
      metric: "RSS after − baseline",
      unit: "MiB",
      values: { switchboard: soak.error ? undefined : soak.grownMiB },
      notes: soak.error ? { switchboard: soak.error } : undefined,
      goal: "back to baseline (< 8 MiB)",
      pass: soak.error ? undefined : soak.grownMiB < 8,
    }, {
      scenario: "",
      metric: "RSS growth in the second half",
      unit: "MiB",
      values: { switchboard: soak.error ? undefined : soak.secondHalfMiB },
      goal: "no steady growth (< 4 MiB)",
      pass: soak.error || soak.secondHalfMiB === undefined ? undefined : soak.secondHalfMiB < 4,
    }, {
      scenario: "",
      metric: "sessions + topics + presences left",
      unit: "count",
      values: { switchboard: soak.error ? undefined : leaked },
      goal: "0",
      pass: soak.error ? undefined : leaked === 0 && soak.errors === 0,
    });
  }
  return rows;
}

/**
 * Scenario 7's rows: per metric one row for the Worker on workerd and one for Switchboard on
 * Deno, each against raw Deno from the same rounds, and the workerd / Deno ratio in the goal
 * column.
 */
function workersRows(w: WorkersResult | undefined, config: Config): Row[] {
  if (!w) return [];
  const n = (x: number) => x.toLocaleString("en-US");
  if (w.skipped || w.error) {
    return [{
      scenario: "7 Workers (workerd, wrangler dev)",
      metric: "fan-out and latency",
      unit: "-",
      values: {},
      notes: { switchboard: w.skipped ? `skipped: ${w.skipped}` : "error" },
    }];
  }
  const rows: Row[] = [];
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
    const notes = { ...notesOf(r, true), socketio: "n/a" };
    rows.push(
      withRatios({
        scenario,
        metric: `${metric}, workerd`,
        unit,
        values: { [WORKER]: onWorkerd, raw: get("raw") },
        notes,
        goal: `info: workerd/Deno ${ratio}x`,
      }, WORKER),
      withRatios({
        scenario: "",
        metric: `${metric}, Deno`,
        unit,
        values: { switchboard: onDeno, raw: get("raw") },
        notes,
      }),
    );
  };
  for (const [size, r] of Object.entries(w.fanout ?? {})) {
    pair(
      `7 Workers fan-out ${n(Number(size))}`,
      "throughput",
      "deliveries/s",
      r,
      (x) => x.deliveriesPerSec,
    );
    pair("", "server CPU per delivery", "µs", r, (x) => x.cpuUsPerDelivery);
  }
  if (w.latency) {
    const o = config.workers.latency;
    pair(
      `7 Workers latency ${n(o.n)} @${o.rate}/s`,
      "p99 publish→receive",
      "ms",
      w.latency,
      (x) => x.latencyMs?.p99,
    );
  }
  return rows;
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
