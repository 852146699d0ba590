/**
 * The Broker carries broadcasts between nodes; the in-memory broker is the single-process default.
 *
 * @example
 * ```ts
 * const broker = new MemoryBroker();
 * broker.onMessage((msg) => console.log(msg.topic));
 * ```
 * @module
 */
import type { Payload } from "./message.ts";
import type { Origin } from "./broadcast.ts";

/** A broadcast as it travels between nodes. */
export interface BrokerMessage {
  topic: string;
  event: string;
  payload: Payload;
  origin: Origin;
  position: number;
  at: number;
}

/** What `/healthz` and `/metrics` report about the broker. */
export interface BrokerState {
  kind: string;
  connected: boolean;
  /** Milliseconds between publish on the origin node and receipt here, last seen. */
  lagMs: number;
}

/** Carries broadcasts to the other nodes; local delivery never waits on it. */
export interface Broker {
  /** Hands a message to the other nodes; never throws, never blocks local delivery. */
  publish(msg: BrokerMessage): void;
  /** Registers the handler for messages that came from other nodes. */
  onMessage(handler: (msg: BrokerMessage) => void): void;
  state(): BrokerState;
  close(): Promise<void>;
}

/**
 * The embedded broker for a single process: there are no other nodes, so publishing is a no-op.
 */
export class MemoryBroker implements Broker {
  publish(_msg: BrokerMessage): void {}
  onMessage(_handler: (msg: BrokerMessage) => void): void {}
  state(): BrokerState {
    return { kind: "memory", connected: true, lagMs: 0 };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
