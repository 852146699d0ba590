/**
 * `/socket/longpoll`: Phoenix's long-poll transport, so the official client works with
 * `transport: LongPoll` and with its automatic fallback. Every answer is HTTP 200 with JSON
 * `{status, token?, messages?}`; `messages` are encoded frames (strings). Sessions live on the
 * node that created them and end after `LONGPOLL_TIMEOUT_MS` without a poll.
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { fromBase64 } from "../lib/core/base64.ts";
import { EndReason, RefusalReason, unsupportedVsnError } from "../lib/core/protocol.ts";
import type { Session } from "../lib/core/session.ts";
import { serializerFor } from "../lib/core/serializer.ts";
import type { Config } from "../lib/config.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import { type LongPollConnection, LongPollSessions } from "../lib/transports/longpoll.ts";
import { readBytesBody } from "./body.ts";
import { connectParams } from "./params.ts";
import { clientAddress } from "./client_address.ts";

/** How long a poll is held open when nothing is queued (the client's own timeout is 20 s). */
const _HOLD_MS = 10_000;
/** The client sends at most this many frames per POST. */
const _MAX_LINES = 100;
const _encoder = new TextEncoder();
/** The session ids this transport hands out (`crypto.randomUUID()`); a JWT never matches. */
const _SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Seconds a client refused by the long-poll budget is told to wait. */
const _RETRY_AFTER_SECONDS = 5;
const _JSON_HEADERS = {
  "content-type": "application/json",
  "cache-control": "no-store",
} as const;

/** A POST line that is not JSON is a binary frame in base64 (the client's `LongPoll.send`). */
function receiveBase64(session: Session, line: string): void {
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(line);
  } catch {
    return session.rejectFrame("a line that is not a JSON frame must be a base64 binary frame");
  }
  session.receiveBinary(bytes);
}

/** The long-poll transport's routes. */
export function longpollRoutes(switchboard: Switchboard<Config>): Hono {
  const app = new Hono();
  const polls = new LongPollSessions({
    timeoutMs: switchboard.config.longpollTimeoutMs,
    firstPollMs: switchboard.config.longpoll.firstPollMs,
    timers: switchboard.timers,
    clock: switchboard.clock,
  });
  const reply = (c: Context, body: Record<string, unknown>) => {
    c.header("cache-control", "no-store");
    return c.json(body, 200);
  };

  app.get("/socket/longpoll", async (c) => {
    const params = connectParams(new URL(c.req.url).searchParams);
    const serializer = serializerFor(params.vsn);
    if (!serializer) {
      const reason = RefusalReason.unsupportedVsn;
      return reply(c, { status: 403, error: unsupportedVsnError(params.vsn), reason });
    }
    const existing = polls.get(params.token);
    // A session id this node no longer knows (ended, or another node's): Phoenix answers 410
    // and the client opens a new session. It is not a connect token to verify.
    if (!existing && _SESSION_ID.test(params.token ?? "")) return reply(c, { status: 410 });
    if (!existing || existing.closed) {
      if (existing) polls.end(existing, EndReason.closed);
      const authToken = c.req.header("x-phoenix-authtoken");
      if (authToken) params.token = authToken;
      const admission = await switchboard.admit(params, c.req.header("origin") ?? null);
      if (!admission.ok) {
        return reply(c, { status: 403, error: admission.error, reason: admission.reason });
      }
      // Issue 21: sessions without a socket have their own budget, per address too.
      const ticket = switchboard.longPolls.take(clientAddress(c));
      if (!ticket.ok) {
        switchboard.metrics.inc("switchboard_refused_total", { reason: "longpoll_budget" });
        c.header("retry-after", String(_RETRY_AFTER_SECONDS));
        c.header("cache-control", "no-store");
        return c.json({ status: 429, error: `${ticket.error}: retry later` }, 429);
      }
      const connection = polls.create({
        serializer,
        maxQueued: switchboard.config.maxOutboundBytes,
      });
      connection.onEnd = ticket.release;
      connection.session = switchboard.openSession({
        connection,
        params,
        identity: admission.identity,
        serializer,
      });
      return reply(c, { status: 410, token: connection.token, messages: [] });
    }
    polls.touch(existing);
    if (existing.queue.length > 0) return reply(c, answer(existing));
    return heldPoll(existing);
  });

  /** Answers a poll with what is queued (or 410 once the session has closed). */
  const answer = (connection: LongPollConnection): Record<string, unknown> => {
    polls.touch(connection);
    if (connection.closed && connection.queue.length === 0) {
      polls.end(connection, EndReason.closed);
      return { status: 410, token: connection.token, messages: [] };
    }
    const messages = connection.drain();
    return { status: messages.length ? 200 : 204, token: connection.token, messages };
  };

  /**
   * Nothing queued: the poll is held up to {@link _HOLD_MS}. The headers go out at once and the
   * JSON body when there is something to send; a client that goes away (tab closed,
   * disconnect) cancels the body, so the poll stops waiting and what is queued stays for the
   * next poll. (`request.signal` would tell the same, but Deno also aborts it after every
   * successful response, warns when it is read, and Workers need a flag for it.)
   */
  const heldPoll = (connection: LongPollConnection): Response => {
    const gone = new AbortController();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        connection.wait(_HOLD_MS, gone.signal).then(() => {
          if (gone.signal.aborted) return;
          controller.enqueue(_encoder.encode(JSON.stringify(answer(connection))));
          controller.close();
        });
      },
      cancel() {
        gone.abort();
        polls.touch(connection);
      },
    });
    return new Response(body, { status: 200, headers: _JSON_HEADERS });
  };

  app.post("/socket/longpoll", async (c) => {
    const token = new URL(c.req.url).searchParams.getAll("token").at(-1);
    const connection = polls.get(token);
    if (!connection?.session || connection.closed) return reply(c, { status: 410 });
    // Read while it streams, up to the limit: an oversized POST is never buffered whole.
    const body = await readBytesBody(c.req.raw, switchboard.config.maxLongpollBodyBytes);
    if (!body.ok) {
      c.header("cache-control", "no-store");
      return c.json({ status: body.status, error: body.error }, body.status);
    }
    const lines = new TextDecoder().decode(body.value).split("\n").filter((line) => line !== "");
    if (lines.length > _MAX_LINES) {
      return reply(c, { status: 400, error: `at most ${_MAX_LINES} frames per request` });
    }
    for (const line of lines) {
      if (line.startsWith("[") || line.startsWith("{")) connection.session.receiveText(line);
      else receiveBase64(connection.session, line);
    }
    return reply(c, { status: 200 });
  });
  return app;
}
