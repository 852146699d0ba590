/**
 * What the scenarios share: connecting a subject's subscribers, logging, medians.
 * @module
 */
import type { LoadGen } from "../lib/loadgen_client.ts";
import type { Subject } from "../lib/targets.ts";

/** The fan-out topic (the `status:*` channel: read-only, no presence). */
export const FANOUT_TOPIC = "status:bench";

/** A round during which other processes used more CPU than this (cores) is measured again. */
export const DISTURBED_CORES = 0.3;
/** Attempts per round, in all. */
export const ATTEMPTS = 3;
/** After this (performance.now() ms) disturbed rounds are kept as they are: the run must end. */
export const budget = { retryUntil: Infinity };

/** Whether a disturbed attempt may be measured again. */
export function mayRetry(otherCores: number, attempt: number): boolean {
  return otherCores > DISTURBED_CORES && attempt < ATTEMPTS &&
    performance.now() < budget.retryUntil;
}

/** Progress output (stderr, so stdout stays the table). */
export function log(message: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

/** The answer of the generator's `connect`. */
export interface ConnectResult {
  ok: number;
  failed: number;
  errors: string[];
  ms: number;
}

/** Opens `n` WebSocket subscribers to `subject`, joined to the fan-out topic. */
export async function connectSubscribers(
  gen: LoadGen,
  subject: Subject,
  n: number,
  extra: Record<string, unknown> = {},
): Promise<ConnectResult> {
  const result = await gen.call<ConnectResult>("connect", {
    host: subject.host,
    port: subject.port,
    proto: subject.proto,
    path: subject.wsPath(),
    count: n,
    startIndex: 0,
    topic: FANOUT_TOPIC,
    join: true,
    joinPayload: {},
    concurrency: 64,
    timeoutMs: 60_000,
    ...extra,
  }, 120_000);
  if (result.ok < n) {
    throw new Error(
      `${subject.label}: only ${result.ok} of ${n} subscribers connected: ${
        result.errors.join("; ")
      }`,
    );
  }
  return result;
}

/**
 * Before a round: if the server closed some subscribers (slow consumer, timeout…), logs why
 * and opens new ones so the round runs with `n` again. Returns how many were replaced.
 */
export async function topUp(
  gen: LoadGen,
  subject: Subject,
  n: number,
  extra: Record<string, unknown> = {},
): Promise<number> {
  const counts = await gen.call<{ live: number; closeReasons: Record<string, number> }>("counts");
  if (counts.live >= n) return 0;
  log(
    `  ${subject.label}: ${n - counts.live} subscribers were closed ` +
      `(${JSON.stringify(counts.closeReasons)}); reconnecting them`,
  );
  await gen.call("prune");
  await connectSubscribers(gen, subject, n - counts.live, {
    startIndex: n + _extraIndex,
    ...extra,
  });
  _extraIndex += n;
  return n - counts.live;
}
let _extraIndex = 0;

/** Rotates `items` by `r` (round r starts with a different subject). */
export function rotate<T>(items: T[], r: number): T[] {
  const k = r % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Median of a non-empty list. */
export function medianOf(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Sum of the CPU ticks of several processes. */
export function ticksOf(pids: number[], read: (pid: number) => number): number {
  return pids.reduce((sum, pid) => sum + read(pid), 0);
}

/** A failure as a short string for the results. */
export function describe(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n").slice(0, 3).join(" | ");
}

/** Stores, per subject, why the generator's sockets were closed during the run (if any were). */
export async function recordCloseReasons(
  gens: Map<string, LoadGen>,
  results: Record<string, { closeReasons?: Record<string, number> }>,
): Promise<void> {
  for (const [key, gen] of gens) {
    const counts = await gen.call<{ closeReasons: Record<string, number> }>("counts")
      .catch(() => ({ closeReasons: {} }));
    if (Object.keys(counts.closeReasons).length) results[key].closeReasons = counts.closeReasons;
  }
}
