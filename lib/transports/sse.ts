/**
 * The Server-Sent Events transport's connection: writes a session's events into one response
 * stream, each broadcast with an `id:` cursor over all the stream's topics, and drops a reader
 * that stops reading. The route is `routes/sse.ts`; the framing is `sse_framing.ts`.
 *
 * @example
 * ```ts
 * const connection = new SseConnection({ maxBuffered: 2 << 20, retryMs: () => 3000 });
 * return new Response(connection.stream, { headers: { "content-type": "text/event-stream" } });
 * ```
 * @module
 */
import type { Broadcast } from "../core/broadcast.ts";
import type { Connection } from "../core/connection.ts";
import type { Message } from "../core/message.ts";
import { CloseCode, ControlEvent, EndReason, PhxEvent } from "../core/protocol.ts";
import type { Clock } from "../core/time.ts";
import { type Cursor, formatCursor, type TopicCursor } from "../resume/cursor.ts";
import {
  sseBroadcastBytes,
  sseComment,
  sseDeltaBytes,
  sseEvent,
  sseId,
  sseRetry,
} from "./sse_framing.ts";

const _encoder = new TextEncoder();
const _HEARTBEAT = _encoder.encode(sseComment("heartbeat"));

/**
 * Why an SSE stream ended: the client went away or read too slowly, or the server closed it
 * (`closed`: shutdown, expired token, flood; whoever closed it also closed the session).
 */
export type SseEnd =
  | typeof EndReason.disconnect
  | typeof EndReason.slowConsumer
  | typeof EndReason.closed;

/** The fields of an {@link SseConnection}. */
export interface SseConnectionInit {
  /** Unread bytes past which the stream is dropped (EventSource resumes from its id). */
  maxBuffered: number;
  /**
   * The history window's age (`HISTORY_MAX_AGE_MS`): a stream with nothing newer than this
   * is forgotten from the ids, as the topic's heads forget it.
   */
  windowMs: number;
  /** The node's clock (default `Date`). */
  clock?: Clock;
  /** How long a closed stream may take to be read to its end before it is cut. */
  closeTimeoutMs?: number;
}

/**
 * The longest `id:` this transport writes: EventSource sends it back as `Last-Event-ID`, and
 * nginx's default header buffer (8 KiB per line) must still take it with the rest.
 */
export const SSE_ID_BUDGET = 4096;

/** An `id:` whose cursor is written once every position in it has been judged. */
interface _HeldId {
  cursor: Cursor;
}

/** Writes SSE events into one response stream. */
export class SseConnection implements Connection {
  readonly transport = "sse";
  /** Binary pushes and broadcasts go out as base64 (see `sseEvent`). */
  readonly binary = true;
  /** Where the client is in every topic of the stream: each event's `id:`. */
  readonly cursor: Cursor = new Map();
  readonly stream: ReadableStream<Uint8Array>;
  readonly #windowMs: number;
  readonly #clock: Clock;
  readonly #maxBuffered: number;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #open = true;
  /**
   * Topics whose position is still the client's own, not yet judged by their replay: until
   * all are, output is held, so no `id:` repeats a stream the server may not know.
   */
  readonly #pending = new Set<string>();
  #held: (Uint8Array | _HeldId)[] = [];
  #heldBytes = 0;
  readonly #closeTimeoutMs: number;
  /** Replays waiting for the client to read (see {@link backlog}). */
  #drainWaiters: (() => void)[] = [];
  /** Ended by the server: the response closes once its queue is read (see {@link finished}). */
  #ending = false;
  #lingerTimer?: ReturnType<typeof setTimeout>;
  #finish!: () => void;
  /**
   * Resolves when the stream is done: read to its end, the client gone, or dropped unread.
   * Where the runtime cannot say when the response's socket is done (Deno's
   * `info.completed` can), it counts as a connection until then (issue 21).
   */
  readonly finished: Promise<void> = new Promise((resolve) => this.#finish = resolve);
  /** Called once when the stream ends: the client is gone or too slow, or the server closed it. */
  onEnd: (reason: SseEnd) => void = () => {};

  constructor(init: SseConnectionInit) {
    this.#windowMs = init.windowMs;
    this.#maxBuffered = init.maxBuffered;
    this.#clock = init.clock ?? Date;
    this.#closeTimeoutMs = init.closeTimeoutMs ?? 5_000;
    this.stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      // The response took a chunk and wants more: a paced replay may write again, and an
      // ending stream whose queue was read to its end closes.
      pull: () => {
        this.#wakeDrain();
        if (this.#ending && this.#unread() === 0) this.#end();
      },
      cancel: () => {
        const wasOpen = this.#open;
        this.#open = false;
        this.#wakeDrain();
        this.#done();
        if (wasOpen) this.onEnd(EndReason.disconnect);
      },
    }, { highWaterMark: init.maxBuffered, size: (chunk) => chunk.byteLength });
  }

  write(chunk: Uint8Array | string): void {
    if (!this.#open) return;
    const bytes = typeof chunk === "string" ? _encoder.encode(chunk) : chunk;
    if (this.#pending.size === 0) return this.#enqueue(bytes);
    this.#held.push(bytes);
    // Held output counts against the same limit as unread output: a replay that never
    // decides must not let the other topics' messages pile up without end.
    this.#heldBytes += bytes.byteLength;
    if (this.#heldBytes > this.#maxBuffered) this.#dropSlowConsumer();
  }

  /** Bytes queued or held that the client has not read (0 once the stream ended). */
  backlog(): number {
    return this.#open ? this.#unread() + this.#heldBytes : 0;
  }

  drained(): Promise<void> {
    if (!this.#open) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #wakeDrain(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Tells EventSource how long to wait before it reconnects. */
  retry(ms: number): void {
    this.write(sseRetry(ms));
  }

  startTopic(topic: string, position: TopicCursor, pending = false): void {
    const copy: TopicCursor = {
      since: position.since,
      streams: new Map(position.streams),
      publishedAt: new Map(position.publishedAt),
    };
    this.cursor.set(topic, copy);
    if (pending) {
      this.#pending.add(topic);
    } else if (this.#pending.delete(topic)) {
      // Ids held meanwhile showed the unjudged position; nothing of this topic moved since.
      for (const item of this.#held) {
        if (!(item instanceof Uint8Array) && item.cursor.has(topic)) item.cursor.set(topic, copy);
      }
      if (this.#pending.size === 0) this.#release();
    }
  }

  sendMessage(msg: Message): void {
    if (msg.event === PhxEvent.reply) {
      // Only joins are replied to on SSE: their response is the `joined` event.
      const reply = msg.payload as { status: string; response: Record<string, unknown> };
      if (reply.status !== "ok") return;
      this.#writeId();
      this.write(sseEvent(msg.topic, ControlEvent.joined, JSON.stringify(reply.response)));
      return;
    }
    // A reset moves the topic's position to now: the id says so.
    if (msg.event === ControlEvent.reset) this.#writeId();
    const payloadJson = msg.payloadJson ?? JSON.stringify(msg.payload);
    this.write(sseEvent(msg.topic, msg.event, payloadJson, msg.binary));
  }

  sendBroadcast(b: Broadcast): void {
    this.#sendNumbered(b, sseBroadcastBytes(b));
  }

  sendDelta(b: Broadcast, deltaJson: string): void {
    this.#sendNumbered(b, sseDeltaBytes(b, deltaJson));
  }

  /** A fan-out event, after the `id:` that counts it in the cursor when it is numbered. */
  #sendNumbered(b: Broadcast, bytes: Uint8Array): void {
    if (b.seq > 0) {
      const position = this.cursor.get(b.topic);
      if (position) {
        position.streams.set(b.stream, b.seq);
        position.publishedAt?.set(b.stream, b.at);
      }
      this.#writeId();
    }
    this.write(bytes);
  }

  /**
   * A comment that keeps proxies from closing an idle stream; also forgets the streams that
   * have left the window, so ids stay bounded on a page open for days.
   */
  heartbeat(): void {
    this.#forgetOldStreams(this.#clock.now() - this.#windowMs);
    this.write(_HEARTBEAT);
  }

  close(code: number, _reason: string): void {
    if (!this.#open) return;
    // Going away (shutdown, restart): spread the reconnects over a few seconds.
    if (code === CloseCode.goingAway || code === CloseCode.serviceRestart) {
      this.retry(jitteredRetryMs());
    }
    // What was held goes out as it is: the client resumes from the position it sent.
    this.#pending.clear();
    this.#release();
    this.#open = false;
    this.#wakeDrain();
    this.#linger(this.#closeTimeoutMs);
    this.onEnd(EndReason.closed);
  }

  /** Bytes queued that the response has not taken yet. */
  #unread(): number {
    return this.#maxBuffered - (this.#controller.desiredSize ?? this.#maxBuffered);
  }

  /**
   * Ends the response once what is queued was read (pull closes it), or drops it unread after
   * `ms`: a reader that stopped reading would keep it, and its connection, open for good.
   */
  #linger(ms: number): void {
    this.#ending = true;
    if (this.#unread() === 0) return this.#end();
    this.#lingerTimer = setTimeout(() => this.#cut(), ms);
  }

  #end(): void {
    try {
      this.#controller.close();
    } catch { /* already closed by the client */ }
    this.#done();
  }

  #cut(): void {
    try {
      this.#controller.error(new Error("stream not read to its end in time"));
    } catch { /* already closed by the client */ }
    this.#done();
  }

  #done(): void {
    this.#ending = false;
    clearTimeout(this.#lingerTimer);
    this.#finish();
  }

  #writeId(): void {
    if (!this.#open) return;
    if (this.#pending.size === 0) return this.#enqueue(_encoder.encode(sseId(this.#boundedId())));
    // A snapshot: the judged topics' positions move on before the held output is written.
    const cursor: Cursor = new Map();
    for (const [topic, position] of this.cursor) {
      cursor.set(
        topic,
        this.#pending.has(topic)
          ? position
          : { since: position.since, streams: new Map(position.streams) },
      );
    }
    this.#held.push({ cursor });
  }

  #release(): void {
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    this.#wakeDrain();
    for (const item of held) {
      if (!this.#open) return;
      this.#enqueue(
        item instanceof Uint8Array ? item : _encoder.encode(sseId(formatCursor(item.cursor))),
      );
    }
  }

  #enqueue(bytes: Uint8Array): void {
    if (!this.#open) return;
    this.#controller.enqueue(bytes);
    // Unread bytes pile up in the stream's queue when the client stops reading: past the limit
    // the stream is dropped, and EventSource resumes from its Last-Event-ID.
    if ((this.#controller.desiredSize ?? 0) < 0) this.#dropSlowConsumer();
  }

  /**
   * Past the limit the session ends and the stream is dropped; EventSource resumes from its
   * Last-Event-ID. Its response counts as a connection until its socket is done with it
   * (`routes/sse.ts`).
   */
  #dropSlowConsumer(): void {
    this.#open = false;
    this.#held = [];
    this.#heldBytes = 0;
    this.#wakeDrain();
    // Errored at once, not left to be read: Deno then drops the connection when it can (not
    // while its socket is full; see docs/limits.md), and the queue is freed now.
    this.#cut();
    this.onEnd(EndReason.slowConsumer);
  }

  /**
   * The cursor as an id of at most {@link SSE_ID_BUDGET} characters: past it, the streams
   * with the oldest messages are dropped first, and the topic's `since` moves up to the
   * dropped message's time (streams not listed count from `since` on).
   */
  #boundedId(): string {
    let id = formatCursor(this.cursor);
    while (id.length > SSE_ID_BUDGET && this.#dropOldestStream()) id = formatCursor(this.cursor);
    return id;
  }

  #dropOldestStream(): boolean {
    let oldest: { position: TopicCursor; stream: string; at: number } | undefined;
    for (const position of this.cursor.values()) {
      for (const [stream] of position.streams) {
        const at = position.publishedAt?.get(stream) ?? -Infinity;
        if (!oldest || at < oldest.at) oldest = { position, stream, at };
      }
    }
    if (!oldest) return false;
    oldest.position.streams.delete(oldest.stream);
    oldest.position.publishedAt?.delete(oldest.stream);
    // Everything of that stream up to its newest message was seen: moving `since` there says
    // so, or a replay would send its messages again as if from an unknown stream.
    if (Number.isFinite(oldest.at)) {
      oldest.position.since = Math.max(oldest.position.since, oldest.at);
    }
    return true;
  }

  /** Drops streams whose newest message is older than `oldest`, as the topic's heads do. */
  #forgetOldStreams(oldest: number): void {
    for (const [topic, position] of this.cursor) {
      if (this.#pending.has(topic) || !position.publishedAt) continue;
      for (const [stream, at] of position.publishedAt) {
        if (at >= oldest) continue;
        position.publishedAt.delete(stream);
        position.streams.delete(stream);
      }
    }
  }
}

/** Spreads reconnects after a restart over a few seconds instead of one instant. */
export function jitteredRetryMs(): number {
  return 2000 + Math.floor(Math.random() * 3000);
}
