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
 * The embedded broker for a single process: there are no other nodes, so it carries nothing.
 */
export class MemoryBroker implements Broker {
  publish(_msg: BrokerMessage): void {}
  onMessage(_handler: (msg: BrokerMessage) => void): void {}
  replicatePresence(_topic: string, _state: PresenceState): void {}
  onPresence(_handlers: PresenceReplicaHandlers): void {}
  fetchLast(_topic: string): Promise<BrokerMessage | undefined> {
    return Promise.resolve(undefined);
  }
  fetchHeads(_topic: string): Promise<Heads | undefined> {
    return Promise.resolve(undefined);
  }
  fetchRecent(_topic: string, _count: number): Promise<BrokerMessage[]> {
    return Promise.resolve([]);
  }
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
