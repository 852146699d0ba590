/**
 * Failed authentications per client address in one-minute windows: past the limit the
 * address is refused (429) until its window ends, so a token cannot be guessed at the speed
 * of the network (5,000 guesses in 1.1 s before issue 21). Memory is bounded: at most
 * `maxAddresses` addresses are remembered, the oldest forgotten first.
 *
 * @example
 * ```ts
 * const throttle = new FailureThrottle({ perMinute: 30 });
 * throttle.failed("203.0.113.7");
 * throttle.retryAfter("203.0.113.7"); // 0: not blocked yet
 * ```
 * @module
 */
import type { Clock } from "./time.ts";

/** The fields of a {@link FailureThrottle}. */
export interface FailureThrottleInit {
  /** Failures per address per minute before it is refused. */
  perMinute: number;
  /** Addresses remembered at most (default 10,000). */
  maxAddresses?: number;
  clock?: Clock;
}

const _WINDOW_MS = 60_000;

/** Counts failures per address and says how long a blocked one must wait. */
export class FailureThrottle {
  readonly #windows = new Map<string, { start: number; failures: number }>();
  readonly #perMinute: number;
  readonly #maxAddresses: number;
  readonly #clock: Clock;

  constructor(init: FailureThrottleInit) {
    this.#perMinute = init.perMinute;
    this.#maxAddresses = init.maxAddresses ?? 10_000;
    this.#clock = init.clock ?? Date;
  }

  /** Seconds `address` must wait before it may try again; 0 when it may now. */
  retryAfter(address: string): number {
    const window = this.#windows.get(address);
    if (!window || window.failures < this.#perMinute) return 0;
    const left = window.start + _WINDOW_MS - this.#clock.now();
    if (left > 0) return Math.ceil(left / 1000);
    this.#windows.delete(address);
    return 0;
  }

  /** Counts one failure of `address`. */
  failed(address: string): void {
    const now = this.#clock.now();
    let window = this.#windows.get(address);
    if (!window || now - window.start >= _WINDOW_MS) {
      this.#windows.delete(address);
      if (this.#windows.size >= this.#maxAddresses) {
        this.#windows.delete(this.#windows.keys().next().value!);
      }
      this.#windows.set(address, window = { start: now, failures: 0 });
    }
    window.failures++;
  }
}
