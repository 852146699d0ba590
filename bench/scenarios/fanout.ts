/**
 * Scenario 1, fan-out throughput: `n` WebSocket subscribers on one topic, messages published
 * through `POST /api/broadcast` in batches (arrays), in a closed loop that keeps at most
 * `window` messages published but not yet delivered (so no server buffers without bound).
 * Deliveries per second = deliveries counted by the clients / (last delivery − first publish).
 *
 * Every subject gets its own generator process and stays connected; measured rounds are
 * interleaved across subjects (rotating who goes first) and the median round is reported, so
 * background load on the machine hits every subject alike.
 * @module
 */
import { LoadGen } from "../lib/loadgen_client.ts";
import { sleep } from "../../scripts/support/process.ts";
import { cpuTicks, otherLoad } from "../lib/stats.ts";
import {
  closeNotes,
  count,
  notesOf,
  type Row,
  type Section,
  targetValues,
  withRatios,
} from "../lib/report.ts";
import type { Subject } from "../lib/targets.ts";
import {
  connectSubscribers,
  describe,
  DISTURBED_CORES,
  FANOUT_TOPIC,
  log,
  mayRetry,
  medianOf,
  recordCloseReasons,
  rotate,
  ticksOf,
  topUp,
} from "./common.ts";

/** Options of {@link runFanout}. */
export interface FanoutOptions {
  n: number;
  /** Messages per POST. */
  batch: number;
  /** Messages published but not yet delivered (per subscriber, on average), at most. */
  window: number;
  /** Messages per measured round. */
  perRound: number;
  rounds: number;
  timeoutMs: number;
}

/** One measured round. */
export interface FanoutRound {
  deliveriesPerSec: number;
  received: number;
  expected: number;
  ms: number;
  /** Server CPU use during the round, in cores (1 = one core busy). */
  serverCores: number;
  /** Server CPU time per delivery, µs. */
  cpuUsPerDelivery: number;
  generatorCores: number;
  /** CPU used by other processes on the machine during the round, in cores. */
  otherCores: number;
  postFailures: number;
  /** The first failed POST's answer or error, when one failed. */
  postFailure?: string;
  /** Subscribers the server had closed since the previous round, replaced before this one. */
  replaced: number;
}

/** A subject's result: medians over the rounds. */
export interface FanoutResult {
  deliveriesPerSec?: number;
  cpuUsPerDelivery?: number;
  serverCores?: number;
  generatorCores?: number;
  /** Deliveries expected but not received, over all rounds. */
  lost?: number;
  connectMs?: number;
  /** Why the server closed subscribers during the scenario (they were replaced), by reason. */
  closeReasons?: Record<string, number>;
  rounds?: FanoutRound[];
  error?: string;
}

interface Published {
  published: number;
  failures: number;
  failure: string;
  firstAt: number;
}
interface Delivered {
  received: number;
  expected: number;
  lastAt: number;
}

/** Runs the scenario for every subject; a failing subject gets an `error`, the rest go on. */
export async function runFanout(
  subjects: Subject[],
  o: FanoutOptions,
): Promise<Record<string, FanoutResult>> {
  const results: Record<string, FanoutResult> = {};
  const gens = new Map<string, LoadGen>();
  const publish = (s: Subject, total: number) => ({
    url: s.broadcastUrl,
    topic: FANOUT_TOPIC,
    event: "status",
    total,
    batch: o.batch,
    window: o.window,
    maxInflight: 2,
    timeoutMs: o.timeoutMs,
  });
  const measure = async (s: Subject, gen: LoadGen): Promise<FanoutRound> => {
    const replaced = await topUp(gen, s, o.n);
    await gen.call("reset");
    const cpu0 = ticksOf(s.pids, cpuTicks);
    const gen0 = gen.cpuTicks();
    const others = otherLoad([...s.pids, gen.pid, Deno.pid]);
    const t0 = performance.now();
    const [pub, got] = await Promise.all([
      gen.call<Published>("publish", publish(s, o.perRound), o.timeoutMs + 10_000),
      gen.call<Delivered>(
        "waitDeliveries",
        { perSocket: o.perRound, timeoutMs: o.timeoutMs },
        o.timeoutMs + 10_000,
      ),
    ]);
    const wall = performance.now() - t0;
    const otherCores = others.stop();
    const serverTicks = ticksOf(s.pids, cpuTicks) - cpu0;
    const ms = got.lastAt - pub.firstAt;
    return {
      deliveriesPerSec: Math.round(got.received / (ms / 1000)),
      received: got.received,
      expected: got.expected,
      ms: Math.round(ms),
      serverCores: round2(serverTicks / 100 / (wall / 1000)),
      cpuUsPerDelivery: round2(serverTicks * 10_000 / got.received),
      generatorCores: round2((gen.cpuTicks() - gen0) / 100 / (wall / 1000)),
      otherCores,
      postFailures: pub.failures,
      postFailure: pub.failure || undefined,
      replaced,
    };
  };
  try {
    for (const s of subjects) {
      results[s.key] = { rounds: [] };
      const gen = LoadGen.spawn(1)[0];
      gens.set(s.key, gen);
      try {
        const c = await connectSubscribers(gen, s, o.n);
        results[s.key].connectMs = Math.round(c.ms);
        log(`  ${s.label}: ${o.n} subscribers in ${(c.ms / 1000).toFixed(1)} s; warming up`);
        await Promise.all([
          gen.call("publish", publish(s, o.perRound), o.timeoutMs + 10_000),
          gen.call(
            "waitDeliveries",
            { perSocket: o.perRound, timeoutMs: o.timeoutMs },
            o.timeoutMs + 10_000,
          ),
        ]);
      } catch (err) {
        results[s.key].error = describe(err);
        log(`  ${s.label}: ${results[s.key].error}`);
      }
    }
    for (let r = 0; r < o.rounds; r++) {
      for (const s of rotate(subjects, r)) {
        const result = results[s.key];
        if (result.error) continue;
        const gen = gens.get(s.key)!;
        try {
          for (let attempt = 1;; attempt++) {
            const round = await measure(s, gen);
            const again = mayRetry(round.otherCores, attempt);
            log(
              `  round ${r + 1} ${s.label}: ${round.deliveriesPerSec.toLocaleString("en-US")}/s` +
                ` (${round.received}/${round.expected}, server ${round.serverCores} cores,` +
                ` ${round.cpuUsPerDelivery} µs CPU/delivery, others ${round.otherCores} cores)` +
                (round.postFailures
                  ? ` POST failures: ${round.postFailures} (${round.postFailure})`
                  : "") +
                (again ? " disturbed, again" : ""),
            );
            if (!again) {
              result.rounds!.push(round);
              break;
            }
            await sleep(1_000);
          }
        } catch (err) {
          result.error = describe(err);
          log(`  ${s.label}: ${result.error}`);
        }
      }
    }
    await recordCloseReasons(gens, results);
  } finally {
    await Promise.all([...gens.values()].map((g) => g.close()));
  }
  for (const result of Object.values(results)) {
    const all = result.rounds ?? [];
    if (all.length === 0) continue;
    const calm = all.filter((r) => r.otherCores <= DISTURBED_CORES);
    const rounds = calm.length ? calm : all;
    result.deliveriesPerSec = medianOf(rounds.map((r) => r.deliveriesPerSec));
    result.cpuUsPerDelivery = medianOf(rounds.map((r) => r.cpuUsPerDelivery));
    result.serverCores = medianOf(rounds.map((r) => r.serverCores));
    result.generatorCores = medianOf(rounds.map((r) => r.generatorCores));
    result.lost = all.reduce((n, r) => n + r.expected - r.received, 0);
  }
  return results;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/**
 * Scenario 1's table: per subscriber count, throughput (goal: at least 0.9x raw Deno and above
 * Socket.IO) and server CPU per delivery.
 *
 * @example
 * ```ts
 * const { rows } = fanoutReport({ 2000: { switchboard, raw } }, true);
 * ```
 */
export function fanoutReport(
  results: Record<string, Record<string, FanoutResult>>,
  sioOk: boolean,
): Section {
  const rows: Row[] = [];
  const notes: string[] = [];
  for (const [size, r] of Object.entries(results)) {
    const row = withRatios({
      scenario: `1 fan-out ${count(Number(size))} subs`,
      metric: "throughput",
      unit: "deliveries/s",
      values: targetValues(r, (x) => x.deliveriesPerSec),
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
      values: targetValues(r, (x) => x.cpuUsPerDelivery),
      notes: notesOf(r, sioOk),
    }));
    notes.push(...closeNotes(`fan-out ${size}`, r));
  }
  return { rows, notes };
}
