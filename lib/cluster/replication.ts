/**
 * What makes several nodes act as one, whatever carries their envelopes: messages batched per
 * tick into envelopes under the bus' size limit, numbered per node run and caught up after an
 * outage (`catch_up.ts`), presence replicated with a node directory of heartbeats, TTLs and
 * goodbyes (`nodes.ts`), and the subscription checked through the node's own envelopes. The
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
import { defaultLogger, describeError, type Logger } from "../log.ts";
import { type Clock, plainTimers, type Timers } from "../core/time.ts";
import {
  bytesOver,
  type CatchUpRequest,
  type EnvelopeHeader,
  envelopeJson,
  packByBytes,
  parseEnvelope,
} from "./envelope.ts";
import { InboundRuns, SentLog } from "./catch_up.ts";
import { PeerDirectory } from "./peers.ts";

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

/** The bus and, optionally, shared storage under a {@link ReplicatingBroker}. */
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

/** Messages kept for retry while the bus cannot be reached (beyond: re-sent on request). */
const _RETRY_LIMIT = 10_000;

/** How long a silent node run is remembered for catch-up (an hour). */
const _RUN_MEMORY_MS = 3_600_000;

interface _Batch {
  messages: QueuedMessage[];
  presence: Map<string, PresenceState>;
  requests: CatchUpRequest[];
  resendFrom?: number;
  directory: boolean;
  announce: boolean;
  sync: boolean;
}

/** A {@link Broker} that replicates over a {@link ClusterBus}: one batch per tick. */
export class ReplicatingBroker implements Broker {
  readonly #bus: ClusterBus;
  readonly #nodeId: string;
  /** Distinguishes this run of the node from an earlier run with the same node id. */
  /** This node run's id (the `e` of its envelopes); the hub numbers its streams in it. */
  readonly runId: string = newRunId();
  readonly #pingMs: number;
  readonly #directoryMs: number;
  readonly #echoTimeoutMs: number;
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

  #outbox: QueuedMessage[] = [];
  #presenceOut = new Map<string, PresenceState>();
  #requestsOut = new Map<string, CatchUpRequest>();
  /** The lowest index another node asked this run to re-send from. */
  #resendFrom?: number;
  #heartbeatDue = true;
  #directoryDue = true;
  /** The next envelope carries this node's full presence, announced (after an outage). */
  #announceNext = false;
  /** The next envelope asks the others for their presence (no snapshots to read). */
  #syncNext = false;
  #flushScheduled = false;
  #flushing = false;
  #seq = 0;
  /** The highest message index put into an envelope so far (sent or not). */
  #sentHigh = 0;
  #lastSentAt = 0;
  #lastDirectoryAt = 0;

  #subscribed = false;
  #subscribeStartedAt = 0;
  /** Our oldest envelope not yet heard back on the subscription, and the newest heard. */
  #awaitingEcho?: { seq: number; at: number };
  #echoedSeq = 0;
  /** The last send failed: the bus (or the store behind it) cannot be reached. */
  #sendFailing = false;
  #continuity = 0;
  #lagMs = 0;
  #attempt = 0;
  #resubscribeTimer?: ReturnType<typeof setTimeout>;
  #stopTicker?: () => void;
  #lastError?: string;
  #dropped = 0;
  #closed = false;

  constructor(bus: ClusterBus, options: ReplicationOptions) {
    this.#bus = bus;
    this.#nodeId = options.nodeId;
    this.#pingMs = options.pingMs;
    this.#directoryMs = options.directoryMs ?? options.pingMs * 3;
    this.#echoTimeoutMs = options.echoTimeoutMs ?? 3_000;
    this.maxMessageBytes = options.maxMessageBytes;
    this.#envelopeBytes = options.envelopeBytes;
    this.#clock = options.clock ?? Date;
    this.#log = options.log ?? defaultLogger;
    const history = options.history ?? DEFAULT_HISTORY;
    this.#peers = new PeerDirectory({ ttlMs: options.nodeTtlMs, clock: this.#clock });
    // Kept for re-sends after an outage: bounded like the history (count, bytes, age).
    this.#sent = new SentLog({
      count: Math.max(history.size, _RETRY_LIMIT),
      bytes: Math.min(32 << 20, history.maxBytes ?? 16 << 20),
      maxAgeMs: history.maxAgeMs,
    }, this.#clock);
    this.#inbound = new InboundRuns({
      clock: this.#clock,
      deliver: (msg) => this.#deliver(msg),
      lost: (nodeId, count) => this.#lost(nodeId, count),
      request: (nodeId, runId, from) => {
        const known = this.#requestsOut.get(nodeId);
        if (!known || known.e !== runId || from < known.from) {
          this.#requestsOut.set(nodeId, { n: nodeId, e: runId, from });
        }
        this.#scheduleFlush();
      },
    });
    bus.start().catch((err) => this.#fail(err));
    this.#subscribe();
    // Checked often enough that a heartbeat is at most a quarter period late.
    const checkMs = Math.min(1_000, this.#pingMs / 4);
    this.#stopTicker = (options.timers ?? plainTimers).every(checkMs, () => this.#tick());
  }

  publish(msg: BrokerMessage): void {
    if (this.#closed) return;
    const json = JSON.stringify(msg);
    const over = bytesOver(json, this.maxMessageBytes);
    if (over !== undefined) throw new MessageTooLargeError(over, this.maxMessageBytes);
    this.#outbox.push({ index: this.#sent.add(json), msg, json });
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
    this.#presenceOut.set(topic, state);
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
      pending: this.#outbox.length,
      nodes: this.#peers.size + 1,
      ...(connected || !this.#lastError ? {} : { error: this.#lastError }),
    };
  }

  /** Messages that could not be handed to the bus and were dropped from the retry queue. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Says goodbye (others drop this node's presences at once), then stops. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#stopTicker?.();
    // What is still queued (the last presence leaves, say) goes out before the goodbye.
    while (this.#flushing) await new Promise((r) => setTimeout(r, 5));
    await this.#flush();
    this.#closed = true;
    clearTimeout(this.#resubscribeTimer);
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
    if (!this.#subscribed || this.#sendFailing) return false;
    const echo = this.#awaitingEcho;
    return !echo || this.#clock.now() - echo.at <= this.#echoTimeoutMs;
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

  #hasWork(): boolean {
    return this.#outbox.length > 0 || this.#presenceOut.size > 0 || this.#heartbeatDue ||
      this.#directoryDue || this.#requestsOut.size > 0 || this.#resendFrom !== undefined;
  }

  /** Sends the batch; one request in flight at a time keeps publish order per node. */
  async #flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (!this.#closed && this.#hasWork()) {
        const batch: _Batch = {
          messages: this.#outbox,
          presence: this.#presenceOut,
          requests: [...this.#requestsOut.values()],
          resendFrom: this.#resendFrom,
          directory: this.#directoryDue,
          announce: this.#announceNext,
          sync: this.#syncNext,
        };
        this.#outbox = [];
        this.#presenceOut = new Map();
        this.#requestsOut = new Map();
        this.#resendFrom = undefined;
        this.#heartbeatDue = false;
        this.#directoryDue = false;
        this.#announceNext = false;
        this.#syncNext = false;
        try {
          await this.#send(batch);
          if (this.#sendFailing) this.#backAfterOutage();
          this.#sendFailing = false;
        } catch (err) {
          this.#fail(err);
          this.#sendFailing = true;
          this.#requeue(batch);
          break;
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  /** Puts a batch that the bus did not take back in front of the queue, for the next tick. */
  #requeue(batch: _Batch): void {
    this.#outbox = batch.messages.concat(this.#outbox);
    if (this.#outbox.length > _RETRY_LIMIT) {
      // The oldest leave the queue; they stay in the sent log, and the others ask for them.
      const dropped = this.#outbox.splice(0, this.#outbox.length - _RETRY_LIMIT);
      this.#dropped += dropped.length;
      this.#sentHigh = Math.max(this.#sentHigh, dropped.at(-1)!.index);
    }
    // Presence is state, not a stream: resend the newest state once the bus answers.
    for (const [topic, state] of batch.presence) {
      if (!this.#presenceOut.has(topic)) this.#presenceOut.set(topic, state);
    }
    // The clients' diffs went down with this batch: the receivers must derive them.
    this.#announceNext ||= batch.announce || batch.presence.size > 0;
    this.#syncNext ||= batch.sync;
    for (const q of batch.requests) {
      const known = this.#requestsOut.get(q.n);
      if (!known || q.from < known.from) this.#requestsOut.set(q.n, q);
    }
    if (batch.resendFrom !== undefined) {
      this.#resendFrom = Math.min(this.#resendFrom ?? Infinity, batch.resendFrom);
    }
    // The store may come back empty: register in the directory again at once.
    this.#directoryDue = true;
    this.#heartbeatDue = true;
  }

  async #send(batch: _Batch): Promise<void> {
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
    // The echo may have come back before the send resolved.
    if (this.#bus.echoes && this.#echoedSeq < this.#seq) {
      this.#awaitingEcho ??= { seq: this.#seq, at: this.#clock.now() };
    }
    if (outcome?.lostKeys) this.#keysLost();
  }

  /**
   * Sending works again after failing: the others may have dropped this node meanwhile (TTL),
   * and this node may have missed their envelopes, so its whole presence goes out announced and
   * what it learnt from the shared state is trusted no more.
   */
  #backAfterOutage(): void {
    this.#continuity++;
    this.#announceNext = true;
    this.#presence?.resync();
    this.#inbound.askAll();
    this.#scheduleFlush();
  }

  /** The store lost this node's keys (restarted empty): write them again. */
  #keysLost(): void {
    this.#log.warn("the shared store lost this node's keys (restarted empty?): writing them again");
    this.#announceNext = true;
    this.#directoryDue = true;
    this.#presence?.resync();
    this.#scheduleFlush();
  }

  #subscribe(): void {
    if (this.#closed) return;
    this.#subscribed = false;
    this.#awaitingEcho = undefined;
    this.#subscribeStartedAt = this.#clock.now();
    let current = true;
    this.#bus.subscribe({
      message: (raw) => {
        if (current) this.#receive(raw);
      },
      subscribed: () => {
        if (!current) return;
        this.#subscribed = true;
        this.#recover().catch((err) => this.#fail(err));
      },
      failed: (err) => {
        if (!current) return;
        this.#fail(err);
        this.#resubscribeLater();
      },
    });
    this.#dropSubscription = () => current = false;
  }

  #dropSubscription = () => {};

  #resubscribeLater(): void {
    if (this.#closed || this.#resubscribeTimer) return;
    this.#subscribed = false;
    this.#dropSubscription();
    // Jittered exponential backoff: a restart of the bus does not bring every node back at once.
    const base = Math.min(5_000, 250 * 2 ** this.#attempt++);
    this.#resubscribeTimer = setTimeout(() => {
      this.#resubscribeTimer = undefined;
      this.#subscribe();
    }, base * (0.5 + Math.random()));
  }

  /**
   * (Re)subscribed: this node may have missed anything before, so it asks every node it knows
   * for what follows its position, reads (or asks for) the other nodes' presence, and sends all
   * of its own, announced, since the others may have dropped it meanwhile.
   */
  async #recover(): Promise<void> {
    this.#attempt = 0;
    this.#lastError = undefined;
    this.#continuity++;
    this.#announceNext = true;
    this.#syncNext = !this.#bus.snapshots;
    this.#presence?.resync();
    this.#heartbeatDue = true;
    this.#directoryDue = true;
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
        this.#echoedSeq = Math.max(this.#echoedSeq, envelope.s);
        if (this.#awaitingEcho && envelope.s >= this.#awaitingEcho.seq) {
          this.#awaitingEcho = undefined;
        }
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
      this.#announceNext = true;
      this.#presence?.resync();
      this.#scheduleFlush();
    }
    for (const q of envelope.q ?? []) {
      if (q.n !== this.#nodeId || q.e !== this.runId || q.from > this.#sentHigh) continue;
      this.#resendFrom = Math.min(this.#resendFrom ?? Infinity, q.from);
      this.#scheduleFlush();
    }
  }

  #deliver(msg: BrokerMessage): void {
    try {
      this.#onMessage(msg);
    } catch (err) {
      this.#log.error("delivering a message from another node failed", {
        error: describeError(err),
      });
    }
  }

  #lost(nodeId: string, count: number): void {
    this.#continuity++;
    this.#log.warn("messages from another node were lost", { node: nodeId, count });
    try {
      this.#onLoss({ nodeId, count });
    } catch (err) {
      this.#log.error("handling lost messages failed", { error: describeError(err) });
    }
  }

  #tick(): void {
    const now = this.#clock.now();
    if (now - this.#lastSentAt >= this.#pingMs) this.#heartbeatDue = true;
    if (now - this.#lastDirectoryAt >= this.#directoryMs) this.#directoryDue = true;
    if (this.#hasWork()) this.#scheduleFlush();
    // A subscription stream that ended is not reported: our own envelopes tell us.
    const echo = this.#awaitingEcho;
    if (this.#subscribed && echo && now - echo.at > this.#echoTimeoutMs) {
      this.#lastError ??= `own envelope not back on the subscription after ${now - echo.at} ms`;
      this.#resubscribeLater();
    }
    // A subscription never confirmed (the stream ended before its first line) is tried again.
    if (!this.#subscribed && now - this.#subscribeStartedAt > this.#echoTimeoutMs * 2) {
      this.#lastError ??= "the subscription was not confirmed";
      this.#resubscribeLater();
    }
    // A node not heard from (its heartbeat envelopes) within the TTL is dead.
    this.#peers.expire();
    this.#inbound.tick();
    this.#inbound.forgetSilent(_RUN_MEMORY_MS);
  }

  #fail(err: unknown): void {
    this.#lastError = err instanceof Error ? err.message : String(err);
  }
}
