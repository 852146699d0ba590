/**
 * Scenario 4, presence join storm: `n` users (connect param `user_id=u<i>`, join param `name`)
 * are connected first, then join one `record:*` topic within `spreadMs`. Every client keeps its
 * presence list from `presence_state` and `presence_diff` (keys joined minus keys left, Phoenix
 * semantics) and notes when it holds all `n` users. Reported: time from the first join sent
 * until every list is complete, and presence messages received per client.
 *
 * The references implement naive presence (a full state to the joiner and one diff per join to
 * everyone, as Phoenix does without batching), so their messages per client grow with `n`.
 * @module
 */
import { LoadGen } from "../lib/loadgen_client.ts";
import { sleep } from "../../scripts/support/process.ts";
import { otherLoad, type Summary } from "../lib/stats.ts";
import { count, notesOf, type Section, targetValues, withRatios } from "../lib/report.ts";
import { startTarget, type TargetName } from "../lib/targets.ts";
import { describe, log, mayRetry } from "./common.ts";

/** A target's result. */
export interface StormResult {
  users?: number;
  /** Clients whose list became complete. */
  complete?: number;
  /** Seconds from the first join until the last list was complete (undefined: not all were). */
  completeSeconds?: number;
  /** Per-client completion time since the first join, ms. */
  completeMs?: Summary;
  /** Presence messages (state + diffs) received per client. */
  presenceMessages?: Summary;
  joinSpreadMs?: number;
  /** CPU used by other processes on the machine meanwhile, in cores. */
  otherCores?: number;
  error?: string;
}

/** Runs the storm against a fresh server, again (bounded) if other work disturbed it. */
export async function runStorm(
  kind: TargetName,
  n: number,
  spreadMs: number,
  timeoutMs = 30_000,
): Promise<StormResult> {
  for (let attempt = 1;; attempt++) {
    const result = await _stormOnce(kind, n, spreadMs, timeoutMs);
    if (result.error || !mayRetry(result.otherCores ?? 0, attempt)) {
      return result;
    }
    log(`  disturbed by other work (${result.otherCores} cores), again`);
    await sleep(1_000);
  }
}

/** What the generator's `stormWait` answers. */
export interface StormWait {
  clients: number;
  complete: number;
  completeMs: Summary;
  presenceMsgs: Summary;
  /** Crowd members only: presence bytes received. */
  presenceBytes: Summary;
  presenceBytesTotal: number;
}

/**
 * Has every connected (not joined) client of `gen` join within `spreadMs`, then waits (at most
 * `timeoutMs`) until each is complete: its list full, or for crowd members the full count.
 */
export async function joinStorm(
  gen: LoadGen,
  { n, spreadMs, timeoutMs }: { n: number; spreadMs: number; timeoutMs: number },
): Promise<{ joined: { startAt: number; endAt: number }; r: StormWait }> {
  const joined = await gen.call<{ startAt: number; endAt: number }>(
    "stormJoin",
    { ratePerSec: n / (spreadMs / 1000) },
    spreadMs + 30_000,
  );
  const r = await gen.call<StormWait>(
    "stormWait",
    { timeoutMs, startAt: joined.startAt },
    timeoutMs + 30_000,
  );
  return { joined, r };
}

async function _stormOnce(
  kind: TargetName,
  n: number,
  spreadMs: number,
  timeoutMs: number,
): Promise<StormResult> {
  const target = await startTarget(kind);
  const gen = LoadGen.spawn(1)[0];
  const topic = "record:storm";
  try {
    const c = await gen.call<{ ok: number; errors: string[] }>("connect", {
      host: target.host,
      port: target.port,
      proto: target.proto,
      path: target.wsPath("u{i}"),
      count: n,
      startIndex: 0,
      topic,
      join: false,
      joinPayload: target.proto === "eio"
        ? { name: "User {i}", user_id: "u{i}" }
        : { name: "User {i}" },
      stormKeys: n,
      concurrency: 64,
      timeoutMs: 60_000,
    }, 120_000);
    if (c.ok < n) throw new Error(`only ${c.ok} of ${n} connected: ${c.errors.join("; ")}`);
    const others = otherLoad([target.pid, gen.pid, Deno.pid]);
    const { joined, r } = await joinStorm(gen, { n, spreadMs, timeoutMs });
    const result: StormResult = {
      users: n,
      complete: r.complete,
      completeSeconds: r.complete === n ? Math.round(r.completeMs.max) / 1000 : undefined,
      completeMs: r.completeMs,
      presenceMessages: r.presenceMsgs,
      joinSpreadMs: Math.round(joined.endAt - joined.startAt),
      otherCores: others.stop(),
    };
    log(
      `  ${target.label}: ${r.complete}/${n} complete` +
        (result.completeSeconds !== undefined ? ` after ${result.completeSeconds} s` : "") +
        `, ${
          r.presenceMsgs.mean.toFixed(1)
        } presence messages per client (max ${r.presenceMsgs.max})`,
    );
    return result;
  } catch (err) {
    log(`  ${target.label}: ${describe(err)}`);
    return { error: describe(err) };
  } finally {
    await gen.close();
    await target.stop();
  }
}

/**
 * Scenario 4's table: when every presence list was complete (goal: under 5 s for 2,000 users)
 * and presence messages per client (goal: far from N, at most N/10).
 *
 * @example
 * ```ts
 * const { rows } = stormReport(results, 2_000, true);
 * ```
 */
export function stormReport(
  r: Record<string, StormResult>,
  users: number,
  sioOk: boolean,
): Section {
  const complete = withRatios({
    scenario: `4 presence storm ${count(users)} users`,
    metric: "all lists complete",
    unit: "s",
    values: targetValues(r, (x) => x.completeSeconds),
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
  const msgs = withRatios({
    scenario: "",
    metric: "presence msgs per client, mean",
    unit: "msgs",
    values: targetValues(r, (x) => x.presenceMessages?.mean),
    notes: notesOf(r, sioOk),
    goal: `far from N: <= ${count(users / 10)} (N/10)`,
  });
  if (sb?.presenceMessages) msgs.pass = sb.presenceMessages.mean <= users / 10;
  return { rows: [complete, msgs] };
}
