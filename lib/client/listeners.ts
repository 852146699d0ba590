/**
 * A set of callbacks of the client's public API: each one is called in turn, and one that
 * throws is logged without keeping the others from their call.
 *
 * @example
 * ```ts
 * const onState = listeners<[string]>();
 * const off = onState.add((state) => console.log(state));
 * onState.call("live");
 * off();
 * ```
 * @module
 */

/** Callbacks taking `A`. */
export interface Listeners<A extends unknown[]> {
  /** Adds a callback; returns the function that removes it. */
  add(callback: (...args: A) => void): () => void;
  /** Calls every callback (added while calling: not this time). */
  call(...args: A): void;
}

/** A new, empty set of callbacks. */
export function listeners<A extends unknown[]>(): Listeners<A> {
  const set = new Set<(...args: A) => void>();
  return {
    add(callback: (...args: A) => void) {
      set.add(callback);
      return () => void set.delete(callback);
    },
    call(...args: A) {
      for (const callback of [...set]) {
        try {
          callback(...args);
        } catch (err) {
          console.error("a Switchboard client callback threw:", err);
        }
      }
    },
  };
}
