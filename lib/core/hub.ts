/**
 * The node-local registry topic → subscribers. Delivers each broadcast to local subscribers at
 * once (one shared, lazily encoded {@link Broadcast}) and hands it to the broker for other nodes.
 * It also keeps each topic's recent history, so clients can resume from a cursor.
 *
 * @example
 * ```ts
 * const hub = new Hub({ broker: new MemoryBroker(), nodeId: "node-1" });
 * const off = hub.subscribe("status:acme", { id: "s1", deliver: (b) => console.log(b.payload) });
 * hub.broadcast("status:acme", "status", { state: "operational" });
 * off();
 * ```
 * @module
 */
import { fromBase64, toBase64 } from "./base64.ts";
import { Broadcast, type BroadcastInit, type Origin } from "./broadcast.ts";
import type { Broker, BrokerMessage } from "../cluster/broker.ts";
import type { TopicCursor } from "../resume/cursor.ts";
import { defaultLogger, describeError, type Logger } from "../log.ts";
import type { Clock } from "./time.ts";
import {
  DEFAULT_HISTORY,
  headCursor,
  type Heads,
  type HistoryLimits,
  replayFrom,
  TopicHistory,
} from "../resume/history.ts";
import type { Payload } from "./message.ts";

/** Anything that receives the broadcasts of a topic: a channel instance, in practice. */
export interface Subscriber {
  /** Unique per subscriber; broadcast-from skips the subscriber with the origin's `exceptId`. */
  readonly id: string;
  deliver(broadcast: Broadcast): void;
}

/** How a {@link Hub.broadcast} is sent. */
export interface BroadcastOptions {
  /** Skip this subscriber (broadcast-from: the sending channel instance). */
  exceptId?: string;
  /** Raw bytes: a binary broadcast, `payload` being the JSON metadata beside them. */
  binary?: Uint8Array;
}

const _NO_OPTIONS: BroadcastOptions = Object.freeze({});

/** Events that describe presence rather than content; they are neither kept nor numbered. */
const _EPHEMERAL = new Set(["presence_diff", "presence_state"]);

/** How many topics keep their history in memory before the least recently used is dropped. */
const _TOPICS_KEPT = 10_000;

interface _Topic {
  last?: Broadcast;
  history: TopicHistory;
}

/** Options of {@link Hub}. */
export interface HubOptions {
  /** Carries broadcasts to the other nodes (the memory broker carries nothing). */
  broker: Broker;
  nodeId: string;
  /** Each topic's resume window (default {@link DEFAULT_HISTORY}). */
  history?: HistoryLimits;
  clock?: Clock;
  /** Where subscriber failures are reported (default: {@link defaultLogger}). */
  log?: Logger;
}

/** The node's topic registry and history: local delivery at once, the broker for the rest. */
export class Hub {
  readonly #subscribers = new Map<string, Set<Subscriber>>();
  readonly #topics = new Map<string, _Topic>();
  /** This run's last sequence per topic; never evicted, or a sequence would restart. */
  readonly #sequences = new Map<string, number>();
  /** This node run's stream id: sequences restart at 1 with every run. */
  readonly streamId: string;
  readonly #limits: HistoryLimits;
  #onError: (err: unknown) => void;
  /** Broadcasts handed to local subscribers (from this node or others), and deliveries made. */
  readonly counts = { broadcasts: 0, deliveries: 0 };

  readonly broker: Broker;
  readonly nodeId: string;
  readonly clock: Clock;

  constructor(options: HubOptions) {
    this.broker = options.broker;
    this.nodeId = options.nodeId;
    this.clock = options.clock ?? Date;
    this.#limits = options.history ?? DEFAULT_HISTORY;
    const log = options.log ?? defaultLogger;
    this.#onError = (err) => log.error("a subscriber failed", { error: describeError(err) });
    const { broker, nodeId } = options;
    this.streamId = `${nodeId}~${Math.floor(Math.random() * 36 ** 6).toString(36)}`;
    broker.onMessage((msg) => this.#receive(msg));
  }

  /** Adds a subscriber to a topic; returns the function that removes it. */
  subscribe(topic: string, subscriber: Subscriber): () => void {
    this.add(topic, subscriber);
    return () => this.remove(topic, subscriber);
  }

  /** Adds a subscriber to a topic (no closure kept: for the many idle subscribers). */
  add(topic: string, subscriber: Subscriber): void {
    let set = this.#subscribers.get(topic);
    if (!set) this.#subscribers.set(topic, set = new Set());
    set.add(subscriber);
  }

  /** Removes a subscriber from a topic; forgets the topic when it was the last. */
  remove(topic: string, subscriber: Subscriber): void {
    const current = this.#subscribers.get(topic);
    if (!current) return;
    current.delete(subscriber);
    if (current.size === 0) this.#subscribers.delete(topic);
  }

  /** Number of local subscribers of a topic. */
  subscriberCount(topic: string): number {
    return this.#subscribers.get(topic)?.size ?? 0;
  }

  /** Number of topics with at least one local subscriber. */
  get topicCount(): number {
    return this.#subscribers.size;
  }

  /**
   * Publishes to every subscriber of the topic on every node. `exceptId` makes it a
   * broadcast-from: that one subscriber is skipped; `binary` makes it a binary broadcast.
   */
  broadcast(
    topic: string,
    event: string,
    payload: Payload,
    options: BroadcastOptions = _NO_OPTIONS,
  ): Broadcast {
    const { exceptId, binary } = options;
    const origin: Origin = exceptId === undefined
      ? { nodeId: this.nodeId }
      : { nodeId: this.nodeId, exceptId };
    const ephemeral = _EPHEMERAL.has(event);
    const seq = ephemeral ? 0 : (this.#sequences.get(topic) ?? 0) + 1;
    if (!ephemeral) this.#sequences.set(topic, seq);
    const b = new Broadcast({
      topic,
      event,
      payload,
      binary,
      origin,
      stream: ephemeral ? "" : this.streamId,
      seq,
      at: this.clock.now(),
    });
    this.#keep(b);
    this.#deliver(b);
    const msg: BrokerMessage = { topic, event, payload, origin, stream: b.stream, seq, at: b.at };
    if (binary !== undefined) msg.binary = toBase64(binary);
    this.broker.publish(msg);
    return b;
  }

  /** Delivers to this node's subscribers only (nothing goes to the broker). */
  deliverLocal(topic: string, event: string, payload: Payload): void {
    this.#deliver(new Broadcast({ topic, event, payload, origin: { nodeId: this.nodeId } }));
  }

  /** The last non-presence message of a topic, if this node holds it. */
  last(topic: string): Broadcast | undefined {
    return this.#topics.get(topic)?.last;
  }

  /**
   * The last non-presence message of a topic: this node's copy, or else the broker's (shared
   * by all nodes, so a node that started after the publish still knows it).
   */
  async fetchLast(topic: string): Promise<Broadcast | undefined> {
    const local = this.last(topic);
    if (local) return local;
    const msg = await this.broker.fetchLast(topic).catch(() => undefined);
    if (!msg || this.last(topic)) return this.last(topic);
    const b = _fromMessage(msg);
    this.#topic(topic).last = b;
    return b;
  }

  /** The position of a client that starts following `topic` now. */
  head(topic: string): TopicCursor {
    return headCursor(
      this.#topics.get(topic)?.history.heads(this.clock.now()) ?? new Map(),
      this.clock.now(),
    );
  }

  /**
   * What a client at `cursor` missed on `topic`, from the broker's shared history when there is
   * one (so any node can serve it), else from this node's window. `complete` is false when part
   * of it has left the window.
   */
  async replay(
    topic: string,
    cursor: TopicCursor,
  ): Promise<{ messages: Broadcast[]; complete: boolean; heads: Heads }> {
    const shared = await this.broker.fetchHistory(topic).catch(() => undefined);
    if (shared) {
      const { messages, complete } = replayFrom(shared.messages, shared.heads, cursor);
      return { messages: messages.map(_fromMessage), complete, heads: shared.heads };
    }
    const history = this.#topics.get(topic)?.history;
    const now = this.clock.now();
    const heads: Heads = history?.heads(now) ?? new Map();
    return { ...replayFrom(history?.entries(now) ?? [], heads, cursor), heads };
  }

  #receive(msg: BrokerMessage): void {
    if (msg.origin.nodeId === this.nodeId) return;
    const b = _fromMessage(msg);
    this.#keep(b);
    this.#deliver(b);
  }

  #deliver(b: Broadcast): void {
    this.counts.broadcasts++;
    const set = this.#subscribers.get(b.topic);
    if (!set) return;
    this.counts.deliveries += set.size;
    // Instance ids are unique per node only: broadcast-from applies on the sending node.
    const except = b.origin.nodeId === this.nodeId ? b.origin.exceptId : undefined;
    for (const sub of set) {
      if (sub.id === except) continue;
      try {
        sub.deliver(b);
      } catch (err) {
        this.#onError(err);
      }
    }
    b.releaseEncodings();
  }

  #keep(b: Broadcast): void {
    if (b.seq === 0) return;
    const topic = this.#topic(b.topic);
    topic.last = b;
    topic.history.add(b);
  }

  /** Finds or creates the topic's entry and marks it most recently used. */
  #topic(name: string): _Topic {
    let entry = this.#topics.get(name);
    if (entry) this.#topics.delete(name);
    else entry = { history: new TopicHistory(this.#limits) };
    this.#topics.set(name, entry);
    if (this.#topics.size > _TOPICS_KEPT) this.#topics.delete(this.#topics.keys().next().value!);
    return entry;
  }
}

function _fromMessage(msg: BrokerMessage): Broadcast {
  if (msg.binary === undefined) return new Broadcast(msg as BroadcastInit);
  return new Broadcast({ ...msg, binary: fromBase64(msg.binary) });
}
