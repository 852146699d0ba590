/**
 * Nothing lost across nodes without notice. Every message a node run publishes gets the next
 * index of that run (1, 2, 3…, gapless, over all topics); every envelope says the highest index
 * published so far. A receiver that finds itself behind (an outage of the bus, of its own
 * subscription, of the publisher's requests) holds what came early, asks the publisher to re-send
 * from the first index it lacks (the publisher keeps its recent messages in a {@link SentLog}),
 * and delivers in order once the gap is filled. What the publisher no longer has is declared
 * lost, and the hub then resets its clients: a gap is never papered over.
 *
 * Bus-neutral: the Redis broker uses it over pub/sub; any other bus can.
 *
 * @example
 * ```ts
 * const runs = new InboundRuns({ clock: Date, deliver, lost, request });
 * runs.take(envelope); // delivers in order, asks for what is missing
 * ```
 * @module
 */
import type { BrokerMessage } from "../core/broker.ts";
import type { BusEnvelope } from "./envelope.ts";
import type { Clock } from "../core/time.ts";

/** Bounds of a {@link SentLog}. */
export interface SentLogLimits {
  /** Messages kept for re-sends. */
  count: number;
  /** Encoded bytes kept for re-sends. */
  bytes: number;
  /** Messages older than this are not re-sent (they have left every history window). */
  maxAgeMs: number;
}

interface _Sent {
  index: number;
  json: string;
  at: number;
}

/** This node run's recent messages by index, for re-sends to nodes that missed them. */
export class SentLog {
  readonly #entries: _Sent[] = [];
  #head = 0;
  #bytes = 0;
  #last = 0;

  constructor(readonly limits: SentLogLimits, readonly clock: Clock) {}

  /** The index of the last message added (0: none yet). */
  get last(): number {
    return this.#last;
  }

  /** Keeps an encoded message; returns its index. */
  add(json: string): number {
    const index = ++this.#last;
    this.#entries.push({ index, json, at: this.clock.now() });
    this.#bytes += json.length;
    this.#trim();
    return index;
  }

  /**
   * The kept messages from `index` on, and the index of the first of them (past `index` when
   * older ones are gone; `last + 1` when none is left).
   */
  from(index: number): { first: number; messages: string[] } {
    this.#trim();
    const live = this.#entries.length - this.#head;
    const oldest = live > 0 ? this.#entries[this.#head].index : this.#last + 1;
    const first = Math.max(index, oldest);
    const start = this.#head + (first - oldest);
    return { first, messages: this.#entries.slice(start).map((e) => e.json) };
  }

  #trim(): void {
    const oldest = this.clock.now() - this.limits.maxAgeMs;
    while (
      this.#head < this.#entries.length &&
      (this.#entries.length - this.#head > this.limits.count || this.#bytes > this.limits.bytes ||
        this.#entries[this.#head].at < oldest)
    ) {
      this.#bytes -= this.#entries[this.#head].json.length;
      this.#head++;
    }
    // Compact now and then rather than shifting on every message.
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries.splice(0, this.#head);
      this.#head = 0;
    }
  }
}

interface _Run {
  nodeId: string;
  runId: string;
  /** Highest index delivered in order. */
  got: number;
  /** Highest index the run said it published. */
  high: number;
  /** Messages that came after a gap, by index. */
  held: Map<number, BrokerMessage>;
  /** When the current gap was first asked about, and how often. */
  askedAt?: number;
  asks: number;
  heardAt: number;
}

/** What {@link InboundRuns} needs around it. */
export interface InboundRunsInit {
  clock: Clock;
  /** Hands one message, in order, to the hub. */
  deliver(msg: BrokerMessage): void;
  /** Messages of a run that cannot be recovered any more. */
  lost(nodeId: string, count: number): void;
  /** Asks a run (on the bus) to re-send from index `from`. */
  request(nodeId: string, runId: string, from: number): void;
  /** A gap not filled this long after asking is asked about again (default 2 000 ms). */
  retryMs?: number;
  /** Asks before the gap is declared lost (default 3). */
  maxAsks?: number;
  /** Messages held behind a gap before it is declared lost (default 10 000). */
  maxHeld?: number;
}

/** The other node runs' message streams as this node receives them: in order, gaps asked for. */
export class InboundRuns {
  readonly #runs = new Map<string, _Run>();
  readonly #init: InboundRunsInit;
  readonly #retryMs: number;
  readonly #maxAsks: number;
  readonly #maxHeld: number;

  constructor(init: InboundRunsInit) {
    this.#init = init;
    this.#retryMs = init.retryMs ?? 2_000;
    this.#maxAsks = init.maxAsks ?? 3;
    this.#maxHeld = init.maxHeld ?? 10_000;
  }

  /** Runs with a gap being asked for (for `/healthz`). */
  get behind(): number {
    let n = 0;
    for (const run of this.#runs.values()) if (run.got < run.high) n++;
    return n;
  }

  /** Takes an envelope from another node: delivers its messages in order, asks for gaps. */
  take(env: BusEnvelope): void {
    const now = this.#init.clock.now();
    let run = this.#runs.get(env.n);
    if (env.bye) {
      if (run && run.runId === env.e) this.#end(run);
      return;
    }
    if (run && run.runId !== env.e) {
      // The node restarted: what its old run published and we lack is gone with it. The new
      // run's messages are all wanted, from its first.
      this.#end(run);
      run = this.#add(env, 0, now);
    }
    if (!run) {
      // A run heard for the first time (this node just started, or the other one did): follow
      // it from here. A re-send meant for others is not ours to deliver.
      const start = env.r ? env.h ?? 0 : env.i !== undefined ? env.i - 1 : env.h ?? 0;
      run = this.#add(env, start, now);
    }
    run.heardAt = now;
    if (env.r && env.i !== undefined && env.i > run.got + 1) {
      // The publisher no longer has what we lack: say so, and go on from what it has.
      this.#lose(run, env.i - 1);
    }
    const messages = env.m ?? [];
    for (let k = 0; k < messages.length; k++) {
      const index = (env.i ?? 0) + k;
      if (index <= run.got) continue;
      if (index === run.got + 1) {
        run.got = index;
        this.#init.deliver(messages[k]);
      } else if (!run.held.has(index)) {
        run.held.set(index, messages[k]);
      }
    }
    run.high = Math.max(run.high, env.h ?? 0, (env.i ?? 0) + messages.length - 1);
    this.#drain(run);
    if (run.got >= run.high) {
      run.askedAt = undefined;
      run.asks = 0;
    } else if (run.held.size > this.#maxHeld) {
      this.#lose(run, Math.min(...run.held.keys()) - 1);
    } else if (run.askedAt === undefined) {
      this.#ask(run, now);
    }
  }

  /** This node may have missed envelopes (it resubscribed): ask every run for what follows. */
  askAll(): void {
    const now = this.#init.clock.now();
    for (const run of this.#runs.values()) {
      this.#init.request(run.nodeId, run.runId, run.got + 1);
      run.askedAt = run.got < run.high ? now : undefined;
    }
  }

  /** Asks again about gaps still open; declares lost those asked about too often. */
  tick(): void {
    const now = this.#init.clock.now();
    for (const run of this.#runs.values()) {
      if (run.askedAt === undefined || now - run.askedAt < this.#retryMs) continue;
      if (run.asks >= this.#maxAsks) this.#lose(run, run.high);
      else this.#ask(run, now);
    }
  }

  /** Forgets runs not heard from for this long (their node is long gone). */
  forgetSilent(olderThanMs: number): void {
    const now = this.#init.clock.now();
    for (const run of this.#runs.values()) {
      if (now - run.heardAt > olderThanMs) this.#end(run);
    }
  }

  #add(env: BusEnvelope, got: number, now: number): _Run {
    const run: _Run = {
      nodeId: env.n,
      runId: env.e,
      got,
      high: got,
      held: new Map(),
      asks: 0,
      heardAt: now,
    };
    this.#runs.set(env.n, run);
    return run;
  }

  #ask(run: _Run, now: number): void {
    run.askedAt = now;
    run.asks++;
    this.#init.request(run.nodeId, run.runId, run.got + 1);
  }

  /** Everything up to `upTo` that has not arrived is lost; what was held behind it goes on. */
  #lose(run: _Run, upTo: number): void {
    let missing = 0;
    while (run.got < upTo) {
      run.got++;
      const held = run.held.get(run.got);
      if (held) {
        run.held.delete(run.got);
        this.#init.deliver(held);
      } else missing++;
    }
    if (missing) this.#init.lost(run.nodeId, missing);
    this.#drain(run);
    run.askedAt = undefined;
    run.asks = 0;
    run.high = Math.max(run.high, run.got);
  }

  #drain(run: _Run): void {
    for (let next = run.held.get(run.got + 1); next; next = run.held.get(run.got + 1)) {
      run.held.delete(++run.got);
      this.#init.deliver(next);
    }
  }

  #end(run: _Run): void {
    this.#runs.delete(run.nodeId);
    if (run.got < run.high) this.#lose(run, run.high);
  }
}
