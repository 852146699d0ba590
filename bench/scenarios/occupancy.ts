/**
 * Scenario 11, an occupancy-heavy status page: `viewers` watch one status topic with
 * `occupancy: true` on two Switchboard nodes joined by Redis (half over WebSocket on node A,
 * half over SSE on node B), while other viewers come and go on node B every second. Measured:
 * how long until both nodes count every viewer, how many `occupancy` events a steady viewer
 * gets per second of churn (the goal: at most one), the Redis commands the churn costs (per
 * second and per viewer arriving or leaving), and the Redis commands of `GET /api/occupancy`
 * (the goal: none). The pass rules are here, in {@link occupancyRows}.
 * @module
 */
import { redisStats, startBridge, startRedis } from "../../scripts/support/redis.ts";
import { sleep } from "../../scripts/support/process.ts";
import { LoadGen } from "../lib/loadgen_client.ts";
import { count, type Row, type Section } from "../lib/report.ts";
import { percentiles } from "../lib/stats.ts";
import { startTarget, type Target } from "../lib/targets.ts";
import { describe, log } from "./common.ts";
import { health } from "./cross_node.ts";

/** What the scenario runs. */
export interface OccupancyOptions {
  /** Steady viewers, half per node. */
  viewers: number;
  /** Viewers that arrive on node B each second of churn, in waves (each leaves 100 ms later). */
  churnPerSecond: number;
  /** Seconds of churn. */
  seconds: number;
  /** Seconds of watching without churn, for the idle cost (a heartbeat is 10 s). */
  idleSeconds: number;
}

/** The scenario's result. */
export interface OccupancyResult {
  viewers?: number;
  /** Seconds from the last steady viewer joined until both nodes count them all. */
  convergeSeconds?: number;
  /** `occupancy` events per steady WebSocket viewer per second of churn. */
  eventsPerViewerSecond?: number;
  /** Redis commands of both nodes per second of churn. */
  redisPerSecond?: number;
  /** Redis commands per viewer arriving or leaving during churn. */
  redisPerChange?: number;
  /** Redis commands per `GET /api/occupancy`. */
  redisPerRead?: number;
  /** Redis commands per node and minute while the viewers stay and nothing changes. */
  idlePerNodeMinute?: number;
  /** `GET /api/occupancy` answer time. */
  readMs?: { p50: number; p99: number };
  error?: string;
}

const TOPIC = "status:bench-occupancy";

/** How often viewers arrive during the churn (each wave leaves 100 ms after it came). */
const _WAVE_MS = 370;

async function counted(node: Target): Promise<number> {
  const res = await fetch(`${node.url}/api/occupancy/${TOPIC}`);
  return (await res.json()).subscribers as number;
}

/** Runs the scenario on its own Redis, bridge and two nodes. */
export async function runOccupancy(o: OccupancyOptions): Promise<OccupancyResult> {
  const cleanup: (() => Promise<unknown>)[] = [];
  const gens = LoadGen.spawn(2);
  cleanup.push(() => Promise.all(gens.map((g) => g.close())));
  try {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const bridge = await startBridge({ redisUrl: redis.url, token: "bench-occupancy" });
    cleanup.push(() => bridge.stop());
    const env = { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: "bench-occupancy" };
    const [a, b] = [
      await startTarget("switchboard", { ...env, NODE_ID: "occ-a" }),
      await startTarget("switchboard", { ...env, NODE_ID: "occ-b" }),
    ];
    cleanup.push(() => a.stop(), () => b.stop());
    for (let i = 0; i < 50; i++) {
      const [ha, hb] = [await health(a.url), await health(b.url)];
      if (ha.broker?.connected && hb.broker?.connected) break;
      await sleep(200);
    }
    const [steady, churn] = gens;
    const connect = (gen: LoadGen, node: Target, count: number, sse: boolean, startIndex = 0) =>
      gen.call<{ ok: number; errors: string[] }>("connect", {
        host: node.host,
        port: node.port,
        proto: sse ? "sse" : "phoenix",
        path: sse ? node.ssePath!(TOPIC) : node.wsPath(),
        count,
        startIndex,
        topic: TOPIC,
        join: true,
        joinPayload: {},
        concurrency: 32,
        timeoutMs: 60_000,
      }, 120_000);
    const half = Math.floor(o.viewers / 2);
    log(`occupancy: ${half} WebSocket viewers on node A, ${half} SSE viewers on node B`);
    const ws = await connect(steady, a, half, false);
    const sse = await connect(steady, b, half, true, half);
    if (ws.ok + sse.ok < 2 * half) throw new Error(`only ${ws.ok + sse.ok} viewers connected`);
    const joinedAt = performance.now();
    for (let i = 0; i < 200; i++) {
      if ((await counted(a)) === 2 * half && (await counted(b)) === 2 * half) break;
      await sleep(50);
    }
    const convergeSeconds = (performance.now() - joinedAt) / 1000;
    if ((await counted(a)) !== 2 * half) throw new Error("node A never counted every viewer");

    log(`occupancy: ${o.churnPerSecond} viewers come and go on node B each second, ${o.seconds} s`);
    await steady.call("reset");
    const before = await redisStats(redis.url);
    const started = performance.now();
    // A wave every 370 ms: the counts change within every tick of the nodes (a period that
    // divides a second would meet each tick at the same point of the wave, and show no change).
    const wave = Math.max(1, Math.round(o.churnPerSecond * _WAVE_MS / 1_000));
    let arrived = 0;
    while (performance.now() - started < o.seconds * 1_000) {
      const begun = performance.now();
      await connect(churn, b, wave, false, 2 * half + arrived);
      arrived += wave;
      await sleep(100);
      await churn.call("close");
      await sleep(Math.max(0, _WAVE_MS - (performance.now() - begun)));
    }
    const churnSeconds = (performance.now() - started) / 1000;
    const after = await redisStats(redis.url);
    const counts = await steady.call<{ occupancy: number }>("counts");
    const churnCommands = after.totalCalls - before.totalCalls;

    log("occupancy: 200 reads of GET /api/occupancy");
    const readsBefore = await redisStats(redis.url);
    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await counted(i % 2 ? a : b);
      times.push(performance.now() - t);
    }
    const readsAfter = await redisStats(redis.url);
    const readSeconds = times.reduce((x, y) => x + y, 0) / 1000;
    // The nodes' own heartbeats meanwhile are not the reads' cost: take the idle rate out.
    const idleRate = await idleCommandsPerSecond(redis.url, o.idleSeconds);
    const readCommands = Math.max(
      0,
      readsAfter.totalCalls - readsBefore.totalCalls - idleRate * readSeconds,
    );
    const p = percentiles(times);
    const result: OccupancyResult = {
      viewers: 2 * half,
      convergeSeconds: round(convergeSeconds),
      eventsPerViewerSecond: round(counts.occupancy / half / churnSeconds),
      redisPerSecond: round(churnCommands / churnSeconds),
      redisPerChange: round(churnCommands / (2 * arrived)),
      redisPerRead: round(readCommands / times.length),
      idlePerNodeMinute: round(idleRate * 60 / 2),
      readMs: { p50: round(p.p50), p99: round(p.p99) },
    };
    log(`  ${JSON.stringify(result)}`);
    return result;
  } catch (err) {
    log(`  occupancy: ${describe(err)}`);
    return { error: describe(err) };
  } finally {
    for (const stop of cleanup.reverse()) await stop().catch(() => {});
  }
}

/** Commands per second of the cluster while its viewers stay, over `seconds`. */
async function idleCommandsPerSecond(redisUrl: string, seconds: number): Promise<number> {
  const before = await redisStats(redisUrl);
  await sleep(seconds * 1_000);
  const after = await redisStats(redisUrl);
  return (after.totalCalls - before.totalCalls) / seconds;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/**
 * The scenario's section of the table, with its pass rules: both nodes count every viewer
 * within 2.5 s, a viewer gets at most one `occupancy` event per second, and a read of
 * `GET /api/occupancy` costs no Redis command.
 *
 * @example
 * ```ts
 * const { rows } = occupancyReport(await runOccupancy(options), options);
 * ```
 */
export function occupancyReport(r: OccupancyResult, o: OccupancyOptions): Section {
  const key = "switchboard_2node";
  const notes = r.error ? { [key]: r.error } : undefined;
  const title = `11 occupancy, status page ${count(o.viewers)} viewers, 2 nodes`;
  const row = (metric: string, unit: string, value: number | undefined, goal: string) => ({
    scenario: "",
    metric,
    unit,
    values: { [key]: value },
    notes,
    goal,
  });
  const rows: Row[] = [
    {
      ...row("both nodes count every viewer", "s", r.convergeSeconds, "<= 2.5 s"),
      scenario: title,
      pass: r.convergeSeconds === undefined ? undefined : r.convergeSeconds <= 2.5,
    },
    {
      ...row("occupancy events per viewer-second", "events", r.eventsPerViewerSecond, "<= 1"),
      // One per tick at most; a churn window of S seconds spans at most S + 1 ticks.
      pass: r.eventsPerViewerSecond === undefined
        ? undefined
        : r.eventsPerViewerSecond <= (o.seconds + 1) / o.seconds,
    },
    row("Redis commands per second of churn", "commands", r.redisPerSecond, "info"),
    row("Redis commands per viewer joining/leaving", "commands", r.redisPerChange, "info"),
    {
      ...row("Redis commands per GET /api/occupancy", "commands", r.redisPerRead, "0"),
      pass: r.redisPerRead === undefined ? undefined : r.redisPerRead < 0.05,
    },
    row("GET /api/occupancy p50", "ms", r.readMs?.p50, "info"),
    row(
      "Redis commands per node-minute, viewers staying",
      "commands",
      r.idlePerNodeMinute,
      "info (without reports: 15)",
    ),
  ];
  return { rows };
}
