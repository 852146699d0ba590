/**
 * Time as the runtime provides it: a {@link Clock} (tests inject a fake one) and {@link Timers}.
 * The core schedules sweeps, heartbeats, presence batches and leave graces through this seam
 * only (so a test's fake clock drives them all): on Deno a repeating timer must not keep the process alive
 * (`Deno.unrefTimer`), on Workers there is no such call; each runtime adapter supplies its own.
 *
 * @example
 * ```ts
 * const stop = plainTimers.every(1000, () => console.log("tick"));
 * stop();
 * ```
 * @module
 */

/** The source of time, in milliseconds since the epoch; tests inject a fake one. */
export interface Clock {
  now(): number;
}

/** Schedules work; every function returns the one that cancels it. */
export interface Timers {
  /** Runs `fn` every `ms` until cancelled; never keeps the process alive on its own. */
  every(ms: number, fn: () => void): () => void;
  /** Runs `fn` once after `ms` unless cancelled first. */
  after(ms: number, fn: () => void): () => void;
}

/** Timers of any web-standard runtime (`setInterval`), for runtimes without unref. */
export const plainTimers: Timers = {
  every(ms, fn) {
    const id = setInterval(fn, ms);
    return () => clearInterval(id);
  },
  after(ms, fn) {
    const id = setTimeout(fn, ms);
    return () => clearTimeout(id);
  },
};
