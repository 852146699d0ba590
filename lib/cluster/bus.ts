/**
 * The seam under the replication: what carries a node's envelopes to the others and,
 * optionally, keeps shared state (history, last messages, presence snapshots, a directory of
 * peers). Redis is one bus (`redis/broker.ts`), a `BroadcastChannel` between the isolates of
 * one process another (`broadcast_channel.ts`); the {@link ReplicatingBroker} of
 * `replication.ts` runs over either.
 *
 * @example
 * ```ts
 * function describe(bus: ClusterBus): string {
 *   return `${bus.kind}: ${bus.snapshots ? "keeps" : "asks for"} presence snapshots`;
 * }
 * ```
 * @module
 */
import type { BrokerMessage, PresenceState } from "../core/broker.ts";
import type { Heads } from "../resume/history.ts";
import type { PeerDirectory } from "./peers.ts";

/** A message waiting to go out, with its index in this run and its encoding. */
export interface QueuedMessage {
  index: number;
  msg: BrokerMessage;
  json: string;
}

/** What one flush hands the bus: envelopes to publish, and what it may keep. */
export interface BusBatch {
  /** This node run (the presence snapshot's owner). */
  runId: string;
  /** This tick's messages (a bus with shared history keeps them). */
  messages: readonly QueuedMessage[];
  /** This node's presence states that changed (a bus with snapshots keeps them). */
  presence: ReadonlyMap<string, PresenceState>;
  /** The envelope sequence the presence snapshot is as new as. */
  presenceSeq: number;
  /** Envelopes, in order. */
  envelopes: readonly string[];
  /** Refresh this node's directory entry (a bus with a directory). */
  directory: boolean;
}

/** What the bus noticed while sending. */
export interface SendOutcome {
  /** It lost this node's keys (restarted empty): write the directory and presence again. */
  lostKeys?: boolean;
}

/** What a bus calls when its subscription delivers or changes. */
export interface SubscriptionHandlers {
  message(raw: string): void;
  /** The subscription is (again) established. */
  subscribed(): void;
  /** The subscription broke (it will be retried). */
  failed(err: unknown): void;
}

/** The bus and, optionally, shared storage under a `ReplicatingBroker`. */
export interface ClusterBus {
  /** `BrokerState.kind`. */
  readonly kind: string;
  /** True when this node's own envelopes come back on its subscription (used as a self-check). */
  readonly echoes: boolean;
  /** True when it keeps presence snapshots (else a (re)joining node asks the others). */
  readonly snapshots: boolean;
  /** Publishes the envelopes in order, with what the bus keeps; rejects on failure. */
  send(batch: BusBatch): Promise<SendOutcome | void>;
  /** (Re)subscribes to the bus; a previous subscription is dropped. */
  subscribe(handlers: SubscriptionHandlers): void;
  unsubscribe(): Promise<void>;
  /** Deletes what this node keeps and publishes its goodbye envelope. */
  goodbye(byeJson: string): Promise<void>;
  /** Deletes what an earlier run with this node id left. */
  start(): Promise<void>;
  fetchLast(topic: string): Promise<BrokerMessage | undefined>;
  fetchHeads(topic: string): Promise<Heads | undefined>;
  fetchRecent(topic: string, count: number): Promise<BrokerMessage[]>;
  /** Reads the presence snapshots of every live node (buses with snapshots). */
  loadLive?(directory: PeerDirectory, now: number): Promise<void>;
  /** Reads one node's presence snapshot (buses with snapshots). */
  loadNode?(nodeId: string, directory: PeerDirectory): Promise<void>;
}
