/**
 * A resume's replay, paced by the connection's drain: the missed messages are written while
 * the client takes them (at most half the outbound budget unread at a time), never enqueued
 * whole past `MAX_OUTBOUND_BYTES`, so the slow-consumer cut never hits a replay that has not
 * started. Live messages that arrive meanwhile are held; when they alone pass the budget, the
 * client is too far behind: the replay gives up and the caller sends a `reset` instead.
 *
 * @example
 * ```ts
 * import type { Broadcast } from "./broadcast.ts";
 * import type { Connection } from "./connection.ts";
 * declare const connection: Connection;
 * declare const missed: Broadcast[];
 * const replay = new PacedReplay(connection, 2 << 20);
 * const outcome = await replay.send(missed, (b) => connection.sendBroadcast(b), () => false);
 * if (outcome === "overflow") {
 *   // send a reset with the current state, then the held messages past its position
 * }
 * ```
 * @module
 */
import type { Broadcast } from "./broadcast.ts";
import type { Connection } from "./connection.ts";
import { approximateJsonBytes } from "./limits.ts";

/** How a paced replay ended: all sent, held live messages past the budget, or stopped. */
export type ReplayOutcome = "sent" | "overflow" | "stopped";

/** One replay of one topic on one connection, with the live messages held meanwhile. */
export class PacedReplay {
  /** Live broadcasts that arrived during the replay, in order. */
  readonly held: Broadcast[] = [];
  #heldBytes = 0;
  #overflow = false;
  #wake?: () => void;

  constructor(readonly connection: Connection, readonly budget: number) {}

  /** True once the held live messages passed the budget. */
  get overflowed(): boolean {
    return this.#overflow;
  }

  /** Holds a live broadcast until the replay is done. */
  hold(b: Broadcast): void {
    this.held.push(b);
    this.#heldBytes += approximateJsonBytes(b.payload) + (b.binary?.byteLength ?? 0);
    if (this.#heldBytes > this.budget && !this.#overflow) {
      this.#overflow = true;
      this.#wake?.();
    }
  }

  /**
   * Writes `messages` through `forward`, waiting for the client to take what was written
   * whenever more than half the budget is unread.
   */
  async send(
    messages: readonly Broadcast[],
    forward: (b: Broadcast) => void,
    stopped: () => boolean,
  ): Promise<ReplayOutcome> {
    const low = this.budget / 2;
    for (const b of messages) {
      // Bounded: each wait ends when the client reads, the connection closes (backlog 0), or
      // the held messages overflow; the connection's own timeouts end a client that vanished.
      while ((this.connection.backlog?.() ?? 0) > low) {
        if (stopped()) return "stopped";
        if (this.#overflow) return "overflow";
        await this.#drained();
      }
      if (stopped()) return "stopped";
      if (this.#overflow) return "overflow";
      forward(b);
    }
    return "sent";
  }

  #drained(): Promise<void> {
    const drained = this.connection.drained?.() ?? Promise.resolve();
    const woken = new Promise<void>((resolve) => this.#wake = resolve);
    return Promise.race([drained, woken]).finally(() => this.#wake = undefined);
  }
}
