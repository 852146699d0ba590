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
  closed = false;
  #waiter?: () => void;

  constructor(init: LongPollConnectionInit) {
    this.token = init.token;
    this.serializer = init.serializer;
    this.maxQueued = init.maxQueued;
    this.lastPoll = init.now;
  }

  /** Takes everything queued. */
  drain(): string[] {
    this.#queued = 0;
    return this.queue.splice(0);
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
      Math.min(5_000, this.#init.timeoutMs / 3),
      () => this.sweep(),
    );
    return connection;
  }

  /** Marks a poll now (the client is still there). */
  touch(connection: LongPollConnection): void {
    connection.lastPoll = this.#init.clock.now();
  }

  /** Ends a connection's session and forgets its token. */
  end(connection: LongPollConnection, reason: string): void {
    this.#sessions.delete(connection.token);
    connection.closed = true;
    connection.session?.close(reason);
    if (this.#sessions.size === 0) {
      this.#stopSweeper?.();
      this.#stopSweeper = undefined;
    }
  }

  /** Ends abandoned sessions (no poll for a while): their channels stop, presences leave. */
  sweep(): void {
    const deadline = this.#init.clock.now() - this.#init.timeoutMs;
    for (const connection of this.#sessions.values()) {
      if (connection.closed || (!connection.waiting && connection.lastPoll < deadline)) {
        this.end(connection, EndReason.timeout);
      }
    }
  }
}
