/**
 * The node-local registry topic → subscribers. Delivers each broadcast to local subscribers at
 * once (one shared, lazily encoded {@link Broadcast}) and hands it to the broker for other nodes.
 *
 * @example
 * ```ts
 * const hub = new Hub(new MemoryBroker(), "node-1");
 * const off = hub.subscribe("status:acme", { id: "s1", deliver: (b) => console.log(b.v2) });
 * hub.broadcast("status:acme", "status", { state: "operational" });
 * off();
 * ```
 * @module
 */
import { Broadcast, type Origin } from "./broadcast.ts";
import type { Broker, BrokerMessage } from "./broker.ts";
import type { Payload } from "./message.ts";

/** Anything that receives the broadcasts of a topic: a channel instance, in practice. */
export interface Subscriber {
  /** Unique per subscriber; broadcast-from skips the subscriber with the origin's `exceptId`. */
  readonly id: string;
  deliver(broadcast: Broadcast): void;
}

/** Events that describe presence rather than content; they are neither retained nor positioned. */
const _EPHEMERAL = new Set(["presence_diff", "presence_state"]);

/** How many topics keep their last message and position in memory before the oldest is dropped. */
const _RETAINED_TOPICS = 10_000;

/** See the module documentation. */
export class Hub {
  readonly #subscribers = new Map<string, Set<Subscriber>>();
  readonly #retained = new Map<string, { last?: Broadcast; position: number }>();
  #onError: (err: unknown) => void = (err) => console.error("subscriber failed:", err);

  constructor(readonly broker: Broker, readonly nodeId: string) {
    broker.onMessage((msg) => this.#receive(msg));
  }

  /** Adds a subscriber to a topic; returns the function that removes it. */
  subscribe(topic: string, subscriber: Subscriber): () => void {
    let set = this.#subscribers.get(topic);
    if (!set) this.#subscribers.set(topic, set = new Set());
    set.add(subscriber);
    return () => {
      const current = this.#subscribers.get(topic);
      if (!current) return;
      current.delete(subscriber);
      if (current.size === 0) this.#subscribers.delete(topic);
    };
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
   * broadcast-from: that one subscriber is skipped.
   */
  broadcast(topic: string, event: string, payload: Payload, exceptId?: string): Broadcast {
    const origin: Origin = exceptId === undefined
      ? { nodeId: this.nodeId }
      : { nodeId: this.nodeId, exceptId };
    const position = _EPHEMERAL.has(event) ? 0 : this.#nextPosition(topic);
    const b = new Broadcast(topic, event, payload, origin, position);
    this.#retain(b);
    this.#deliver(b);
    this.broker.publish({ topic, event, payload, origin, position, at: b.at });
    return b;
  }

  /** Delivers to this node's subscribers only (nothing goes to the broker). */
  deliverLocal(topic: string, event: string, payload: Payload): void {
    this.#deliver(new Broadcast(topic, event, payload, { nodeId: this.nodeId }));
  }

  /** The last non-presence message of a topic, if this node holds it. */
  last(topic: string): Broadcast | undefined {
    return this.#retained.get(topic)?.last;
  }

  /**
   * The last non-presence message of a topic: this node's copy, or else the broker's (shared
   * by all nodes, so a node that started after the publish still knows it).
   */
  async fetchLast(topic: string): Promise<Broadcast | undefined> {
    const local = this.last(topic);
    if (local) return local;
    const msg = await this.broker.fetchLast(topic).catch(() => undefined);
    if (!msg) return undefined;
    const b = new Broadcast(msg.topic, msg.event, msg.payload, msg.origin, msg.position, msg.at);
    if (!this.last(topic)) this.#retain(b);
    return this.last(topic);
  }

  /** Forgets the retained messages (kept positions), e.g. after missing messages while the broker was down. */
  forgetRetained(): void {
    for (const entry of this.#retained.values()) entry.last = undefined;
  }

  /** Replaces the handler for errors thrown by subscribers (default: console.error). */
  set onError(handler: (err: unknown) => void) {
    this.#onError = handler;
  }

  #receive(msg: BrokerMessage): void {
    if (msg.origin.nodeId === this.nodeId) return;
    const b = new Broadcast(msg.topic, msg.event, msg.payload, msg.origin, msg.position, msg.at);
    this.#retain(b);
    this.#deliver(b);
  }

  #deliver(b: Broadcast): void {
    const set = this.#subscribers.get(b.topic);
    if (!set) return;
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
  }

  #nextPosition(topic: string): number {
    const entry = this.#touch(topic);
    return ++entry.position;
  }

  #retain(b: Broadcast): void {
    if (_EPHEMERAL.has(b.event)) return;
    const entry = this.#touch(b.topic);
    entry.last = b;
    if (b.position > entry.position) entry.position = b.position;
  }

  /** Finds or creates the topic's entry and marks it most recently used. */
  #touch(topic: string): { last?: Broadcast; position: number } {
    let entry = this.#retained.get(topic);
    if (entry) this.#retained.delete(topic);
    else entry = { position: 0 };
    this.#retained.set(topic, entry);
    if (this.#retained.size > _RETAINED_TOPICS) {
      this.#retained.delete(this.#retained.keys().next().value!);
    }
    return entry;
  }
}
