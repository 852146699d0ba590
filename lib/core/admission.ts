/**
 * Fair admission (issue 21): what counts against `MAX_CONNECTIONS`, and the separate budget of
 * long-poll sessions. A long-poll session holds no TCP connection between polls and costs its
 * client nothing, so it must not take the room of WebSocket and SSE clients: sessions count
 * against their own, smaller budget, per client address too. An SSE response counts from its
 * start until its socket is done with it (read to the end, or the client gone), not until its
 * session ends: a cut stream whose reader stopped reading still holds a socket.
 *
 * @example
 * ```ts
 * const longPolls = new AddressBudget({ total: 2500, perAddress: 50, what: "long-poll sessions" });
 * const taken = longPolls.take("203.0.113.7");
 * if (taken.ok) taken.release(); // when the session ends
 * ```
 * @module
 */

/** A refusal, or the release of what was taken. */
export type BudgetTicket =
  | { ok: true; release: () => void }
  | { ok: false; error: string };

/** The fields of an {@link AddressBudget}. */
export interface AddressBudgetInit {
  /** At most this many on the node. */
  total: number;
  /** At most this many per client address. */
  perAddress: number;
  /** What is counted, for the refusal ("long-poll sessions"). */
  what: string;
}

/** Counts things per client address with a cap per address and a total cap. */
export class AddressBudget {
  readonly #byAddress = new Map<string, number>();
  #total = 0;

  constructor(readonly init: AddressBudgetInit) {}

  /** Takes one for `address`, or says which cap refused it. */
  take(address: string): BudgetTicket {
    const { total, perAddress, what } = this.init;
    const mine = this.#byAddress.get(address) ?? 0;
    if (mine >= perAddress) {
      return { ok: false, error: `too many ${what} from this address (at most ${perAddress})` };
    }
    if (this.#total >= total) {
      return { ok: false, error: `too many ${what} on this node (at most ${total})` };
    }
    this.#byAddress.set(address, mine + 1);
    this.#total++;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.#total--;
        const left = (this.#byAddress.get(address) ?? 1) - 1;
        if (left <= 0) this.#byAddress.delete(address);
        else this.#byAddress.set(address, left);
      },
    };
  }

  /** How many are taken now. */
  get size(): number {
    return this.#total;
  }
}

/** Connections that hold a socket beyond their session (SSE responses), until they are gone. */
export class HeldConnections {
  #held = 0;

  /** Counts one until `gone` settles. */
  hold(gone: Promise<unknown>): void {
    this.#held++;
    const release = () => void this.#held--;
    gone.then(release, release);
  }

  /** How many are held now. */
  get size(): number {
    return this.#held;
  }
}
