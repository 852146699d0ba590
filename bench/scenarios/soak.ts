/**
 * Soak (issue 7): a bounded run of connect/join/leave churn with broadcasts against one
 * Switchboard process, showing that memory returns to its baseline and nothing leaks: after
 * the churn the server reports no session, no subscribed topic and no presence left.
 *
 * Clients are raw Phoenix v2 WebSockets from this process (the churn, not the fan-out, is what
 * is measured): each cycle opens a socket, joins a `record:*` topic (presence) and a `status:*`
 * topic, pushes a state change and a patch, then leaves cleanly, closes, or just drops.
 * @module
 */
import { sleep } from "../../scripts/support/process.ts";
import { rssKiB } from "../lib/stats.ts";
import { count, type Section } from "../lib/report.ts";
import { startTarget } from "../lib/targets.ts";
import { describe, log, medianOf } from "./common.ts";

/** What the soak found. */
export interface SoakResult {
  seconds: number;
  cycles: number;
  broadcasts: number;
  baselineKiB: number;
  peakKiB: number;
  afterKiB: number;
  /** After minus baseline, in MiB. */
  grownMiB: number;
  /** RSS between the two halves of the churn. */
  halfwayKiB?: number;
  /** Growth during the second half, in MiB: what a leak would keep adding. */
  secondHalfMiB?: number;
  sessionsLeft: number;
  topicsLeft: number;
  presencesLeft: number;
  errors: number;
  error?: string;
}

const RECORDS = 20;

async function settledRss(pid: number): Promise<number> {
  await sleep(3_000);
  const readings: number[] = [];
  for (let i = 0; i < 5; i++) {
    readings.push(rssKiB(pid));
    await sleep(200);
  }
  return medianOf(readings);
}

/** One client's life: connect, join two topics, push, then leave, close or drop. */
async function cycle(url: string, k: number): Promise<void> {
  const ws = new WebSocket(`${url}/socket/websocket?vsn=2.0.0&user_id=u${k % 300}`);
  const record = `record:soak-${k % RECORDS}`;
  let replies = 0;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("cycle timed out")), 10_000);
    ws.onmessage = (e) => {
      if (String(e.data).includes('"phx_reply"') && ++replies === 4) {
        clearTimeout(timer);
        resolve();
      }
    };
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new Error("socket error"));
    };
  });
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onclose = () => reject(new Error("closed before open"));
  });
  ws.send(JSON.stringify(["1", "1", record, "phx_join", { name: `User ${k}` }]));
  ws.send(JSON.stringify(["2", "2", `status:soak-${k % 5}`, "phx_join", {}]));
  ws.send(JSON.stringify(["1", "3", record, "state", { state: "editing" }]));
  ws.send(JSON.stringify(["1", "4", record, "patch", { k }]));
  await done;
  await sleep(50 + (k % 7) * 30);
  const closed = new Promise((resolve) => ws.onclose = resolve);
  if (k % 3 === 0) ws.send(JSON.stringify(["1", "5", record, "phx_leave", {}]));
  ws.close();
  await closed;
}

/** Runs the churn for `seconds` with `concurrency` clients alive at a time. */
export async function runSoak(seconds: number, concurrency: number): Promise<SoakResult> {
  // A small history window: it fills during the warm-up, so its (bounded, wanted) retention
  // is in the baseline and any growth after it would be a leak.
  const target = await startTarget("switchboard", { HISTORY_SIZE: "100" });
  const base = `http://${target.host}:${target.port}`;
  const url = `ws://${target.host}:${target.port}`;
  let cycles = 0, errors = 0, broadcasts = 0, peakKiB = 0;
  const churn = async (until: number) => {
    let next = 0;
    const worker = async () => {
      while (performance.now() < until) {
        try {
          await cycle(url, next++);
          cycles++;
        } catch {
          errors++;
        }
      }
    };
    const publisher = async () => {
      while (performance.now() < until) {
        const body = Array.from({ length: 10 }, (_, i) => ({
          topic: i % 2 ? `status:soak-${i % 5}` : `record:soak-${i % RECORDS}`,
          event: i % 2 ? "status" : "patch",
          payload: { n: broadcasts + i, at: Date.now() },
        }));
        const res = await fetch(`${base}/api/broadcast`, {
          method: "POST",
          body: JSON.stringify(body),
        });
        await res.body?.cancel();
        broadcasts += body.length;
        peakKiB = Math.max(peakKiB, rssKiB(target.pid));
        await sleep(50);
      }
    };
    await Promise.all([...Array.from({ length: concurrency }, worker), publisher()]);
  };
  try {
    // A first churn, so the baseline includes what any use allocates (JIT code, the topics'
    // bounded history windows, V8's heap sizing): what must not grow is what comes after.
    await churn(performance.now() + 30_000);
    const baselineKiB = await settledRss(target.pid);
    [cycles, errors, broadcasts] = [0, 0, 0];
    // Two equal halves: a leak grows in both; heap sizing settles in the first.
    await churn(performance.now() + seconds * 500);
    const halfwayKiB = await settledRss(target.pid);
    await churn(performance.now() + seconds * 500);
    const afterKiB = await settledRss(target.pid);
    const health = await (await fetch(`${base}/healthz`)).json();
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const topicsLeft = Number(metrics.match(/^switchboard_topics (\d+)$/m)?.[1] ?? -1);
    let presencesLeft = 0;
    for (let r = 0; r < RECORDS; r++) {
      const list = await (await fetch(`${base}/api/presence/record:soak-${r}`)).json();
      presencesLeft += Object.keys(list.presences).length;
    }
    const result: SoakResult = {
      seconds,
      cycles,
      broadcasts,
      baselineKiB,
      peakKiB,
      afterKiB,
      grownMiB: Math.round((afterKiB - baselineKiB) / 1024 * 10) / 10,
      halfwayKiB,
      secondHalfMiB: Math.round((afterKiB - halfwayKiB) / 1024 * 10) / 10,
      sessionsLeft: health.sessions,
      topicsLeft,
      presencesLeft,
      errors,
    };
    log(
      `  soak: ${cycles} client lives, ${broadcasts} broadcasts in ${seconds} s; RSS ${
        (baselineKiB / 1024).toFixed(1)
      } → halfway ${(halfwayKiB / 1024).toFixed(1)} (peak ${(peakKiB / 1024).toFixed(1)}) → ${
        (afterKiB / 1024).toFixed(1)
      } MiB; left: ${health.sessions} sessions, ${topicsLeft} topics, ${presencesLeft} presences`,
    );
    return result;
  } catch (err) {
    log(`  soak: ${describe(err)}`);
    return {
      seconds,
      cycles,
      broadcasts,
      baselineKiB: 0,
      peakKiB,
      afterKiB: 0,
      grownMiB: 0,
      sessionsLeft: -1,
      topicsLeft: -1,
      presencesLeft: -1,
      errors,
      error: describe(err),
    };
  } finally {
    await target.stop();
  }
}

/**
 * Scenario 6's table: RSS back to baseline after the churn (< 8 MiB above), no steady growth
 * in its second half (< 4 MiB), and no session, topic or presence left behind.
 *
 * @example
 * ```ts
 * const { rows } = soakReport(await runSoak(120, 40));
 * ```
 */
export function soakReport(soak: SoakResult): Section {
  const title = `6 soak ${soak.seconds} s, ${count(soak.cycles)} client lives`;
  const leaked = soak.sessionsLeft + soak.topicsLeft + soak.presencesLeft;
  return {
    rows: [{
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
    }],
  };
}
