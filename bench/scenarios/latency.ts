/**
 * Scenario 2, latency at a fixed moderate rate: `n` subscribers, one message per POST at
 * `rate` messages per second; each payload carries its send time (`t`, taken right before the
 * POST), and every `sampleEvery`-th subscriber records receive time − `t`. The publisher and the
 * sampled subscribers live in the same generator process (one clock). Rounds are interleaved
 * across subjects like the fan-out scenario; samples of all rounds are pooled.
 * @module
 */
import { LoadGen } from "../lib/loadgen_client.ts";
import { sleep } from "../../scripts/support/process.ts";
import { otherLoad, percentiles, type Summary } from "../lib/stats.ts";
import {
  closeNotes,
  count,
  notesOf,
  type Section,
  targetValues,
  withRatios,
} from "../lib/report.ts";
import type { Subject } from "../lib/targets.ts";
import {
  connectSubscribers,
  describe,
  FANOUT_TOPIC,
  log,
  mayRetry,
  recordCloseReasons,
  rotate,
  topUp,
} from "./common.ts";

/** Options of {@link runLatency}. */
export interface LatencyOptions {
  n: number;
  /** Messages per second. */
  rate: number;
  /** Seconds per round. */
  seconds: number;
  rounds: number;
  sampleEvery: number;
}

/** A subject's result, in milliseconds. */
export interface LatencyResult {
  latencyMs?: Summary;
  /** Deliveries expected but not received. */
  lost?: number;
  /** Why the server closed subscribers during the scenario (they were replaced), by reason. */
  closeReasons?: Record<string, number>;
  error?: string;
}

/** Runs the scenario for every subject. */
export async function runLatency(
  subjects: Subject[],
  o: LatencyOptions,
): Promise<Record<string, LatencyResult>> {
  const results: Record<string, LatencyResult> = {};
  const samples = new Map<string, number[]>();
  const lost = new Map<string, number>();
  const gens = new Map<string, LoadGen>();
  const timeoutMs = o.seconds * 1000 + 20_000;
  const round = async (s: Subject, gen: LoadGen, total: number) => {
    await topUp(gen, s, o.n, { sampleEvery: o.sampleEvery });
    await gen.call("reset");
    const [, got] = await Promise.all([
      gen.call("publish", {
        url: s.broadcastUrl,
        topic: FANOUT_TOPIC,
        event: "status",
        total,
        batch: 1,
        ratePerSec: o.rate,
        maxInflight: 32,
        timeoutMs,
      }, timeoutMs + 10_000),
      gen.call<{ received: number; expected: number }>(
        "waitDeliveries",
        { perSocket: total, timeoutMs },
        timeoutMs + 10_000,
      ),
    ]);
    return got;
  };
  try {
    for (const s of subjects) {
      results[s.key] = {};
      samples.set(s.key, []);
      lost.set(s.key, 0);
      const gen = LoadGen.spawn(1)[0];
      gens.set(s.key, gen);
      try {
        await connectSubscribers(gen, s, o.n, { sampleEvery: o.sampleEvery });
        await round(s, gen, o.rate); // one second of warm-up
      } catch (err) {
        results[s.key].error = describe(err);
        log(`  ${s.label}: ${results[s.key].error}`);
      }
    }
    for (let r = 0; r < o.rounds; r++) {
      for (const s of rotate(subjects, r)) {
        if (results[s.key].error) continue;
        const gen = gens.get(s.key)!;
        try {
          for (let attempt = 1;; attempt++) {
            const others = otherLoad([...s.pids, gen.pid, Deno.pid]);
            const got = await round(s, gen, Math.round(o.rate * o.seconds));
            const otherCores = others.stop();
            const taken = await gen.call<number[]>("samples");
            const p = percentiles(taken);
            const again = mayRetry(otherCores, attempt);
            log(
              `  round ${r + 1} ${s.label}: p50 ${p.p50.toFixed(1)} ms, p99 ${
                p.p99.toFixed(1)
              } ms` +
                ` (${p.count} samples, others ${otherCores} cores)` +
                (again ? " disturbed, again" : ""),
            );
            if (again) {
              await sleep(1_000);
              continue;
            }
            samples.get(s.key)!.push(...taken);
            lost.set(s.key, lost.get(s.key)! + got.expected - got.received);
            break;
          }
        } catch (err) {
          results[s.key].error = describe(err);
          log(`  ${s.label}: ${results[s.key].error}`);
        }
      }
    }
    await recordCloseReasons(gens, results);
  } finally {
    await Promise.all([...gens.values()].map((g) => g.close()));
  }
  for (const s of subjects) {
    const taken = samples.get(s.key)!;
    if (taken.length) results[s.key].latencyMs = percentiles(taken);
    results[s.key].lost = lost.get(s.key);
  }
  return results;
}

/** Scenario 2's table: p50 and p99 publish→receive (goal: p99 at most 1.5x raw Deno). *
 * @example
 * ```ts
 * const { rows, notes } = latencyReport(results, { n: 2000, rate: 10, seconds: 5, rounds: 3, sampleEvery: 10 }, true);
 * ```
 */
export function latencyReport(
  r: Record<string, LatencyResult>,
  o: LatencyOptions,
  sioOk: boolean,
): Section {
  const rows = (["p50", "p99"] as const).map((q) => {
    const row = withRatios({
      scenario: q === "p50" ? `2 latency ${count(o.n)} subs @${o.rate}/s` : "",
      metric: `${q} publish→receive`,
      unit: "ms",
      values: targetValues(r, (x) => x.latencyMs?.[q]),
      notes: notesOf(r, sioOk),
      goal: q === "p99" ? "<=1.5x raw" : undefined,
    });
    if (q === "p99" && row.vsRaw !== undefined) row.pass = row.vsRaw <= 1.5;
    return row;
  });
  return { rows, notes: closeNotes("latency", r) };
}
