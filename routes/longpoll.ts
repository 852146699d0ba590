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
import { EndReason } from "../lib/core/protocol.ts";
import type { Session } from "../lib/core/session.ts";
import { serializerFor } from "../lib/core/serializer.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import { LongPollSessions } from "../lib/transports/longpoll.ts";
import { connectParams } from "./params.ts";

/** How long a poll is held open when nothing is queued (the client's own timeout is 20 s). */
const _HOLD_MS = 10_000;
/** The client sends at most this many frames per POST. */
const _MAX_LINES = 100;

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
export function longpollRoutes(switchboard: Switchboard): Hono {
  const app = new Hono();
  const polls = new LongPollSessions({
    timeoutMs: switchboard.config.longpollTimeoutMs,
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
    if (!serializer) return reply(c, { status: 403, error: `unsupported vsn "${params.vsn}"` });
    const existing = polls.get(params.token);
    if (!existing || existing.closed) {
      if (existing) polls.end(existing, EndReason.closed);
      const authToken = c.req.header("x-phoenix-authtoken");
      if (authToken) params.token = authToken;
      const admission = await switchboard.admit(params, c.req.header("origin") ?? null);
      if (!admission.ok) return reply(c, { status: 403, error: admission.error });
      const connection = polls.create({
        serializer,
        maxQueued: switchboard.config.maxOutboundBytes,
      });
      connection.session = switchboard.openSession({
        connection,
        params,
        identity: admission.identity,
        serializer,
      });
      return reply(c, { status: 410, token: connection.token, messages: [] });
    }
    polls.touch(existing);
    // A client that goes away mid-poll (tab closed, disconnect) stops counting as polling.
    await existing.wait(_HOLD_MS, c.req.raw.signal);
    polls.touch(existing);
    if (existing.closed && existing.queue.length === 0) {
      polls.end(existing, EndReason.closed);
      return reply(c, { status: 410, token: existing.token, messages: [] });
    }
    const messages = existing.drain();
    return reply(c, { status: messages.length ? 200 : 204, token: existing.token, messages });
  });

  app.post("/socket/longpoll", async (c) => {
    const token = new URL(c.req.url).searchParams.getAll("token").at(-1);
    const connection = polls.get(token);
    if (!connection?.session || connection.closed) return reply(c, { status: 410 });
    const lines = (await c.req.text()).split("\n").filter((line) => line !== "");
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
