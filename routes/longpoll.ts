/**
 * `/socket/longpoll`: Phoenix's long-poll transport, so the official client works with
 * `transport: LongPoll` and with its automatic fallback. Every answer is HTTP 200 with JSON
 * `{status, token?, messages?}`; `messages` are encoded frames (strings). Sessions live on the
 * node that created them and end after `LONGPOLL_TIMEOUT_MS` without a poll.
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { Broadcast } from "../lib/core/broadcast.ts";
import type { Message } from "../lib/core/message.ts";
import { encodeFrame, parseVsn, type Vsn } from "../lib/core/serializer.ts";
import type { Connection, Session } from "../lib/core/session.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import { connectParams } from "./params.ts";

/** How long a poll is held open when nothing is queued (the client's own timeout is 20 s). */
const _HOLD_MS = 10_000;
/** The client sends at most this many frames per POST. */
const _MAX_LINES = 100;

/** Queues frames between polls and hands them to the waiting poll. */
class LongPollConnection implements Connection {
  readonly transport = "longpoll";
  readonly queue: string[] = [];
  /** Characters queued: a client that stops polling is dropped past the outbound limit. */
  #queued = 0;
  session?: Session;
  lastPoll = Date.now();
  closed = false;
  #waiter?: () => void;

  constructor(readonly token: string, readonly vsn: Vsn, readonly maxQueued: number) {}

  /** Takes everything queued. */
  drain(): string[] {
    this.#queued = 0;
    return this.queue.splice(0);
  }

  sendMessage(msg: Message): void {
    this.#enqueue(encodeFrame(msg, this.vsn));
  }

  sendBroadcast(b: Broadcast): void {
    this.#enqueue(this.vsn === "2.0.0" ? b.v2 : b.v1);
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
      this.session?.close("slow_consumer");
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

/** The long-poll transport's routes. */
export function longpollRoutes(switchboard: Switchboard): Hono {
  const app = new Hono();
  const sessions = new Map<string, LongPollConnection>();
  let sweeper: ReturnType<typeof setInterval> | undefined;

  const end = (connection: LongPollConnection, reason: string) => {
    sessions.delete(connection.token);
    connection.closed = true;
    connection.session?.close(reason);
    if (sessions.size === 0 && sweeper !== undefined) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };
  // Abandoned sessions (no poll for a while) end: their channels stop, their presences leave.
  const sweep = () => {
    const deadline = Date.now() - switchboard.config.longpollTimeoutMs;
    for (const connection of sessions.values()) {
      if (connection.closed || (!connection.waiting && connection.lastPoll < deadline)) {
        end(connection, "timeout");
      }
    }
  };
  const reply = (c: Context, body: Record<string, unknown>) => {
    c.header("cache-control", "no-store");
    return c.json(body, 200);
  };

  app.get("/socket/longpoll", async (c) => {
    const params = connectParams(new URL(c.req.url).searchParams);
    const vsn = parseVsn(params.vsn);
    if (!vsn) return reply(c, { status: 403, error: `unsupported vsn "${params.vsn}"` });
    const existing = params.token === undefined ? undefined : sessions.get(params.token);
    if (!existing || existing.closed) {
      if (existing) end(existing, "closed");
      const authToken = c.req.header("x-phoenix-authtoken");
      if (authToken) params.token = authToken;
      const admission = await switchboard.admit(params, c.req.header("origin") ?? null);
      if (!admission.ok) return reply(c, { status: 403, error: admission.error });
      const token = crypto.randomUUID();
      const connection = new LongPollConnection(token, vsn, switchboard.config.maxOutboundBytes);
      connection.session = switchboard.openSession(connection, params, admission.identity, vsn);
      sessions.set(token, connection);
      if (sweeper === undefined) {
        sweeper = setInterval(sweep, Math.min(5_000, switchboard.config.longpollTimeoutMs / 3));
        Deno.unrefTimer(sweeper);
      }
      return reply(c, { status: 410, token, messages: [] });
    }
    existing.lastPoll = Date.now();
    // A client that goes away mid-poll (tab closed, disconnect) stops counting as polling.
    await existing.wait(_HOLD_MS, c.req.raw.signal);
    existing.lastPoll = Date.now();
    if (existing.closed && existing.queue.length === 0) {
      end(existing, "closed");
      return reply(c, { status: 410, token: existing.token, messages: [] });
    }
    const messages = existing.drain();
    return reply(c, { status: messages.length ? 200 : 204, token: existing.token, messages });
  });

  app.post("/socket/longpoll", async (c) => {
    const token = new URL(c.req.url).searchParams.getAll("token").at(-1);
    const connection = token === undefined ? undefined : sessions.get(token);
    if (!connection?.session || connection.closed) return reply(c, { status: 410 });
    const lines = (await c.req.text()).split("\n").filter((line) => line !== "");
    if (lines.length > _MAX_LINES) {
      return reply(c, { status: 400, error: `at most ${_MAX_LINES} frames per request` });
    }
    for (const line of lines) {
      if (line.startsWith("[") || line.startsWith("{")) connection.session.receiveText(line);
      else {
        connection.session.send({
          joinRef: null,
          ref: null,
          topic: "phoenix",
          event: "phx_error",
          payload: { reason: "bad_frame", detail: "binary frames are not supported; send text" },
        });
      }
    }
    return reply(c, { status: 200 });
  });
  return app;
}
