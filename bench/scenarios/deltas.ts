/**
 * Scenario 10, Fossil deltas on a status page: `n` SSE viewers of a 20-component, ~10 KB status
 * (bench/lib/status_workload.ts), one component changing per update. Two groups of `n` viewers
 * on one Switchboard server, in the same run: one plain (`/events?topic=…`), one asking for
 * deltas (`&delta=fossil`), each on its own topic and load generator. Rounds alternate between
 * the groups; each publishes `perRound` updates one at a time (the next once every viewer has
 * the previous), the way a status page changes: bytes on the wire are what the viewers read
 * (HTTP chunk framing and `id:` lines included), CPU is the server's per delivery.
 *
 * Pass rule (the issue's goal): deltas cut the bytes per delivery at least 5× while the CPU per
 * delivery stays within 1.2× of full payloads.
 *
 * Runs in `deno task bench --scenario=deltas`, or alone:
 * `deno run -A bench/scenarios/deltas.ts [--quick]` (writes bench/results/deltas.json).
 * @module
 */
import { LoadGen } from "../lib/loadgen_client.ts";
import type { Row, Section } from "../lib/report.ts";
import { sleep } from "../../scripts/support/process.ts";
import { cpuTicks, otherLoad } from "../lib/stats.ts";
import { statusUpdates } from "../lib/status_workload.ts";
import { startTarget, type Target } from "../lib/targets.ts";
import { ATTEMPTS, describe, log, mayRetry, medianOf, rotate, ticksOf } from "./common.ts";

/** Options of {@link runDeltas}. */
export interface DeltasOptions {
  /** Viewers per group. */
  n: number;
  /** Updates per measured round. */
  perRound: number;
  /** Measured rounds per group. */
  rounds: number;
  timeoutMs: number;
}

/** The full run's options (the issue's workload) and a smoke run's. */
export const DELTAS_FULL: DeltasOptions = { n: 2_000, perRound: 20, rounds: 3, timeoutMs: 60_000 };
export const DELTAS_QUICK: DeltasOptions = { n: 500, perRound: 40, rounds: 2, timeoutMs: 30_000 };

/** The goal: at least this many times fewer bytes with deltas… */
export const MIN_BYTES_RATIO = 5;
/** …at no more than this many times the CPU per delivery. */
export const MAX_CPU_RATIO = 1.2;

/** One group's measured round. */
export interface DeltasRound {
  deliveries: number;
  expected: number;
  bytesPerDelivery: number;
  /** Server CPU time per delivery, µs. */
  cpuUsPerDelivery: number;
  /** CPU used by other processes on the machine during the round, in cores. */
  otherCores: number;
}

/** One group's result: medians over its rounds. */
export interface DeltasGroup {
  bytesPerDelivery?: number;
  cpuUsPerDelivery?: number;
  rounds: DeltasRound[];
}

/** The scenario's result. */
export interface DeltasResult {
  viewers: number;
  payloadBytes: number;
  full: DeltasGroup;
  delta: DeltasGroup;
  /** Full bytes per delivery ÷ delta bytes per delivery. */
  bytesRatio?: number;
  /** Delta CPU per delivery ÷ full CPU per delivery. */
  cpuRatio?: number;
  pass?: boolean;
  /** Why it failed, when it did. */
  reason?: string;
  error?: string;
}

/** The pass rule: ≥ {@link MIN_BYTES_RATIO}× fewer bytes at ≤ {@link MAX_CPU_RATIO}× CPU. */
export function deltasPass(r: DeltasResult): { pass: boolean; reason?: string } {
  if (r.error || r.bytesRatio === undefined || r.cpuRatio === undefined) {
    return { pass: false, reason: r.error ?? "not measured" };
  }
  if (r.bytesRatio < MIN_BYTES_RATIO) {
    return { pass: false, reason: `only ${r.bytesRatio}× fewer bytes (goal ${MIN_BYTES_RATIO}×)` };
  }
  if (r.cpuRatio > MAX_CPU_RATIO) {
    return {
      pass: false,
      reason: `${r.cpuRatio}× the CPU per delivery (at most ${MAX_CPU_RATIO}×)`,
    };
  }
  return { pass: true };
}

type GroupName = "full" | "delta";

interface Delivered {
  received: number;
  expected: number;
  sseBytes: number;
}

/** Runs the scenario on a Switchboard server of its own. */
export async function runDeltas(o: DeltasOptions): Promise<DeltasResult> {
  // Enough for each group's warm-up and every attempt of its rounds (disturbed ones included).
  const updates = statusUpdates(2 + o.perRound * o.rounds * ATTEMPTS);
  const result: DeltasResult = {
    viewers: o.n,
    payloadBytes: new TextEncoder().encode(JSON.stringify(updates[0])).byteLength,
    full: { rounds: [] },
    delta: { rounds: [] },
  };
  let target: Target | undefined;
  const gens = new Map<GroupName, LoadGen>();
  const topic = (g: GroupName) => `status:bench-${g}`;
  // Each group walks through the same updates, so both carry the same payloads.
  const next = { full: 0, delta: 0 };
  const publish = async (g: GroupName) => {
    const res = await fetch(target!.broadcastUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ topic: topic(g), event: "status", payload: updates[next[g]++] }),
    });
    const body = await res.text();
    if (res.status !== 202) throw new Error(`publish: HTTP ${res.status}: ${body.slice(0, 200)}`);
  };
  /** Publishes `count` updates, each once every viewer of the group has the previous. */
  const walk = async (g: GroupName, count: number): Promise<Delivered> => {
    const gen = gens.get(g)!;
    let got: Delivered = { received: 0, expected: 0, sseBytes: 0 };
    for (let i = 1; i <= count; i++) {
      await publish(g);
      got = await gen.call<Delivered>(
        "waitDeliveries",
        { perSocket: i, timeoutMs: o.timeoutMs },
        o.timeoutMs + 10_000,
      );
      if (got.received < got.expected) {
        throw new Error(`${g}: ${got.received} of ${got.expected} deliveries arrived`);
      }
    }
    return got;
  };
  const measure = async (g: GroupName): Promise<DeltasRound> => {
    const gen = gens.get(g)!;
    await gen.call("reset");
    const cpu0 = ticksOf(target!.pids, cpuTicks);
    const others = otherLoad([...target!.pids, ...[...gens.values()].map((x) => x.pid), Deno.pid]);
    const got = await walk(g, o.perRound);
    const otherCores = others.stop();
    const serverTicks = ticksOf(target!.pids, cpuTicks) - cpu0;
    return {
      deliveries: got.received,
      expected: got.expected,
      bytesPerDelivery: Math.round(got.sseBytes / got.received),
      cpuUsPerDelivery: Math.round(serverTicks * 10_000 / got.received * 100) / 100,
      otherCores,
    };
  };
  try {
    target = await startTarget("switchboard");
    for (const g of ["full", "delta"] as const) {
      const gen = LoadGen.spawn(1)[0];
      gens.set(g, gen);
      const query = g === "delta" ? "&delta=fossil" : "";
      const c = await gen.call<{ ok: number; errors: string[]; ms: number }>("connect", {
        host: target.host,
        port: target.port,
        proto: "sse",
        path: `${target.ssePath!(topic(g))}${query}`,
        count: o.n,
        startIndex: 0,
        topic: topic(g),
        join: false,
        concurrency: 64,
        timeoutMs: o.timeoutMs,
      }, 120_000);
      if (c.ok < o.n) throw new Error(`${g}: ${c.ok} of ${o.n} viewers connected: ${c.errors[0]}`);
      log(`  ${o.n} SSE viewers (${g}) in ${(c.ms / 1000).toFixed(1)} s`);
      // Warm-up: the first update is a full payload for everyone (and the JIT warms up).
      await gen.call("reset");
      await walk(g, 2);
    }
    for (let r = 0; r < o.rounds; r++) {
      for (const g of rotate(["full", "delta"] as GroupName[], r)) {
        for (let attempt = 1;; attempt++) {
          const round = await measure(g);
          const again = mayRetry(round.otherCores, attempt);
          log(
            `  round ${
              r + 1
            } ${g}: ${round.bytesPerDelivery} B/delivery, ${round.cpuUsPerDelivery}` +
              ` µs CPU/delivery (${round.deliveries}/${round.expected}, others ${round.otherCores}` +
              ` cores)${again ? " disturbed, again" : ""}`,
          );
          if (!again) {
            result[g].rounds.push(round);
            break;
          }
          await sleep(1_000);
        }
      }
    }
  } catch (err) {
    result.error = describe(err);
    log(`  deltas: ${result.error}`);
  } finally {
    await Promise.all([...gens.values()].map((g) => g.close()));
    await target?.stop();
  }
  for (const g of ["full", "delta"] as const) {
    const rounds = result[g].rounds;
    if (rounds.length === 0) continue;
    result[g].bytesPerDelivery = medianOf(rounds.map((x) => x.bytesPerDelivery));
    result[g].cpuUsPerDelivery = medianOf(rounds.map((x) => x.cpuUsPerDelivery));
  }
  const { full, delta } = result;
  if (full.bytesPerDelivery && delta.bytesPerDelivery && full.cpuUsPerDelivery) {
    result.bytesRatio = Math.round(full.bytesPerDelivery / delta.bytesPerDelivery * 10) / 10;
    result.cpuRatio = Math.round((delta.cpuUsPerDelivery ?? 0) / full.cpuUsPerDelivery * 100) /
      100;
  }
  Object.assign(result, deltasPass(result));
  return result;
}

/** The scenario's section of the bench table (Switchboard column only; the pass rule above). */
export function deltasReport(r: DeltasResult): Section {
  const title = `10 deltas, ${r.viewers.toLocaleString("en-US")} SSE viewers, ${
    Math.round(r.payloadBytes / 1024)
  } KB status`;
  const notes = r.error ? { switchboard: r.error } : undefined;
  const rows: Row[] = [
    {
      scenario: title,
      metric: "bytes/delivery, full / delta",
      unit: "B",
      values: { switchboard: r.full.bytesPerDelivery },
      notes: r.error
        ? notes
        : { switchboard: `${r.full.bytesPerDelivery} / ${r.delta.bytesPerDelivery}` },
      goal: `≥ ${MIN_BYTES_RATIO}× fewer (${r.bytesRatio ?? "?"}×)`,
      pass: r.bytesRatio === undefined ? undefined : r.bytesRatio >= MIN_BYTES_RATIO,
    },
    {
      scenario: "",
      metric: "CPU/delivery, delta ÷ full",
      unit: "ratio",
      values: { switchboard: r.cpuRatio },
      notes,
      goal: `≤ ${MAX_CPU_RATIO}× (${r.full.cpuUsPerDelivery ?? "?"} → ${
        r.delta.cpuUsPerDelivery ?? "?"
      } µs)`,
      pass: r.cpuRatio === undefined ? undefined : r.cpuRatio <= MAX_CPU_RATIO,
    },
  ];
  // The summary (with the pass rule's verdict) goes under the table.
  return { rows, notes: [describeDeltas(r)] };
}

/** The result as table lines. */
export function describeDeltas(r: DeltasResult): string {
  if (r.error) return `deltas: error: ${r.error}`;
  return [
    `Fossil deltas, ${r.viewers.toLocaleString("en-US")} SSE viewers, ${r.payloadBytes} B status` +
    ` (one of 20 components changing per update):`,
    `  full payloads: ${r.full.bytesPerDelivery} B/delivery, ${r.full.cpuUsPerDelivery} µs CPU/delivery`,
    `  with deltas:   ${r.delta.bytesPerDelivery} B/delivery, ${r.delta.cpuUsPerDelivery} µs CPU/delivery`,
    `  ${r.bytesRatio}× fewer bytes at ${r.cpuRatio}× the CPU per delivery: ${
      r.pass ? "pass" : `FAIL (${r.reason})`
    } (goal ≥ ${MIN_BYTES_RATIO}× at ≤ ${MAX_CPU_RATIO}×)`,
  ].join("\n");
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const options = quick ? DELTAS_QUICK : DELTAS_FULL;
  log(
    `deltas: ${options.n} SSE viewers per group, ${options.rounds} rounds of ${options.perRound}`,
  );
  const result = await runDeltas(options);
  console.log(describeDeltas(result));
  const out = new URL(`../results/deltas${quick ? "-quick" : ""}.json`, import.meta.url);
  const report = {
    command: `deno run -A bench/scenarios/deltas.ts ${Deno.args.join(" ")}`.trim(),
    at: new Date().toISOString(),
    options,
    result,
  };
  await Deno.writeTextFile(out, JSON.stringify(report, null, 2) + "\n");
  log(`wrote ${out.pathname}`);
  if (!result.pass) Deno.exitCode = 1;
}
