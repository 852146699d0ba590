/**
 * Scenario 9, presence for crowds (docs/crowds.md): a join storm of `n` raw Phoenix v2 members
 * (connections opened 200 at a time, then every member joins one `record:*` topic within
 * `spreadMs`), on one node and on two nodes joined by Redis (members alternate between them).
 * Measured: presence bytes each member received (`presence_state`, `presence_diff`,
 * `occupancy`), the time from the first join until every member was told a count of `n`, the
 * servers' CPU time and RSS, and on two nodes what Redis ran and wrote.
 *
 * Before crowd presence (issue 25, one node, 200 connections at a time): 5,000 members cost
 * 615 KiB of presence traffic each (3.15 GB in all) and settled after 17 s.
 *
 * Its pass rule is its own ({@link crowdRows}). Runs alone too:
 * `deno run -A bench/scenarios/crowd.ts [--n=5000] [--spread=2500]`.
 * @module
 */
import { redisStats } from "../../scripts/support/redis.ts";
import { killChildren } from "../../scripts/support/process.ts";
import { LoadGen } from "../lib/loadgen_client.ts";
import { count, type Row, type Section } from "../lib/report.ts";
import { cpuTicks, otherLoad, rssKiB, type Summary } from "../lib/stats.ts";
import { startTarget, type Target } from "../lib/targets.ts";
import { describe, log } from "./common.ts";
import { startRedisNodes } from "./redis_nodes.ts";
import { joinStorm } from "./storm.ts";

/** What the scenario runs with. */
export interface CrowdOptions {
  /** Members in the storm. */
  n: number;
  /** Every member joins within this window, after all are connected. */
  spreadMs: number;
}

/** One run (one node, or two). */
export interface CrowdRun {
  nodes: number;
  users?: number;
  /** Members told a count of `users` (or more). */
  complete?: number;
  /** From the first join until the last member was told the full count. */
  settleSeconds?: number;
  /** Presence bytes received per member. */
  presenceBytes?: Summary;
  presenceKiBPerMember?: number;
  /** Presence frames (state and diffs, not counts) per member. */
  presenceMessages?: Summary;
  /** CPU seconds of the server process(es) from the first join until settled. */
  serverCpuSeconds?: number;
  /** RSS of each server once settled, MiB. */
  serverRssMiB?: number[];
  /** Two nodes: Redis commands and bytes Redis wrote to its clients during the storm. */
  redis?: { commands: number; commandsPerJoin: number; outputKiBPerJoin: number };
  joinSpreadMs?: number;
  otherCores?: number;
  error?: string;
}

/** The scenario's result. */
export interface CrowdResult {
  options: CrowdOptions;
  oneNode: CrowdRun;
  twoNodes: CrowdRun;
}

/** The issue's goals. */
export const CROWD_GOALS = { kibPerMember: 40, settleSeconds: 15 };

/** Before crowds (issue 25, one node): presence KiB per member by members, and settle time. */
const _BEFORE_KIB: Record<number, number> = { 1_000: 115, 2_000: 233, 4_000: 469, 5_000: 615 };
const _BEFORE_SECONDS: Record<number, number> = { 5_000: 17 };

/** Runs the storm on one node, then on two nodes through Redis. */
export async function runCrowd(options: CrowdOptions): Promise<CrowdResult> {
  log(`crowd presence: ${options.n} members joining one record within ${options.spreadMs} ms`);
  const oneNode = await _oneNode(options);
  const twoNodes = await _twoNodes(options);
  return { options, oneNode, twoNodes };
}

async function _oneNode(options: CrowdOptions): Promise<CrowdRun> {
  let target: Target | undefined;
  try {
    target = await startTarget("switchboard");
    return await _storm([target], options);
  } catch (err) {
    log(`  one node: ${describe(err)}`);
    return { nodes: 1, error: describe(err) };
  } finally {
    await target?.stop();
  }
}

async function _twoNodes(options: CrowdOptions): Promise<CrowdRun> {
  const token = "bench-crowd";
  const cleanup: (() => Promise<unknown>)[] = [];
  try {
    const { redisUrl, nodes } = await startRedisNodes(["crowd-a", "crowd-b"], token, cleanup);
    await _waitForBrokers(nodes);
    const before = await redisStats(redisUrl);
    const run = await _storm(nodes, options);
    const after = await redisStats(redisUrl);
    const commands = after.totalCalls - before.totalCalls;
    run.redis = {
      commands,
      commandsPerJoin: commands / options.n,
      outputKiBPerJoin: (after.netOutputBytes - before.netOutputBytes) / options.n / 1024,
    };
    log(`  two nodes, Redis: ${JSON.stringify(run.redis)}`);
    return run;
  } catch (err) {
    log(`  two nodes: ${describe(err)}`);
    return { nodes: 2, error: describe(err) };
  } finally {
    for (const stop of cleanup.reverse()) await stop().catch(() => {});
  }
}

async function _waitForBrokers(nodes: Target[]): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const states = await Promise.all(nodes.map(async (node) => {
      const res = await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(5_000) });
      return (await res.json()).broker as { kind?: string; connected?: boolean; nodes?: number };
    }));
    if (states.every((s) => s.kind === "redis" && s.connected && (s.nodes ?? 0) >= 1)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("the two nodes did not see each other through Redis within 20 s");
}

/** Connects every member (alternating nodes), joins them all, waits for the count. */
async function _storm(nodes: Target[], options: CrowdOptions): Promise<CrowdRun> {
  const { n, spreadMs } = options;
  const gen = LoadGen.spawn(1)[0];
  const topic = "record:crowd-bench";
  try {
    // Members alternate between the nodes, in two connects (one per node) of half each.
    const per = Math.ceil(n / nodes.length);
    for (const [k, node] of nodes.entries()) {
      const count = Math.min(per, n - k * per);
      const c = await gen.call<{ ok: number; errors: string[] }>("connect", {
        host: node.host,
        port: node.port,
        proto: "phoenix",
        path: node.wsPath("u{i}"),
        count,
        startIndex: k * per,
        topic,
        join: false,
        joinPayload: { name: "User {i}" },
        crowdUsers: n,
        concurrency: 200,
        timeoutMs: 60_000,
      }, 120_000);
      if (c.ok < count) throw new Error(`only ${c.ok} of ${count} connected: ${c.errors}`);
    }
    const pids = nodes.map((node) => node.pid);
    const others = otherLoad([...pids, gen.pid, Deno.pid]);
    const cpuBefore = pids.reduce((sum, pid) => sum + cpuTicks(pid), 0);
    const { joined, r } = await joinStorm(gen, { n, spreadMs, timeoutMs: 60_000 });
    const cpuSeconds = (pids.reduce((sum, pid) => sum + cpuTicks(pid), 0) - cpuBefore) / 100;
    const run: CrowdRun = {
      nodes: nodes.length,
      users: n,
      complete: r.complete,
      settleSeconds: r.complete === n ? Math.round(r.completeMs.max) / 1000 : undefined,
      presenceBytes: r.presenceBytes,
      presenceKiBPerMember: Math.round(r.presenceBytesTotal / n / 1024 * 10) / 10,
      presenceMessages: r.presenceMsgs,
      serverCpuSeconds: Math.round(cpuSeconds * 10) / 10,
      serverRssMiB: pids.map((pid) => Math.round(rssKiB(pid) / 1024)),
      joinSpreadMs: Math.round(joined.endAt - joined.startAt),
      otherCores: others.stop(),
    };
    log(
      `  ${nodes.length} node(s): ${r.complete}/${n} told the count` +
        (run.settleSeconds !== undefined ? ` after ${run.settleSeconds} s` : "") +
        `, ${run.presenceKiBPerMember} KiB of presence per member, server CPU ` +
        `${run.serverCpuSeconds} s, RSS ${run.serverRssMiB?.join(" + ")} MiB`,
    );
    return run;
  } finally {
    await gen.close();
  }
}

/**
 * The scenario's report section, with its pass rule: the issue's goals, on one node and on two.
 *
 * @example
 * ```ts
 * const { rows } = crowdReport(await runCrowd({ n: 5_000, spreadMs: 2_500 }));
 * ```
 */
export function crowdReport(result: CrowdResult): Section {
  const { n } = result.options;
  const rows: Row[] = [];
  for (const [where, run] of [["1 node", result.oneNode], ["2 nodes", result.twoNodes]] as const) {
    const failed = run.error
      ? "error"
      : run.complete !== undefined && run.complete < n
      ? `${run.complete}/${n} told`
      : undefined;
    const notes = failed ? { switchboard: failed } : undefined;
    rows.push(
      {
        scenario: `9 crowd ${count(n)} members, ${where}`,
        metric: "presence per member",
        unit: "KiB",
        values: { switchboard: run.presenceKiBPerMember },
        notes,
        goal: `<= ${CROWD_GOALS.kibPerMember} KiB${_before(_BEFORE_KIB[n])}`,
        pass: (run.presenceKiBPerMember ?? Infinity) <= CROWD_GOALS.kibPerMember,
      },
      {
        scenario: "",
        metric: "everyone told the count",
        unit: "s",
        values: { switchboard: run.settleSeconds },
        notes,
        goal: `< ${CROWD_GOALS.settleSeconds} s${_before(_BEFORE_SECONDS[n])}`,
        pass: (run.settleSeconds ?? Infinity) < CROWD_GOALS.settleSeconds,
      },
      {
        scenario: "",
        metric: "server CPU, first join to settled",
        unit: "s",
        values: { switchboard: run.serverCpuSeconds },
      },
      {
        scenario: "",
        metric: "server RSS settled (all nodes)",
        unit: "MiB",
        values: { switchboard: run.serverRssMiB?.reduce((a, b) => a + b, 0) },
      },
    );
  }
  rows.push({
    scenario: "",
    metric: "2 nodes: Redis commands per 1,000 joins",
    unit: "cmds",
    values: { switchboard: (result.twoNodes.redis?.commandsPerJoin ?? NaN) * 1000 || undefined },
  });
  return { rows };
}

function _before(value: number | undefined): string {
  return value === undefined ? "" : ` (before: ${value})`;
}

if (import.meta.main) {
  const arg = (name: string, fallback: number) =>
    Number(Deno.args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback);
  Deno.addSignalListener("SIGINT", () => {
    killChildren();
    Deno.exit(130);
  });
  const result = await runCrowd({ n: arg("n", 5_000), spreadMs: arg("spread", 2_500) });
  const { rows } = crowdReport(result);
  for (const row of rows) {
    console.log(
      `${row.scenario.padEnd(22)} ${row.metric.padEnd(40)} ${
        Object.entries(row.values).map(([k, v]) => `${k}=${v ?? row.notes?.[k] ?? "—"}`).join(" ")
      } ${row.unit}${row.goal ? ` goal ${row.goal}: ${row.pass ? "PASS" : "FAIL"}` : ""}`,
    );
  }
  const out = new URL("../results/crowd.json", import.meta.url);
  await Deno.writeTextFile(out, JSON.stringify({ result, table: rows }, null, 2) + "\n");
  log(`wrote ${out.pathname}`);
}
