/**
 * `GET /events?topic=T[&topic=T2…]`: Server-Sent Events. Each message on a topic is one event
 * `event: E` / `data: {"topic": T, "payload": P}` with an `id:` cursor over all the stream's
 * topics; the join reply comes first as `event: joined`.
 * @module
 */
import { Hono } from "hono";
import type { Broadcast } from "../lib/core/broadcast.ts";
import { sseLines, sseLinesJson } from "../lib/core/broadcast.ts";
import {
  type Cursor,
  CursorError,
  formatCursor,
  parseCursor,
  type TopicCursor,
} from "../lib/resume/cursor.ts";
import type { Message } from "../lib/core/message.ts";
import type { Connection } from "../lib/core/session.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import { connectParams } from "./params.ts";

const _encoder = new TextEncoder();
const _HEARTBEAT = _encoder.encode(": heartbeat\n\n");
/** More topics than this on one stream is refused. */
const _MAX_TOPICS = 32;

/** Writes SSE events into one response stream. */
class SseConnection implements Connection {
  readonly transport = "sse";
  /** Where the client is in every topic of the stream: each event's `id:`. */
  readonly cursor: Cursor = new Map();
  readonly stream: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #open = true;
  /** Called once when the stream ends from the client's side: gone, or too slow. */
  onEnd: (reason: "disconnect" | "slow_consumer") => void = () => {};

  constructor(readonly maxBuffered: number) {
    this.stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      cancel: () => {
        this.#open = false;
        this.onEnd("disconnect");
      },
    }, { highWaterMark: maxBuffered, size: (chunk) => chunk.byteLength });
  }

  write(chunk: Uint8Array | string): void {
    if (!this.#open) return;
    this.#controller.enqueue(typeof chunk === "string" ? _encoder.encode(chunk) : chunk);
    // Unread bytes pile up in the stream's queue when the client stops reading: past the limit
    // the stream is dropped, and EventSource resumes from its Last-Event-ID.
    if ((this.#controller.desiredSize ?? 0) < 0) {
      this.#open = false;
      this.#controller.error(new Error("slow consumer"));
      this.onEnd("slow_consumer");
    }
  }

  startTopic(topic: string, position: TopicCursor): void {
    this.cursor.set(topic, { since: position.since, streams: new Map(position.streams) });
  }

  sendMessage(msg: Message): void {
    if (msg.event === "phx_reply") {
      // Only joins are replied to on SSE: their response is the `joined` event.
      const reply = msg.payload as { status: string; response: Record<string, unknown> };
      if (reply.status !== "ok") return;
      this.write(`id: ${formatCursor(this.cursor)}\n`);
      this.write(sseLines(msg.topic, "joined", reply.response));
      return;
    }
    // A reset moves the topic's position to now: the id says so.
    if (msg.event === "reset") this.write(`id: ${formatCursor(this.cursor)}\n`);
    this.write(
      msg.payloadJson === undefined
        ? sseLines(msg.topic, msg.event, msg.payload)
        : sseLinesJson(msg.topic, msg.event, msg.payloadJson),
    );
  }

  sendBroadcast(b: Broadcast): void {
    if (b.seq > 0) {
      const position = this.cursor.get(b.topic);
      if (position) position.streams.set(b.stream, b.seq);
      this.write(`id: ${formatCursor(this.cursor)}\n`);
    }
    this.write(b.sseBody);
  }

  heartbeat(): void {
    this.write(_HEARTBEAT);
  }

  close(code: number, _reason: string): void {
    if (!this.#open) return;
    // Going away (shutdown, restart): spread the reconnects over a few seconds.
    if (code === 1001 || code === 1012) this.write(`retry: ${_jitteredRetry()}\n\n`);
    this.#open = false;
    try {
      this.#controller.close();
    } catch { /* already closed by the client */ }
  }
}

/** Spreads reconnects after a restart over a few seconds instead of one instant. */
function _jitteredRetry(): number {
  return 2000 + Math.floor(Math.random() * 3000);
}

/** The SSE transport's routes. */
export function sseRoutes(switchboard: Switchboard): Hono {
  const app = new Hono();
  const live = new Set<SseConnection>();
  let ticker: ReturnType<typeof setInterval> | undefined;
  // One timer for every stream: a per-stream interval costs memory and wakeups per viewer.
  const startTicker = () => {
    if (ticker) return;
    ticker = setInterval(() => {
      for (const connection of live) connection.heartbeat();
    }, switchboard.config.sseHeartbeatMs);
    Deno.unrefTimer(ticker);
  };

  app.get("/events", async (c) => {
    const search = new URL(c.req.url).searchParams;
    const topics = [...new Set(search.getAll("topic").filter((t) => t !== ""))];
    if (topics.length === 0) {
      return c.json({ error: "missing topic: add ?topic=<topic> (repeat it for several)" }, 400);
    }
    if (topics.length > _MAX_TOPICS) {
      return c.json({ error: `too many topics: at most ${_MAX_TOPICS} per stream` }, 400);
    }
    const unknown = topics.find((t) => !switchboard.router.match(t));
    if (unknown !== undefined) {
      return c.json({ error: `unknown topic "${unknown}": no channel matches it` }, 404);
    }
    // EventSource sends Last-Event-ID when it reconnects; `cursor` serves clients that poll
    // first (GET /api/topics/:topic gives one) or cannot set headers.
    let resume: Cursor;
    try {
      resume = parseCursor(c.req.header("last-event-id") ?? search.get("cursor") ?? "");
    } catch (err) {
      if (!(err instanceof CursorError)) throw err;
      return c.json({ error: err.message }, 400);
    }
    search.delete("topic");
    search.delete("cursor");
    const params = connectParams(search);
    const admission = await switchboard.admit(params, c.req.header("origin") ?? null);
    if (!admission.ok) return c.json({ error: admission.error }, admission.status);
    const connection = new SseConnection(switchboard.config.maxOutboundBytes);
    connection.write(`retry: ${_jitteredRetry()}\n\n`);
    const session = switchboard.openSession(connection, params, admission.identity);
    for (const [i, topic] of topics.entries()) {
      const result = await session.join(topic, { ...params }, String(i + 1), resume.get(topic));
      if (result.status === "error") {
        session.close("refused");
        connection.close(1008, "join refused");
        const reason = String(result.response.reason ?? "join refused");
        return c.json({ error: `join of "${topic}" refused: ${reason}`, ...result.response }, 403);
      }
    }
    connection.onEnd = (reason) => {
      live.delete(connection);
      if (live.size === 0 && ticker) {
        clearInterval(ticker);
        ticker = undefined;
      }
      session.close(reason);
    };
    live.add(connection);
    startTicker();
    return new Response(connection.stream, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        "x-accel-buffering": "no",
      },
    });
  });
  return app;
}
