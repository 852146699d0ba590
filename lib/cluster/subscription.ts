/**
 * Whether a node's subscription to its bus works, told by the node's own envelopes: each one
 * must come back on the subscription within a deadline, and a subscription must be confirmed;
 * otherwise it is dropped and tried again with jittered exponential backoff (a restarted bus
 * does not get every node back at once). A subscription stream that ends silently is noticed
 * this way, whatever the bus.
 *
 * @example
 * ```ts
 * const health = new SubscriptionHealth({ bus, clock: Date, echoTimeoutMs: 3_000, receive, recovered, stalled });
 * health.start();
 * health.sent(7); // envelope 7 went out: expect it back
 * health.check(Date.now()); // on every tick
 * ```
 * @module
 */
import type { Clock } from "../core/time.ts";
import type { ClusterBus } from "./bus.ts";

/** What {@link SubscriptionHealth} needs. */
export interface SubscriptionHealthInit {
  bus: ClusterBus;
  clock: Clock;
  /** Own envelope not back this long after it was sent: resubscribe. */
  echoTimeoutMs: number;
  /** An envelope arrived on the current subscription. */
  receive(raw: string): void;
  /** The subscription is (again) established: the node may have missed anything before. */
  recovered(): void;
  /** The subscription failed or stalled; `reason` says how. */
  stalled(reason: string, err?: unknown): void;
}

/** One node's subscription to its bus, watched through its own envelopes. */
export class SubscriptionHealth {
  readonly #init: SubscriptionHealthInit;
  #subscribed = false;
  #startedAt = 0;
  /** Our oldest envelope not yet heard back on the subscription, and the newest heard. */
  #awaitingEcho?: { seq: number; at: number };
  #echoedSeq = 0;
  #attempt = 0;
  #timer?: ReturnType<typeof setTimeout>;
  #drop = () => {};
  #closed = false;

  constructor(init: SubscriptionHealthInit) {
    this.#init = init;
  }

  /** True while subscribed and no own envelope is overdue. */
  get healthy(): boolean {
    if (!this.#subscribed) return false;
    const echo = this.#awaitingEcho;
    return !echo || this.#init.clock.now() - echo.at <= this.#init.echoTimeoutMs;
  }

  /** (Re)subscribes; a previous subscription's deliveries are ignored from now on. */
  start(): void {
    if (this.#closed) return;
    this.#subscribed = false;
    this.#awaitingEcho = undefined;
    this.#startedAt = this.#init.clock.now();
    let current = true;
    this.#init.bus.subscribe({
      message: (raw) => {
        if (current) this.#init.receive(raw);
      },
      subscribed: () => {
        if (!current) return;
        this.#subscribed = true;
        this.#attempt = 0;
        this.#init.recovered();
      },
      failed: (err) => {
        if (!current) return;
        this.#init.stalled(err instanceof Error ? err.message : String(err), err);
        this.#retryLater();
      },
    });
    this.#drop = () => current = false;
  }

  /** Envelope `seq` went out: on a bus that echoes, it must come back in time. */
  sent(seq: number): void {
    // The echo may have come back before the send resolved.
    if (this.#init.bus.echoes && this.#echoedSeq < seq) {
      this.#awaitingEcho ??= { seq, at: this.#init.clock.now() };
    }
  }

  /** Our own envelope `seq` came back on the subscription. */
  echoed(seq: number): void {
    this.#echoedSeq = Math.max(this.#echoedSeq, seq);
    if (this.#awaitingEcho && seq >= this.#awaitingEcho.seq) this.#awaitingEcho = undefined;
  }

  /** The periodic check: an overdue echo or an unconfirmed subscription means subscribe again. */
  check(now: number): void {
    // A subscription stream that ended is not reported: our own envelopes tell us.
    const echo = this.#awaitingEcho;
    if (this.#subscribed && echo && now - echo.at > this.#init.echoTimeoutMs) {
      this.#init.stalled(`own envelope not back on the subscription after ${now - echo.at} ms`);
      this.#retryLater();
    }
    // A subscription never confirmed (the stream ended before its first line) is tried again.
    if (!this.#subscribed && now - this.#startedAt > this.#init.echoTimeoutMs * 2) {
      this.#init.stalled("the subscription was not confirmed");
      this.#retryLater();
    }
  }

  /** Stops retrying (the bus unsubscribes; its last deliveries are still taken). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #retryLater(): void {
    if (this.#closed || this.#timer) return;
    this.#subscribed = false;
    this.#drop();
    // Jittered exponential backoff: a restart of the bus does not bring every node back at once.
    const base = Math.min(5_000, 250 * 2 ** this.#attempt++);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.start();
    }, base * (0.5 + Math.random()));
  }
}
