/**
 * The node-local registry topic → subscribers. Delivers each broadcast to local subscribers at
 * once (one shared, lazily encoded {@link Broadcast}) and hands it to the broker for other nodes.
 * What it keeps of each topic (last message, resume window, numbering) is its
 * {@link TopicStore}'s; replay merges that with the broker's shared copy.
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
import { type Broker, type BrokerMessage, MessageTooLargeError, newRunId } from "./broker.ts";
import type { TopicCursor } from "../resume/cursor.ts";
import { defaultLogger, describeError, type Logger } from "../log.ts";
import type { Clock } from "./time.ts";
import { headCursor, type Heads, type HistoryLimits, replayFrom } from "../resume/history.ts";
import { TOPICS_KEPT, TopicStore } from "./topic_store.ts";
import type { Payload } from "./message.ts";
import type { LocalOccupancy } from "./occupancy.ts";
import { INTERNAL_TOPIC_PREFIX } from "./topic.ts";
import { chainDelta } from "./delta.ts";

/** Anything that receives the broadcasts of a topic: a channel instance, in practice. */
export interface Subscriber {
  /** Unique per subscriber; broadcast-from skips the subscriber with the origin's `exceptId`. */
  readonly id: string;
  /** The user it serves: counted in the topic's occupancy (none: an internal subscriber). */
  readonly userId?: string;
  deliver(broadcast: Broadcast): void;
  /**
   * Messages of this topic from another node were lost (a gap this node could not fill): the
   * subscriber must start over from the current state (a `reset` to its client).
   */
  lost?(): void;
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

/** Bytes of a message's encoding besides its payload, topic and event (origin, stream, …). */
const _ENVELOPE_OVERHEAD = 256;

/** Options of {@link Hub}. */
export interface HubOptions {
  /** Carries broadcasts to the other nodes (the memory broker carries nothing). */
  broker: Broker;
  nodeId: string;
  /** Each topic's resume window and the byte budget (default: `DEFAULT_HISTORY`). */
  history?: HistoryLimits;
  clock?: Clock;
  /** Where subscriber failures are reported (default: {@link defaultLogger}). */
  log?: Logger;
  /** Counts each topic's subscribers and users (occupancy hook; default: not counted). */
  occupancy?: LocalOccupancy;
  /**
   * Told of a failure kept from spreading (default: logged): a subscriber's in a fan-out (the
   * others still get the message), or the handling of a message or loss from the broker (a
   * peer's message the hub could not take; the broker goes on with the next one).
   */
  onError?: (err: unknown, where: HubFailure) => void;
}

/** Where a failure the hub contained happened (see {@link HubOptions.onError}). */
export type HubFailure = "fan-out" | "peer message";

/** The node's topic registry and history: local delivery at once, the broker for the rest. */
export class Hub {
  readonly #subscribers = new Map<string, Set<Subscriber>>();
  /** The one subscriber of each internal topic (see {@link INTERNAL_TOPIC_PREFIX}). */
  readonly #internal = new Map<string, Subscriber>();
  readonly #store: TopicStore;
  /** This node run's id (the broker's, when it has one): sequences restart at 1 with every run. */
  readonly runId: string;
  /**
   * Topics whose local copy holds at least what the broker's shared state does, with the
   * broker's continuity at the time: while it holds, reads need not ask the broker again.
   */
  readonly #covered = new Map<string, number>();
  /** Reads of a topic's shared last message in flight: concurrent polls share one. */
  readonly #lastReads = new Map<string, Promise<Broadcast | undefined>>();
  #onError: (err: unknown, where: HubFailure) => void;
  /** Told of every message this node numbers (see {@link persistWith}). */
  #persist?: (b: Broadcast) => void;
  /** Broadcasts handed to local subscribers (from this node or others), and deliveries made. */
  readonly counts = { broadcasts: 0, deliveries: 0 };

  readonly broker: Broker;
  readonly nodeId: string;
  readonly clock: Clock;
  readonly occupancy?: LocalOccupancy;

  constructor(options: HubOptions) {
    this.broker = options.broker;
    this.occupancy = options.occupancy;
    this.nodeId = options.nodeId;
    this.clock = options.clock ?? Date;
    const log = options.log ?? defaultLogger;
    this.#onError = options.onError ??
      ((err, where) => log.error(`${where} failed`, { error: describeError(err) }));
    const { broker, nodeId } = options;
    this.runId = broker.runId ?? newRunId();
    this.#store = new TopicStore({
      stream: `${nodeId}~${this.runId}`,
      history: options.history,
      // Its local copy is gone: it no longer covers the shared one.
      onForget: (topic) => this.#covered.delete(topic),
    });
    // What comes from the broker is handled here, whatever it holds: a failure is contained and
    // reported by the hub, not thrown into the broker's receive loop.
    broker.onMessage((msg) => this.#contained(() => this.#receive(msg)));
    broker.onLoss(() => this.#contained(() => this.#lostEverywhere()));
  }

  /**
   * Hands every message this node numbers to `persist` once kept (a Cloudflare node object
   * writes them to its storage, so a wake finds them: {@link restore}).
   */
  persistWith(persist: (b: Broadcast) => void): void {
    this.#persist = persist;
  }

  /**
   * Takes back messages this node kept before its memory was lost (oldest first): they become
   * the topics' last messages and resume windows again, and each topic goes on numbering in
   * the stream of its newest one. Nothing is delivered.
   */
  restore(messages: Iterable<Broadcast>): void {
    for (const b of messages) this.#store.restore(b);
  }

  /** Adds a subscriber to a topic; returns the function that removes it. */
  subscribe(topic: string, subscriber: Subscriber): () => void {
    this.add(topic, subscriber);
    return () => this.remove(topic, subscriber);
  }

  /** Adds a subscriber to a topic (no closure kept: for the many idle subscribers). */
  add(topic: string, subscriber: Subscriber): void {
    if (topic.startsWith(INTERNAL_TOPIC_PREFIX)) {
      this.#internal.set(topic, subscriber);
      return;
    }
    let set = this.#subscribers.get(topic);
    if (!set) this.#subscribers.set(topic, set = new Set());
    if (set.has(subscriber)) return;
    set.add(subscriber);
    if (subscriber.userId !== undefined) this.occupancy?.joined(topic, subscriber.userId);
  }

  /** Removes a subscriber from a topic; forgets the topic when it was the last. */
  remove(topic: string, subscriber: Subscriber): void {
    if (this.#internal.get(topic) === subscriber) this.#internal.delete(topic);
    const current = this.#subscribers.get(topic);
    if (!current?.delete(subscriber)) return;
    if (current.size === 0) this.#subscribers.delete(topic);
    if (subscriber.userId !== undefined) this.occupancy?.left(topic, subscriber.userId);
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
   *
   * Messages are numbered 1, 2, 3… per topic in the topic's stream. A topic this node forgot
   * (least recently used, past the topic or byte limits) starts over in a new stream
   * (`<nodeId>~<runId><n>`): a client holding a number of the old stream never sees it reused.
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
    const internal = topic.startsWith(INTERNAL_TOPIC_PREFIX);
    const entry = internal || _EPHEMERAL.has(event) ? undefined : this.#store.touch(topic);
    const stream = entry?.stream ?? "";
    const seq = entry ? entry.seq + 1 : 0;
    const at = this.clock.now();
    const msg: BrokerMessage = { topic, event, payload, origin, stream, seq, at };
    if (binary !== undefined) msg.binary = toBase64(binary);
    // First, as it may refuse the message (too large for the bus): then nothing happened.
    this.broker.publish(msg);
    if (entry) entry.seq = seq;
    const b = new Broadcast({ topic, event, payload, binary, origin, stream, seq, at });
    this.#store.keep(b, entry);
    if (entry) {
      entry.deltaBase = chainDelta(entry.deltaBase, b); // delta hook
      this.#persist?.(b);
    }
    this.#deliver(b);
    return b;
  }

  /**
   * Throws {@link MessageTooLargeError} when the message is clearly too large for the broker's
   * bus (checked before a batch is accepted; `broadcast` checks each message exactly).
   */
  checkSize(topic: string, event: string, payload: Payload): void {
    const limit = this.broker.maxMessageBytes;
    if (limit === undefined) return;
    const text = JSON.stringify(payload) + topic + event;
    const bytes = new TextEncoder().encode(text).byteLength + _ENVELOPE_OVERHEAD;
    if (bytes > limit) throw new MessageTooLargeError(bytes, limit);
  }

  /** Delivers to this node's subscribers only (nothing goes to the broker). */
  deliverLocal(topic: string, event: string, payload: Payload): void {
    this.#deliver(new Broadcast({ topic, event, payload, origin: { nodeId: this.nodeId } }));
  }

  /** The last non-presence message of a topic, if this node holds it. */
  last(topic: string): Broadcast | undefined {
    return this.#store.last(topic);
  }

  /** Bytes the node keeps for replay and as topics' last messages, for metrics and tests. */
  get keptBytes(): { history: number; last: number; topics: number } {
    return this.#store.keptBytes;
  }

  /**
   * The last non-presence message of a topic: this node's copy, or else the broker's (shared
   * by all nodes, so a node that started after the publish still knows it).
   */
  fetchLast(topic: string): Promise<Broadcast | undefined> {
    const local = this.last(topic);
    if (local || this.#isCovered(topic)) return Promise.resolve(local);
    let read = this.#lastReads.get(topic);
    if (!read) {
      read = this.#readLast(topic).finally(() => this.#lastReads.delete(topic));
      this.#lastReads.set(topic, read);
    }
    return read;
  }

  async #readLast(topic: string): Promise<Broadcast | undefined> {
    const continuity = this.broker.continuity();
    const msg = await this.broker.fetchLast(topic).catch(() => null);
    if (msg === undefined && !this.last(topic)) {
      // Nothing shared either: until the bus is interrupted, this node hears of any new one.
      this.#cover(topic, continuity);
    }
    if (!msg || this.last(topic)) return this.last(topic);
    const b = _fromMessage(msg);
    this.#store.setLast(topic, b);
    return b;
  }

  /** The position of a client that starts following `topic` now. */
  head(topic: string): TopicCursor {
    return headCursor(
      this.#store.get(topic)?.history.heads(this.clock.now()) ?? new Map(),
      this.clock.now(),
    );
  }

  /**
   * What a client at `cursor` missed on `topic`: from this node's window when it holds all of
   * it, else with the newest entries of the broker's shared history (only as many as the shared
   * heads say are missing, so a resume costs what it missed). `complete` is false when part of
   * it has left the window. Both copies are merged: an empty or partial shared history (Redis
   * restarted empty) never passes for "nothing missed" while this node still holds the messages.
   * A forgotten topic's old stream is not in the heads: replayFrom calls that incomplete.
   */
  async replay(
    topic: string,
    cursor: TopicCursor,
  ): Promise<{ messages: Broadcast[]; complete: boolean; heads: Heads }> {
    const now = this.clock.now();
    const history = this.#store.get(topic)?.history;
    const local = history?.entries(now) ?? [];
    const localHeads: Heads = new Map(history?.heads(now) ?? []);
    const localOnly = replayFrom(local, localHeads, cursor);
    if (localOnly.complete && this.#isCovered(topic)) return { ...localOnly, heads: localHeads };
    const continuity = this.broker.continuity();
    const shared = await this.broker.fetchHeads(topic).catch(() => undefined);
    if (!shared) return { ...localOnly, heads: localHeads };
    const heads = _mergeHeads(localHeads, shared);
    const fromLocal = replayFrom(local, heads, cursor);
    if (fromLocal.complete) {
      if (_covers(localHeads, shared)) this.#cover(topic, continuity);
      return { ...fromLocal, heads };
    }
    const recent = await this.broker.fetchRecent(topic, _missed(heads, cursor)).catch(() => []);
    return { ...replayFrom(_mergeWindows(local, recent.map(_fromMessage)), heads, cursor), heads };
  }

  #receive(msg: BrokerMessage): void {
    if (msg.origin.nodeId === this.nodeId) return;
    let gap = false;
    if (msg.seq > 0) {
      const head = this.#store.get(msg.topic)?.history.headOf(msg.stream);
      // Numbers are gapless per stream: an old one was had already (a re-send), a jump is loss.
      if (head !== undefined && msg.seq <= head) return;
      gap = head !== undefined && msg.seq > head + 1;
    }
    const b = _fromMessage(msg);
    this.#store.keep(b);
    const entry = b.seq > 0 ? this.#store.get(b.topic) : undefined;
    if (entry) entry.deltaBase = chainDelta(entry.deltaBase, b); // delta hook
    if (gap) this.#lost(msg.topic);
    this.#deliver(b);
  }

  #contained(handle: () => void): void {
    try {
      handle();
    } catch (err) {
      this.#onError(err, "peer message");
    }
  }

  /** Messages from another node were lost, topics unknown: every subscriber starts over. */
  #lostEverywhere(): void {
    this.#covered.clear();
    for (const topic of [...this.#subscribers.keys()]) this.#lost(topic);
  }

  #lost(topic: string): void {
    this.#covered.delete(topic);
    for (const sub of this.#subscribers.get(topic) ?? []) {
      try {
        sub.lost?.();
      } catch (err) {
        this.#onError(err, "fan-out");
      }
    }
  }

  #isCovered(topic: string): boolean {
    const at = this.#covered.get(topic);
    return at !== undefined && at === this.broker.continuity();
  }

  #cover(topic: string, continuity: number | undefined): void {
    if (continuity === undefined || continuity !== this.broker.continuity()) return;
    this.#covered.delete(topic);
    this.#covered.set(topic, continuity);
    if (this.#covered.size > TOPICS_KEPT) this.#covered.delete(this.#covered.keys().next().value!);
  }

  #deliver(b: Broadcast): void {
    const internal = this.#internal.get(b.topic);
    if (internal) {
      // The cluster's own messages go to the other nodes' handler only, uncounted.
      if (b.origin.nodeId !== this.nodeId) internal.deliver(b);
      return;
    }
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
        this.#onError(err, "fan-out");
      }
    }
    b.releaseEncodings();
  }
}

function _fromMessage(msg: BrokerMessage): Broadcast {
  if (msg.binary === undefined) return new Broadcast(msg as BroadcastInit);
  return new Broadcast({ ...msg, binary: fromBase64(msg.binary) });
}

/** The newer head of each stream of two. */
function _mergeHeads(a: Heads, b: Heads): Heads {
  const heads: Heads = new Map(a);
  for (const [stream, head] of b) {
    const known = heads.get(stream);
    if (!known || head.seq > known.seq) heads.set(stream, head);
  }
  return heads;
}

/** True when `local` has every stream of `shared` at least as far. */
function _covers(local: Heads, shared: Heads): boolean {
  for (const [stream, head] of shared) {
    if ((local.get(stream)?.seq ?? 0) < head.seq) return false;
  }
  return true;
}

/** How many messages a client at `cursor` can have missed, by the heads (an upper bound). */
function _missed(heads: Heads, cursor: TopicCursor): number {
  let missed = 0;
  for (const [stream, head] of heads) {
    const seen = cursor.streams.get(stream);
    if (seen !== undefined) missed += Math.max(0, head.seq - seen);
    else if (head.at > cursor.since) missed += head.seq;
  }
  return missed;
}

/** Both windows as one, each message once, in time order (per stream in sequence order). */
function _mergeWindows(local: readonly Broadcast[], shared: readonly Broadcast[]): Broadcast[] {
  const byId = new Map<string, Broadcast>();
  for (const b of shared) byId.set(`${b.stream}*${b.seq}`, b);
  for (const b of local) byId.set(`${b.stream}*${b.seq}`, b);
  return [...byId.values()].sort((x, y) =>
    x.at - y.at || (x.stream === y.stream ? x.seq - y.seq : 0)
  );
}
