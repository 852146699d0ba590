/**
 * The seam between a node and the others (Centrifuge's `broker.go` is the model): the
 * {@link Broker} interface the hub publishes through, the messages and presence state it
 * carries, and the error the hub throws when a message is too large for it. The core owns it;
 * the in-memory broker (`broker_memory.ts`) is the single-process default, and `lib/cluster`
 * implements it for many nodes (the Redis broker, the BroadcastChannel broker of `deno serve`
 * isolates).
 *
 * @example
 * ```ts
 * function announce(broker: Broker): void {
 *   broker.onMessage((msg: BrokerMessage) => console.log(msg.topic, msg.seq));
 * }
 * ```
 * @module
 */
import type { Payload } from "./message.ts";
import type { Origin } from "./broadcast.ts";
import type { Heads } from "../resume/history.ts";

/** One presence entry: the user's meta plus its `phx_ref` (and `phx_ref_prev` after an update). */
export type PresenceMeta = Payload & { phx_ref: string; phx_ref_prev?: string };

/** `{key: {metas: [...]}}`, the shape of `presence_state` and of both halves of a diff. */
export type PresenceState = Record<string, { metas: PresenceMeta[] }>;

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

/**
 * A new id for one run of a node: six base-36 characters, so the suffixes the hub adds to the
 * streams of forgotten topics never make another run's id.
 *
 * @example
 * ```ts
 * newRunId(); // "k3f09a"
 * ```
 */
export function newRunId(): string {
  return Math.floor(Math.random() * 36 ** 6).toString(36).padStart(6, "0");
}

/** Carries broadcasts to the other nodes; local delivery never waits on it. */
export interface Broker {
  /**
   * This node run's id on the bus ({@link newRunId}), when the broker has one: the hub numbers
   * its streams in it, so one run has one id. Undefined: the hub makes its own.
   */
  readonly runId?: string;
  /** Hands a message to the other nodes; never throws, never blocks local delivery. */
  publish(msg: BrokerMessage): void;
  /**
   * Registers the handler for messages that came from other nodes. The handler never throws
   * (the hub contains its own failures), so a broker need not guard its receive loop.
   */
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
  /**
   * Registers the handler for messages from other nodes that could not be recovered (it never
   * throws either).
   */
  onLoss(handler: (loss: BrokerLoss) => void): void;
  state(): BrokerState;
  close(): Promise<void>;
}
