/**
 * `GET /events?topic=T[&topic=T2…][&delta=fossil]`: Server-Sent Events. Each message on a topic
 * is one event `event: E` / `data: {"topic": T, "payload": P}` with an `id:` cursor over all the
 * stream's topics; the join reply comes first as `event: joined`. With `delta=fossil`, messages
 * after the first may come as `data: {"topic": T, "delta": D}` (docs/deltas.md).
 * @module
 */
import { DELTA_FORMAT } from "../lib/core/delta.ts";
import { topicProblem } from "../lib/core/topic.ts";
import { type Context, Hono } from "hono";
import { CloseCode, EndReason, ReplyReason, unmatchedTopicError } from "../lib/core/protocol.ts";
import type { Config } from "../lib/config.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import { type Cursor, CursorError, parseCursor, unusableCursor } from "../lib/resume/cursor.ts";
import { jitteredRetryMs, SseConnection } from "../lib/transports/sse.ts";
import { connectParams } from "./params.ts";

/** More topics than this on one stream is refused. */
const _MAX_TOPICS = 32;

/**
 * Settles when the response is delivered or its connection closed: Deno's
 * `ServeHandlerInfo.completed` (Hono's env on Deno); undefined where the runtime has none.
 */
function responseDone(c: Context): Promise<unknown> | undefined {
  const completed = (c.env as { completed?: unknown } | undefined)?.completed;
  return completed instanceof Promise ? completed.catch(() => {}) : undefined;
}

/** The SSE transport's routes. */
export function sseRoutes(switchboard: Switchboard<Config>): Hono {
  const app = new Hono();
  const live = new Set<SseConnection>();
  let stopTicker: (() => void) | undefined;
  // One timer for every stream: a per-stream interval costs memory and wakeups per viewer.
  const startTicker = () => {
    stopTicker ??= switchboard.timers.every(switchboard.config.sseHeartbeatMs, () => {
      for (const connection of live) connection.heartbeat();
    });
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
    for (const topic of topics) {
      const problem = topicProblem(topic);
      if (problem) return c.json({ error: `invalid topic: ${problem}` }, 400);
    }
    const unknown = topics.find((t) => !switchboard.hasChannel(t));
    if (unknown !== undefined) {
      return c.json(
        { error: unmatchedTopicError(unknown), reason: ReplyReason.unmatchedTopic },
        404,
      );
    }
    // EventSource sends Last-Event-ID when it reconnects; `cursor` serves clients that poll
    // first (GET /api/topics/:topic gives one) or cannot set headers.
    const lastEventId = c.req.header("last-event-id");
    let resume: Cursor;
    try {
      resume = parseCursor(lastEventId ?? search.get("cursor") ?? "");
    } catch (err) {
      if (!(err instanceof CursorError)) throw err;
      // A `?cursor=` someone typed gets told what is wrong. A Last-Event-ID is EventSource's
      // own (older format after an upgrade, too long): any 4xx would end the stream for good,
      // so every topic starts from now with a `reset` instead.
      if (lastEventId === undefined) return c.json({ error: err.message }, 400);
      resume = new Map(
        topics.map((t) => [t, unusableCursor(ReplyReason.cursorUnusable)]),
      );
    }
    // Asked of every topic's join (which refuses any other value); not a connect param.
    const delta = search.get("delta");
    if (delta !== null && delta !== DELTA_FORMAT) {
      return c.json(
        { error: `delta must be "${DELTA_FORMAT}" (or left out for full payloads)` },
        400,
      );
    }
    search.delete("topic");
    search.delete("cursor");
    search.delete("delta");
    const params = connectParams(search);
    const admission = await switchboard.admit(params, c.req.header("origin") ?? null);
    if (!admission.ok) {
      return c.json({ error: admission.error, reason: admission.reason }, admission.status);
    }
    // Every topic's access before the stream opens: no token where one is needed is 401.
    for (const topic of topics) {
      const access = switchboard.authorize(admission.identity, topic);
      if (!access.ok) return c.json({ error: access.error, reason: access.reason }, access.status);
    }
    const connection = new SseConnection({
      maxBuffered: switchboard.config.maxOutboundBytes,
      windowMs: switchboard.config.history.maxAgeMs,
      clock: switchboard.clock,
      closeTimeoutMs: switchboard.config.closeTimeoutMs,
    });
    connection.retry(jitteredRetryMs());
    const session = switchboard.openSession({ connection, params, identity: admission.identity });
    for (const [i, topic] of topics.entries()) {
      const payload = delta === null ? { ...params } : { ...params, delta };
      const result = await session.join(topic, payload, String(i + 1), resume.get(topic));
      if (result.status === "error") {
        session.close(EndReason.refused);
        connection.close(CloseCode.policyViolation, "join refused");
        const reason = String(result.response.reason ?? "join refused");
        return c.json({ error: `join of "${topic}" refused: ${reason}`, ...result.response }, 403);
      }
    }
    connection.onEnd = (reason) => {
      live.delete(connection);
      if (live.size === 0) {
        stopTicker?.();
        stopTicker = undefined;
      }
      // A stream the server closed (shutdown, expired token) had its session closed already,
      // with the reason that counts.
      if (reason !== EndReason.closed) session.close(reason);
    };
    live.add(connection);
    // Counted against MAX_CONNECTIONS until its socket is done with it, not its session:
    // a stream cut while its reader stopped reading keeps its socket (issue 21).
    switchboard.sseResponses.hold(responseDone(c) ?? connection.finished);
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
