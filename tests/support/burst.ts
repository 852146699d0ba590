/**
 * The burst of issue 21 (600 × 20 KB status messages in 15 batches of 40, through the API) and
 * the check that a viewer converged: every message in order, or a reset then the current state.
 *
 * @example
 * ```ts
 * const reading = followSse(`${url}/events?topic=status:burst`, { done: sawLast(600), maxConnects: 25 });
 * await publishBurst(url, "status:burst");
 * checkConverged((await reading).events).last; // 600
 * ```
 * @module
 */
import assert from "node:assert/strict";
import type { SseEvent } from "./sse.ts";

/** 600 × 20 KB in 15 batches of 40, as the reproduction published them. */
export async function publishBurst(url: string, topic: string, total = 600, batch = 40) {
  const pad = "x".repeat(20_000);
  for (let first = 1; first <= total; first += batch) {
    const body = Array.from({ length: Math.min(batch, total - first + 1) }, (_, i) => ({
      topic,
      event: "status",
      payload: { n: first + i, pad },
    }));
    const res = await fetch(`${url}/api/broadcast`, { method: "POST", body: JSON.stringify(body) });
    await res.body?.cancel();
    assert.equal(res.status, 202);
  }
}

/**
 * Checks a viewer's events: every status in order, none twice, none skipped, except that a
 * `reset` may jump to the current state (the status it carries); returns the last number seen.
 */
export function checkConverged(events: SseEvent[]): { last: number; resets: number } {
  let expected = 1;
  let resets = 0;
  for (const event of events) {
    if (event.event === "reset") {
      resets++;
      const state = event.json!.payload.state as { status: { n: number } | null };
      expected = (state.status?.n ?? 0) + 1;
    } else if (event.event === "status") {
      const n = event.json!.payload.n as number;
      assert.equal(n, expected, `status ${n} arrived where ${expected} was due`);
      expected++;
    }
  }
  return { last: expected - 1, resets };
}

/** Done once the last status, or a reset carrying it, was read. */
export const sawLast = (total: number) => (events: SseEvent[]) =>
  events.some((e) =>
    (e.event === "status" && e.json!.payload.n === total) ||
    (e.event === "reset" &&
      (e.json!.payload.state as { status: { n: number } | null }).status?.n === total)
  );
