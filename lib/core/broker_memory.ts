/**
 * The embedded broker of a single process (Centrifuge's `broker_memory.go`): there are no
 * other nodes, so it carries nothing. The default of every {@link Broker} option.
 *
 * @example
 * ```ts
 * const broker = new MemoryBroker();
 * broker.state(); // { kind: "memory", connected: true, lagMs: 0 }
 * ```
 * @module
 */
import type {
  Broker,
  BrokerLoss,
  BrokerMessage,
  BrokerState,
  PresenceReplicaHandlers,
  PresenceState,
} from "./broker.ts";
import type { Heads } from "../resume/history.ts";

/**
 * The reads of a broker (or a bus) that keeps no state shared between nodes: nothing is there.
 *
 * @example
 * ```ts
 * await NO_SHARED_STORE.fetchRecent("status:acme", 10); // []
 * ```
 */
export const NO_SHARED_STORE: Readonly<Pick<Broker, "fetchLast" | "fetchHeads" | "fetchRecent">> =
  Object.freeze({
    fetchLast: (_topic: string): Promise<BrokerMessage | undefined> => Promise.resolve(undefined),
    fetchHeads: (_topic: string): Promise<Heads | undefined> => Promise.resolve(undefined),
    fetchRecent: (_topic: string, _count: number): Promise<BrokerMessage[]> => Promise.resolve([]),
  });

/**
 * The embedded broker for a single process: there are no other nodes, so it carries nothing.
 */
export class MemoryBroker implements Broker {
  publish(_msg: BrokerMessage): void {}
  onMessage(_handler: (msg: BrokerMessage) => void): void {}
  replicatePresence(_topic: string, _state: PresenceState): void {}
  onPresence(_handlers: PresenceReplicaHandlers): void {}
  readonly fetchLast = NO_SHARED_STORE.fetchLast;
  readonly fetchHeads = NO_SHARED_STORE.fetchHeads;
  readonly fetchRecent = NO_SHARED_STORE.fetchRecent;
  continuity(): number | undefined {
    return 0;
  }
  onLoss(_handler: (loss: BrokerLoss) => void): void {}
  state(): BrokerState {
    return { kind: "memory", connected: true, lagMs: 0 };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
