/**
 * Scenario 3, memory per idle connection: the server's RSS (`VmRSS` of /proc/<pid>/status)
 * after a warm-up (50 connections opened, joined and closed) and again after `n` idle
 * connections, divided by `n`. WebSocket connections are joined to the fan-out topic; SSE
 * streams are `GET /events?topic=…` (Socket.IO has no SSE transport).
 * @module
 */
import { LoadGen } from "../lib/loadgen_client.ts";
import { sleep } from "../../scripts/support/process.ts";
import { rssKiB } from "../lib/stats.ts";
import { count, notesOf, type Row, type Section, targetValues, withRatios } from "../lib/report.ts";
import { startTarget, type TargetName } from "../lib/targets.ts";
import { describe, FANOUT_TOPIC, log, medianOf } from "./common.ts";

/** A target's result. */
export interface MemoryResult {
  /** KiB of RSS per connection. */
  kibPerConnection?: number;
  baselineKiB?: number;
  loadedKiB?: number;
  connections?: number;
  error?: string;
}

async function settledRss(pid: number, settleMs: number): Promise<number> {
  await sleep(settleMs);
  const readings: number[] = [];
  for (let i = 0; i < 5; i++) {
    readings.push(rssKiB(pid));
    await sleep(200);
  }
  return medianOf(readings);
}

/** Measures one target and transport in a fresh server process. */
export async function runMemory(
  kind: TargetName,
  transport: "websocket" | "sse",
  n: number,
  settleMs = 2_000,
): Promise<MemoryResult> {
  const target = await startTarget(kind);
  const gen = LoadGen.spawn(1)[0];
  try {
    const path = transport === "sse" ? target.ssePath!(FANOUT_TOPIC) : target.wsPath();
    const connect = (count: number) =>
      gen.call<{ ok: number; errors: string[] }>("connect", {
        host: target.host,
        port: target.port,
        proto: transport === "sse" ? "sse" : target.proto,
        path,
        count,
        startIndex: 0,
        topic: FANOUT_TOPIC,
        join: true,
        joinPayload: {},
        concurrency: 32,
        timeoutMs: 60_000,
      }, 120_000);
    await connect(50);
    await gen.call("close");
    const baselineKiB = await settledRss(target.pid, settleMs);
    const c = await connect(n);
    if (c.ok < n) throw new Error(`only ${c.ok} of ${n} connected: ${c.errors.join("; ")}`);
    const loadedKiB = await settledRss(target.pid, settleMs);
    const kibPerConnection = Math.round((loadedKiB - baselineKiB) / n * 100) / 100;
    log(`  ${target.label} ${transport}: ${kibPerConnection} KiB per idle connection`);
    return { kibPerConnection, baselineKiB, loadedKiB, connections: n };
  } catch (err) {
    log(`  ${target.label} ${transport}: ${describe(err)}`);
    return { error: describe(err) };
  } finally {
    await gen.close();
    await target.stop();
  }
}

/** Scenario 3's table: RSS per idle WebSocket and SSE stream (goal: at most 1.2x raw Deno). *
 * @example
 * ```ts
 * const { rows } = memoryReport({ websocket, sse }, 5_000, true);
 * ```
 */
export function memoryReport(
  results: Record<"websocket" | "sse", Record<string, MemoryResult>>,
  connections: number,
  sioOk: boolean,
): Section {
  const rows: Row[] = [];
  for (const transport of ["websocket", "sse"] as const) {
    const r = results[transport];
    const notes = notesOf(r, sioOk);
    if (transport === "sse") notes.socketio = "n/a";
    const row = withRatios({
      scenario: transport === "websocket" ? `3 memory, ${count(connections)} idle` : "",
      metric: transport === "websocket" ? "RSS per WebSocket" : "RSS per SSE stream",
      unit: "KiB",
      values: targetValues(r, (x) => x.kibPerConnection),
      notes,
      goal: transport === "websocket" ? "<=1.2x raw" : "<=1.2x raw SSE",
    });
    if (row.vsRaw !== undefined) row.pass = row.vsRaw <= 1.2;
    rows.push(row);
  }
  return { rows };
}
