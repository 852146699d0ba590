/**
 * What makes several nodes act as one, whatever carries their envelopes: messages batched per
 * tick into envelopes under the bus' size limit, numbered per node run and caught up after an
 * outage (`catch_up.ts`), presence replicated with a node directory of heartbeats, TTLs and
 * goodbyes (`peers.ts`), and the subscription checked through the node's own envelopes
 * (`subscription.ts`). The
 * Redis broker (`redis/broker.ts`) and the BroadcastChannel broker (`broadcast_channel.ts`)
 * are this over two {@link ClusterBus}s.
 *
 * @example
 * ```ts
 * const broker = new ReplicatingBroker(bus, { nodeId: "a", pingMs: 10_000, nodeTtlMs: 25_000 });
 * ```
 * @module
 */
import {
  type Broker,
  type BrokerLoss,
  type BrokerMessage,
  type BrokerState,
  MessageTooLargeError,
  newRunId,
  type PresenceReplicaHandlers,
  type PresenceState,
} from "../core/broker.ts";
import { DEFAULT_HISTORY, type Heads, type HistoryLimits } from "../resume/history.ts";
import { defaultLogger, type Logger } from "../log.ts";
import { type Clock, plainTimers, type Timers } from "../core/time.ts";
import {
  bytesOver,
  type EnvelopeHeader,
  envelopeJson,
  packByBytes,
  parseEnvelope,
} from "./envelope.ts";
import { InboundRuns, SentLog } from "./catch_up.ts";
import { PeerDirectory } from "./peers.ts";
import type { ClusterBus } from "./bus.ts";
import { Outbox, type OutboxBatch, RETRY_LIMIT } from "./outbox.ts";
import { SubscriptionHealth } from "./subscription.ts";

/** Options of {@link ReplicatingBroker}. */
export interface ReplicationOptions {
  nodeId: string;
  /** An idle node's heartbeat interval. */
  pingMs: number;
  /** A node not heard from for this long is dead. */
  nodeTtlMs: number;
  /** Directory refresh interval (default 3 heartbeats). */
  directoryMs?: number;
  /** Own envelope not back this long after it was sent: resubscribe (default 3 000 ms). */
  echoTimeoutMs?: number;
  /** Largest message the bus carries, encoded; larger ones are refused. */
  maxMessageBytes: number;
  /** Envelopes are packed up to this many characters. */
  envelopeBytes: number;
  clock?: Clock;
  timers?: Timers;
  log?: Logger;
  /** The history window (bounds what is kept for re-sends). */
  history?: HistoryLimits;
}

/** How long a silent node run is remembered for catch-up (an hour). */
const _RUN_MEMORY_MS = 3_600_000;

/** A {@link Broker} that replicates over a {@link ClusterBus}: one batch per tick. */
export class ReplicatingBroker implements Broker {
  readonly #bus: ClusterBus;
  readonly #nodeId: string;
  /** Distinguishes this run of the node from an earlier run with the same node id. */
  /** This node run's id (the `e` of its envelopes); the hub numbers its streams in it. */
  readonly runId: string = newRunId();
  readonly #pingMs: number;
  readonly #directoryMs: number;
  readonly #envelopeBytes: number;
  readonly maxMessageBytes: number;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #peers: PeerDirectory;
  readonly #sent: SentLog;
  readonly #inbound: InboundRuns;
  #onMessage: (msg: BrokerMessage) => void = () => {};
  #onLoss: (loss: BrokerLoss) => void = () => {};
  #presence?: PresenceReplicaHandlers;

  readonly #outbox = new Outbox();
  #flushScheduled = false;
  #flushing = false;
  #seq = 0;
  /** The highest message index put into an envelope so far (sent or not). */
  #sentHigh = 0;
  #lastSentAt = 0;
  #lastDirectoryAt = 0;

  readonly #health: SubscriptionHealth;
  /** The last send failed: the bus (or the store behind it) cannot be reached. */
  #sendFailing = false;
  #continuity = 0;
  #lagMs = 0;
  #stopTicker?: () => void;
  #lastError?: string;
  #closed = false;

  constructor(bus: ClusterBus, options: ReplicationOptions) {
    this.#bus = bus;
    this.#nodeId = options.nodeId;
    this.#pingMs = options.pingMs;
    this.#directoryMs = options.directoryMs ?? options.pingMs * 3;
    this.maxMessageBytes = options.maxMessageBytes;
    this.#envelopeBytes = options.envelopeBytes;
    this.#clock = options.clock ?? Date;
    this.#log = options.log ?? defaultLogger;
    const history = options.history ?? DEFAULT_HISTORY;
    this.#peers = new PeerDirectory({ ttlMs: options.nodeTtlMs, clock: this.#clock });
    // Kept for re-sends after an outage: bounded like the history (count, bytes, age).
    this.#sent = new SentLog({
      count: Math.max(history.size, RETRY_LIMIT),
      bytes: Math.min(32 << 20, history.maxBytes ?? 16 << 20),
      maxAgeMs: history.maxAgeMs,
    }, this.#clock);
    this.#inbound = new InboundRuns({
      clock: this.#clock,
      deliver: (msg) => this.#deliver(msg),
      lost: (nodeId, count) => this.#lost(nodeId, count),
      request: (nodeId, runId, from) => {
        this.#outbox.request({ n: nodeId, e: runId, from });
        this.#scheduleFlush();
      },
    });
    bus.start().catch((err) => this.#fail(err));
    this.#health = new SubscriptionHealth({
      bus,
      clock: this.#clock,
      echoTimeoutMs: options.echoTimeoutMs ?? 3_000,
      receive: (raw) => this.#receive(raw),
      recovered: () => this.#recover().catch((err) => this.#fail(err)),
      // A failure says what broke; a stall keeps the error seen before it, if any.
      stalled: (reason, err) => err !== undefined ? this.#fail(err) : this.#lastError ??= reason,
    });
    this.#health.start();
    // Checked often enough that a heartbeat is at most a quarter period late.
    const checkMs = Math.min(1_000, this.#pingMs / 4);
    this.#stopTicker = (options.timers ?? plainTimers).every(checkMs, () => this.#tick());
  }

  publish(msg: BrokerMessage): void {
    if (this.#closed) return;
    const json = JSON.stringify(msg);
    const over = bytesOver(json, this.maxMessageBytes);
    if (over !== undefined) throw new MessageTooLargeError(over, this.maxMessageBytes);
    this.#outbox.messages.push({ index: this.#sent.add(json), msg, json });
    this.#scheduleFlush();
  }

  onMessage(handler: (msg: BrokerMessage) => void): void {
    this.#onMessage = handler;
  }

  onLoss(handler: (loss: BrokerLoss) => void): void {
    this.#onLoss = handler;
  }

  replicatePresence(topic: string, state: PresenceState): void {
    if (this.#closed) return;
    this.#outbox.presence.set(topic, state);
    this.#scheduleFlush();
  }

  onPresence(handlers: PresenceReplicaHandlers): void {
    this.#presence = handlers;
    this.#peers.presence = handlers;
  }

  fetchLast(topic: string): Promise<BrokerMessage | undefined> {
    return this.#bus.fetchLast(topic);
  }

  fetchHeads(topic: string): Promise<Heads | undefined> {
    return this.#bus.fetchHeads(topic);
  }

  fetchRecent(topic: string, count: number): Promise<BrokerMessage[]> {
    return this.#bus.fetchRecent(topic, count);
  }

  continuity(): number | undefined {
    return this.#connected() ? this.#continuity : undefined;
  }

  state(): BrokerState {
    const connected = this.#connected();
    return {
      kind: this.#bus.kind,
      connected,
      lagMs: this.#lagMs,
      pending: this.#outbox.messages.length,
      nodes: this.#peers.size + 1,
      ...(connected || !this.#lastError ? {} : { error: this.#lastError }),
    };
  }

  /** Messages that could not be handed to the bus and were dropped from the retry queue. */
  get dropped(): number {
    return this.#outbox.dropped;
  }

  /** Says goodbye (others drop this node's presences at once), then stops. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#stopTicker?.();
    // What is still queued (the last presence leaves, say) goes out before the goodbye.
    while (this.#flushing) await new Promise((r) => setTimeout(r, 5));
    await this.#flush();
    this.#closed = true;
    this.#health.close();
    await this.#bus.unsubscribe().catch(() => {});
    const bye = envelopeJson({
      v: 1,
      n: this.#nodeId,
      e: this.runId,
      s: ++this.#seq,
      t: 0,
      h: this.#sentHigh,
      bye: true,
    });
    await this.#bus.goodbye(bye).catch(() => {});
  }

  #connected(): boolean {
    return !this.#sendFailing && this.#health.healthy;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#closed) return;
    this.#flushScheduled = true;
    // Everything published in this tick goes out in one request.
    setTimeout(() => {
      this.#flushScheduled = false;
      this.#flush();
    }, 0);
  }

  /** Sends the batch; one request in flight at a time keeps publish order per node. */
  async #flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (!this.#closed && this.#outbox.hasWork) {
        const batch = this.#outbox.take();
        try {
          await this.#send(batch);
          if (this.#sendFailing) this.#backAfterOutage();
          this.#sendFailing = false;
        } catch (err) {
          this.#fail(err);
          this.#sendFailing = true;
          const droppedUpTo = this.#outbox.requeue(batch);
          if (droppedUpTo !== undefined) this.#sentHigh = Math.max(this.#sentHigh, droppedUpTo);
          break;
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  async #send(batch: OutboxBatch): Promise<void> {
    const now = this.#clock.now();
    const { messages, presence } = batch;
    const envelopes: string[] = [];
    const header = (extra: Partial<EnvelopeHeader>): EnvelopeHeader => ({
      v: 1,
      n: this.#nodeId,
      e: this.runId,
      s: ++this.#seq,
      t: now,
      h: this.#sentHigh,
      ...extra,
    });
    if (batch.sync) envelopes.push(envelopeJson(header({ y: true })));
    let presenceSeq = 0;
    if (presence.size) {
      const entries: string[] = [];
      for (const [topic, state] of presence) {
        const entry = `${JSON.stringify(topic)}:${JSON.stringify(state)}`;
        // One topic's state is one envelope: one past the bus' limit would break the bus for
        // everyone, so it stays on this node (and says so).
        if (bytesOver(entry, this.maxMessageBytes) !== undefined) {
          this.#log.error("a topic's presence is too large to replicate; other nodes miss it", {
            topic,
            limit: this.maxMessageBytes,
          });
          continue;
        }
        entries.push(entry);
      }
      for (const group of packByBytes(entries, this.#envelopeBytes)) {
        envelopes.push(envelopeJson(header(batch.announce ? { a: true } : {}), { p: group }));
      }
      // The snapshot is as new as the last envelope that carries it.
      presenceSeq = this.#seq;
    }
    let index = messages[0]?.index ?? 0;
    for (const group of packByBytes(messages.map((q) => q.json), this.#envelopeBytes)) {
      // Each envelope's `h` is its own last index: a receiver is behind only if it lacks one.
      this.#sentHigh = Math.max(this.#sentHigh, index + group.length - 1);
      envelopes.push(envelopeJson(header({ i: index }), { m: group }));
      index += group.length;
    }
    if (batch.resendFrom !== undefined) {
      const { first, messages: kept } = this.#sent.from(batch.resendFrom);
      // Only what was really sent: what is still queued goes out in order by itself.
      const upTo = Math.max(0, Math.min(kept.length, this.#sentHigh - first + 1));
      let at = first;
      const groups = packByBytes(kept.slice(0, upTo), this.#envelopeBytes);
      if (groups.length === 0) groups.push([]);
      for (const group of groups) {
        envelopes.push(envelopeJson(header({ i: at, r: true }), { m: group }));
        at += group.length;
      }
    }
    if (batch.requests.length) envelopes.push(envelopeJson(header({ q: batch.requests })));
    if (envelopes.length === 0) envelopes.push(envelopeJson(header({})));
    const outcome = await this.#bus.send({
      runId: this.runId,
      messages,
      presence,
      presenceSeq,
      envelopes,
      directory: batch.directory,
    });
    this.#lastSentAt = now;
    if (batch.directory) this.#lastDirectoryAt = now;
    this.#health.sent(this.#seq);
    if (outcome?.lostKeys) this.#keysLost();
  }

  /**
   * Sending works again after failing: the others may have dropped this node meanwhile (TTL),
   * and this node may have missed their envelopes, so its whole presence goes out announced and
   * what it learnt from the shared state is trusted no more.
   */
  #backAfterOutage(): void {
    this.#continuity++;
    this.#outbox.announce = true;
    this.#presence?.resync();
    this.#inbound.askAll();
    this.#scheduleFlush();
  }

  /** The store lost this node's keys (restarted empty): write them again. */
  #keysLost(): void {
    this.#log.warn("the shared store lost this node's keys (restarted empty?): writing them again");
    this.#outbox.announce = true;
    this.#outbox.directoryDue = true;
    this.#presence?.resync();
    this.#scheduleFlush();
  }

  /**
   * (Re)subscribed: this node may have missed anything before, so it asks every node it knows
   * for what follows its position, reads (or asks for) the other nodes' presence, and sends all
   * of its own, announced, since the others may have dropped it meanwhile.
   */
  async #recover(): Promise<void> {
    this.#lastError = undefined;
    this.#continuity++;
    this.#outbox.announce = true;
    this.#outbox.sync = !this.#bus.snapshots;
    this.#presence?.resync();
    this.#outbox.heartbeatDue = true;
    this.#outbox.directoryDue = true;
    this.#inbound.askAll();
    this.#scheduleFlush();
    await this.#bus.loadLive?.(this.#peers, this.#clock.now());
  }

  #receive(raw: string): void {
    const envelope = parseEnvelope(raw);
    if (!envelope) return;
    const now = this.#clock.now();
    if (envelope.n === this.#nodeId) {
      if (envelope.e === this.runId) {
        this.#lagMs = Math.max(0, now - envelope.t);
        this.#health.echoed(envelope.s);
      }
      return;
    }
    if (envelope.t) this.#lagMs = Math.max(0, now - envelope.t);
    const isNew = this.#peers.heard(envelope);
    // A node we did not know (new, or dropped during an outage): read its whole state.
    if (isNew && !envelope.a && this.#bus.loadNode) {
      this.#bus.loadNode(envelope.n, this.#peers).catch((err) => this.#fail(err));
    }
    this.#inbound.take(envelope);
    if (envelope.y) {
      // A node (re)joined without snapshots to read: it needs everyone's whole presence.
      this.#outbox.announce = true;
      this.#presence?.resync();
      this.#scheduleFlush();
    }
    for (const q of envelope.q ?? []) {
      if (q.n !== this.#nodeId || q.e !== this.runId || q.from > this.#sentHigh) continue;
      this.#outbox.resend(q.from);
      this.#scheduleFlush();
    }
  }

  // The hub contains (logs and counts) what its handlers throw: nothing reaches these loops.
  #deliver(msg: BrokerMessage): void {
    this.#onMessage(msg);
  }

  #lost(nodeId: string, count: number): void {
    this.#continuity++;
    this.#log.warn("messages from another node were lost", { node: nodeId, count });
    this.#onLoss({ nodeId, count });
  }

  #tick(): void {
    const now = this.#clock.now();
    if (now - this.#lastSentAt >= this.#pingMs) this.#outbox.heartbeatDue = true;
    if (now - this.#lastDirectoryAt >= this.#directoryMs) this.#outbox.directoryDue = true;
    if (this.#outbox.hasWork) this.#scheduleFlush();
    this.#health.check(now);
    // A node not heard from (its heartbeat envelopes) within the TTL is dead.
    this.#peers.expire();
    this.#inbound.tick();
    this.#inbound.forgetSilent(_RUN_MEMORY_MS);
  }

  #fail(err: unknown): void {
    this.#lastError = err instanceof Error ? err.message : String(err);
  }
}
