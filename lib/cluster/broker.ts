/**
 * The Broker carries broadcasts and presence between nodes; the in-memory broker is the
 * single-process default; the Redis broker (`redis/broker.ts`) joins many nodes into one, the
 * BroadcastChannel broker (`broadcast_channel.ts`) the workers of one process, both through the
 * replication of `replication.ts`.
 *
 * @example
 * ```ts
 * const broker = new MemoryBroker();
 * broker.onMessage((msg) => console.log(msg.topic));
 * ```
 * @module
 */
import type { Payload } from "../core/message.ts";
import type { Origin } from "../core/broadcast.ts";
import type { PresenceState } from "../core/presence_types.ts";
import type { Heads } from "../resume/history.ts";

/** A broadcast as it travels between nodes. */
export interface BrokerMessage {
  topic: string;
  event: string;
  payload: Payload;
  /** A binary broadcast's bytes, base64 (brokers carry JSON). */
  binary?: string;
  origin: Origin;
  /** The publishing node run's stream and the message's sequence in it (see `cursor.ts`). */
  stream: string;
  seq: number;
  at: number;
}

/**
 * Thrown by the hub when a message is too large for the broker's bus: it is refused where it
 * enters (API 413, a push's error reply), so it never breaks the bus for the others.
 */
export class MessageTooLargeError extends Error {
  constructor(readonly bytes: number, readonly limit: number) {
    super(
      `message too large for the cluster bus: ${bytes} bytes encoded, at most ${limit}; ` +
        "send a smaller payload (or a reference to the data)",
    );
    this.name = "MessageTooLargeError";
  }
}

/** What the broker tells the hub when messages from another node were lost for good. */
export interface BrokerLoss {
  /** The node run whose messages were lost. */
  nodeId: string;
  /** How many messages (their topics are unknown: every topic is affected). */
  count: number;
}

/** What `/healthz` and `/metrics` report about the broker. */
export interface BrokerState {
  kind: string;
  connected: boolean;
  /** Milliseconds between publish and receipt through the broker, last seen. */
  lagMs: number;
  /** Messages waiting to be sent to the other nodes. */
  pending?: number;
  /** Other nodes seen alive. */
  nodes?: number;
  /** Why the broker is not connected, when it is not. */
  error?: string;
}

/** What a broker tells the presence tracker about the other nodes. */
export interface PresenceReplicaHandlers {
  /**
   * Another node's presence state for one topic (empty object: none left there). With
   * `announce`, this node tells its own clients the difference (the other node did not send a
   * diff: it is resending its state after an outage).
   */
  state(nodeId: string, topic: string, state: PresenceState, announce: boolean): void;
  /** Another node is gone (died or restarted): all its presences leave. */
  nodeDown(nodeId: string): void;
  /** The broker (re)connected: send this node's whole presence state again. */
  resync(): void;
}

/** Carries broadcasts to the other nodes; local delivery never waits on it. */
export interface Broker {
  /** Hands a message to the other nodes; never throws, never blocks local delivery. */
  publish(msg: BrokerMessage): void;
  /** Registers the handler for messages that came from other nodes. */
  onMessage(handler: (msg: BrokerMessage) => void): void;
  /** Sends this node's presence state of one topic to the other nodes. */
  replicatePresence(topic: string, state: PresenceState): void;
  /** Registers the presence tracker's handlers. */
  onPresence(handlers: PresenceReplicaHandlers): void;
  /** The last message of a topic kept by the broker (shared by all nodes), if any. */
  fetchLast(topic: string): Promise<BrokerMessage | undefined>;
  /** The newest sequence per stream of a topic, shared by all nodes; undefined: none kept. */
  fetchHeads(topic: string): Promise<Heads | undefined>;
  /** The newest `count` messages of a topic's shared history, oldest first. */
  fetchRecent(topic: string, count: number): Promise<BrokerMessage[]>;
  /**
   * A number that stays the same while this node has received everything from the other nodes
   * without interruption, and changes whenever it may have missed something (reconnect, loss);
   * undefined while disconnected. The hub trusts what it learnt from the shared state only as
   * long as this number holds (so a poll of a silent topic costs no shared read).
   */
  continuity(): number | undefined;
  /** Largest message (encoded JSON bytes) the bus carries; undefined: no limit. */
  readonly maxMessageBytes?: number;
  /** Registers the handler for messages from other nodes that could not be recovered. */
  onLoss(handler: (loss: BrokerLoss) => void): void;
  state(): BrokerState;
  close(): Promise<void>;
}

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
