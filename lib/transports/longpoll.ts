/**
 * The long-poll transport's connection and session registry (Phoenix's long-poll protocol, so
 * the official client's `LongPoll` works unchanged): frames queue between polls and go out with
 * the next one; sessions with no poll for `LONGPOLL_TIMEOUT_MS` end. The routes are
 * `routes/longpoll.ts`.
 *
 * @example
 * ```ts
 * const polls = new LongPollSessions({ timeoutMs: 15_000, timers, clock });
 * const connection = polls.create({ serializer: v2Serializer, maxQueued: 2 << 20 });
 * ```
 * @module
 */
import type { Broadcast } from "../core/broadcast.ts";
import type { Connection } from "../core/connection.ts";
import { deltaFrame } from "../core/delta.ts";
import type { Message } from "../core/message.ts";
import { EndReason } from "../core/protocol.ts";
import type { Serializer } from "../core/serializer.ts";
import type { Session } from "../core/session.ts";
import type { Clock, Timers } from "../core/time.ts";

/** The fields of a {@link LongPollConnection}. */
export interface LongPollConnectionInit {
  /** The session token the client polls with. */
  token: string;
  serializer: Serializer;
  /** Characters queued past which the client is dropped as a slow consumer. */
  maxQueued: number;
  /** Clock time of creation (the first poll). */
  now: number;
}

/** Queues frames between polls and hands them to the waiting poll. */
export class LongPollConnection implements Connection {
  readonly transport = "longpoll";
  readonly token: string;
  readonly serializer: Serializer;
  readonly maxQueued: number;
  readonly queue: string[] = [];
  /** Characters queued: a client that stops polling is dropped past the outbound limit. */
  #queued = 0;
  session?: Session;
  lastPoll: number;
  /** Polls made with this session's token (the one that created it does not count). */
  polls = 0;
  /** Called once when the session ends (gives back its place in the long-poll budget). */
  onEnd?: () => void;
  closed = false;
  #waiter?: () => void;
  /** Replays waiting for the client to poll what is queued (see {@link backlog}). */
  #drainWaiters: (() => void)[] = [];

  constructor(init: LongPollConnectionInit) {
    this.token = init.token;
    this.serializer = init.serializer;
    this.maxQueued = init.maxQueued;
    this.lastPoll = init.now;
  }

  /** Takes everything queued. */
  drain(): string[] {
    this.#queued = 0;
    const frames = this.queue.splice(0);
    this.#wakeDrain();
    return frames;
  }

  /** Characters queued for the next poll (0 once closed). */
  backlog(): number {
    return this.closed ? 0 : this.#queued;
  }

  drained(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #wakeDrain(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const wake of waiters) wake();
  }

  sendMessage(msg: Message): void {
    this.#enqueue(this.serializer.encode(msg));
  }

  sendBroadcast(b: Broadcast): void {
    this.#enqueue(this.serializer.encodeBroadcast(b));
  }

  sendDelta(b: Broadcast, deltaJson: string): void {
    this.#enqueue(deltaFrame(this.serializer, b, deltaJson));
  }

  close(_code: number, _reason: string): void {
    this.closed = true;
    this.#wake();
    this.#wakeDrain();
  }

  /** Resolves when there is something to send, the connection closes, the poll is aborted, or after `ms`. */
  wait(ms: number, signal: AbortSignal): Promise<void> {
    this.#waiter?.(); // a newer poll replaces an older one
    if (this.queue.length > 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        if (this.#waiter === done) this.#waiter = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      this.#waiter = done;
    });
  }

  get waiting(): boolean {
    return this.#waiter !== undefined;
  }

  #enqueue(frame: string): void {
    if (this.closed) return;
    this.queue.push(frame);
    this.#queued += frame.length;
    if (this.#queued > this.maxQueued) {
      this.queue.length = 0;
      this.closed = true;
      this.#wakeDrain();
      this.session?.close(EndReason.slowConsumer);
    }
    // Answer on the next microtask, so frames written together go out in one response.
    queueMicrotask(() => this.#wake());
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }
}

/** The fields of {@link LongPollSessions}. */
export interface LongPollSessionsInit {
  /** A session with no poll for this long ends. */
  timeoutMs: number;
  /**
   * A session never polled with its token within this long after it was created ends (a
   * client that opens sessions and never uses them costs the node little for little time).
   */
  firstPollMs?: number;
  timers: Timers;
  clock: Clock;
}

/** The node's long-poll sessions by token, and the sweep that ends abandoned ones. */
export class LongPollSessions {
  readonly #sessions = new Map<string, LongPollConnection>();
  readonly #init: LongPollSessionsInit;
  #stopSweeper?: () => void;

  constructor(init: LongPollSessionsInit) {
    this.#init = init;
  }

  /** The live connection for a token, if any. */
  get(token: string | undefined): LongPollConnection | undefined {
    return token === undefined ? undefined : this.#sessions.get(token);
  }

  /** Registers a new connection under a fresh token. */
  create(init: Omit<LongPollConnectionInit, "token" | "now">): LongPollConnection {
    const connection = new LongPollConnection({
      ...init,
      token: crypto.randomUUID(),
      now: this.#init.clock.now(),
    });
    this.#sessions.set(connection.token, connection);
    this.#stopSweeper ??= this.#init.timers.every(
      Math.min(5_000, this.#init.timeoutMs / 3, (this.#init.firstPollMs ?? Infinity) / 2),
      () => this.sweep(),
    );
    return connection;
  }

  /** Marks a poll now (the client is still there). */
  touch(connection: LongPollConnection): void {
    connection.lastPoll = this.#init.clock.now();
    connection.polls++;
  }

  /** Ends a connection's session and forgets its token. */
  end(connection: LongPollConnection, reason: string): void {
    if (!this.#sessions.delete(connection.token)) return;
    connection.close(0, reason);
    connection.onEnd?.();
    connection.session?.close(reason);
    if (this.#sessions.size === 0) {
      this.#stopSweeper?.();
      this.#stopSweeper = undefined;
    }
  }

  /** Ends abandoned sessions (no poll for a while): their channels stop, presences leave. */
  sweep(): void {
    const now = this.#init.clock.now();
    const deadline = now - this.#init.timeoutMs;
    const unusedBefore = now - (this.#init.firstPollMs ?? this.#init.timeoutMs);
    for (const connection of [...this.#sessions.values()]) {
      const idle = !connection.waiting && connection.lastPoll < deadline;
      const unused = connection.polls === 0 && connection.lastPoll < unusedBefore;
      if (connection.closed || idle || unused) this.end(connection, EndReason.timeout);
    }
  }
}
