/**
 * A token bucket: `capacity` tokens, refilled at `perSecond`; each client frame takes one.
 *
 * @example
 * ```ts
 * const bucket = new TokenBucket(100, 50);
 * if (!bucket.take(Date.now())) console.log("throttled");
 * ```
 * @module
 */

/** A token bucket per session: each client frame takes a token, refilled at a steady rate. */
export class TokenBucket {
  #tokens: number;
  #updated = 0;

  constructor(readonly capacity: number, readonly perSecond: number) {
    this.#tokens = capacity;
  }

  /** Takes one token at time `now` (ms); false when the bucket is empty. */
  take(now: number): boolean {
    if (this.#updated === 0) this.#updated = now;
    const refill = (now - this.#updated) * this.perSecond / 1000;
    if (refill > 0) {
      this.#tokens = Math.min(this.capacity, this.#tokens + refill);
      this.#updated = now;
    }
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
