/**
 * What this tab knows of the network. The engine may run in a worker, which does not always
 * hear the browser go offline; every tab does, and the network is the browser's: the tab's word
 * wins while it is offline ({@link NetworkWatch.shown}).
 *
 * @example
 * ```ts
 * const network = new NetworkWatch();
 * network.onChange(() => console.log(network.shown({ kind: "live" })));
 * network.close();
 * ```
 * @module
 */
import type { ConnectionState } from "./feed.ts";
import { listeners } from "./listeners.ts";

type _Global = {
  navigator?: { onLine?: boolean };
  addEventListener?: (type: string, listener: () => void) => void;
  removeEventListener?: (type: string, listener: () => void) => void;
};

/** Follows the browser's `offline` and `online` events (nothing happens where there are none). */
export class NetworkWatch {
  #offlineSince: number | undefined;
  readonly #changes = listeners<[]>();
  readonly #global = globalThis as unknown as _Global;

  constructor() {
    if (this.#global.navigator?.onLine === false) this.#offlineSince = Date.now();
    this.#global.addEventListener?.("offline", this.#onOffline);
    this.#global.addEventListener?.("online", this.#onOnline);
  }

  /** Since when the browser is offline (ms since the epoch), or undefined while online. */
  get offlineSince(): number | undefined {
    return this.#offlineSince;
  }

  /** `state` as the tab shows it: `offline` while the browser is, whatever the engine says. */
  shown(state: ConnectionState): ConnectionState {
    return this.#offlineSince === undefined
      ? state
      : { kind: "offline", since: this.#offlineSince };
  }

  /** Called when the browser goes offline or comes back, in the order added. */
  onChange(callback: () => void): () => void {
    return this.#changes.add(callback);
  }

  /** Stops listening to the browser. */
  close(): void {
    this.#global.removeEventListener?.("offline", this.#onOffline);
    this.#global.removeEventListener?.("online", this.#onOnline);
  }

  #onOffline = () => {
    this.#offlineSince ??= Date.now();
    this.#changes.call();
  };

  #onOnline = () => {
    if (this.#offlineSince === undefined) return;
    this.#offlineSince = undefined;
    this.#changes.call();
  };
}
