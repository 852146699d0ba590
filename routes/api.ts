/**
 * The HTTP API: `POST /api/broadcast` (bearer `API_TOKEN`), `GET /api/topics/:topic` (last
 * message with `ETag`), `GET /api/presence/:topic` and `GET /api/occupancy/:topic` (every
 * node's subscribers and users). Reads ask the topic's channel, like a
 * join: the API token reads everything, a connect token (bearer or `?token=`) what it may
 * join, and a visitor without a token the public channels. Supabase Realtime's REST broadcasts
 * are in `realtime_api.ts`.
 * @module
 */
import { type Context, Hono } from "hono";
import { topicProblem } from "../lib/core/topic.ts";
import { z } from "zod";
import { bearerToken } from "../lib/auth.ts";
import { eventNameProblem, ReplyReason, unmatchedTopicError } from "../lib/core/protocol.ts";
import type { Config } from "../lib/config.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import { describeErrors } from "../lib/core/validation.ts";
import { measureJson } from "../lib/core/limits.ts";
import { apiCaller, sameSecret, unauthorized } from "./api_auth.ts";
import { readJsonBody } from "./body.ts";
import { isRealtimeBatch, publishRealtimeBatch, realtimeApiRoutes } from "./realtime_api.ts";
import { notModified } from "./etag.ts";
import { refuseInvalidPayloads } from "./payload_check.ts";

/** A topic name in an API body, refused with the topic rule's wording (`topic.ts`). */
export const topicField = z.string().superRefine((topic, ctx) => {
  const problem = topicProblem(topic);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

/** The body schema of one message; payloads nest at most `maxDepth` levels. */
function _messageSchema(maxDepth: number) {
  return z.object({
    topic: topicField,
    event: z.string().superRefine((e, ctx) => {
      const problem = eventNameProblem(e);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
    }),
    // A refine, not a superRefine: with a superRefine here the server's RSS grew 67-90 MiB in
    // security_test's 30 MiB slow-consumer step instead of under 40 (measured, not explained).
    payload: z.record(z.string(), z.unknown(), "must be a JSON object").refine(
      (p) => measureJson(p, { depth: maxDepth }).depth <= maxDepth,
      `nests deeper than ${maxDepth} levels (MAX_PAYLOAD_DEPTH)`,
    ).default({}),
  });
}

/** The API routes. */
export function apiRoutes(switchboard: Switchboard<Config>): Hono {
  const app = new Hono();
  const { apiToken } = switchboard.config;
  const _message = _messageSchema(switchboard.config.maxPayloadDepth);
  const _batch = z.array(_message).min(1).max(1000);
  const isApiToken = (c: Context) => {
    const token = bearerToken(c.req.header("authorization"));
    return apiToken !== undefined && token !== undefined && sameSecret(token, apiToken);
  };
  /**
   * Whether `topic` may be read: a valid name (400), served by a channel (404), and allowed by
   * that channel for the reader's identity, as a join would be; a response refuses.
   */
  const refuseRead = async (c: Context, topic: string): Promise<Response | undefined> => {
    const problem = topicProblem(topic);
    if (problem) return c.json({ error: `invalid topic: ${problem}` }, 400);
    if (!switchboard.hasChannel(topic)) {
      return c.json({ error: unmatchedTopicError(topic), reason: ReplyReason.unmatchedTopic }, 404);
    }
    if (isApiToken(c)) return undefined;
    const token = bearerToken(c.req.header("authorization")) ?? c.req.query("token");
    const identity = await switchboard.identify(token);
    if (!identity.ok) {
      return c.json({ error: identity.error, reason: identity.reason }, identity.status);
    }
    const access = switchboard.authorize(identity.identity, topic);
    if (access.ok) return undefined;
    if (access.status === 401) c.header("www-authenticate", 'Bearer realm="switchboard"');
    return c.json({ error: access.error, reason: access.reason }, access.status);
  };
  // CORS (every endpoint, `ALLOWED_ORIGINS`) is the app's: see routes/app.ts.

  app.post("/api/broadcast", async (c) => {
    const caller = apiCaller(c.req.raw.headers, apiToken);
    // Another bearer token may be a user token, which Supabase's batch shape accepts.
    if (!caller.admin && caller.bearer === undefined) return unauthorized(c);
    const body = await readJsonBody(c.req.raw, switchboard.config.maxApiBodyBytes);
    if (!body.ok) return c.json({ error: body.error }, body.status);
    if (isRealtimeBatch(body.value)) {
      return publishRealtimeBatch({ c, switchboard, caller, body: body.value });
    }
    if (!caller.admin) return unauthorized(c);
    // Not a union: zod would report a union failure at the root instead of naming the field.
    const parsed = Array.isArray(body.value)
      ? _batch.safeParse(body.value)
      : _message.safeParse(body.value);
    if (!parsed.success) {
      return c.json({ error: `invalid body: ${describeErrors(parsed.error)}` }, 400);
    }
    const messages = Array.isArray(parsed.data) ? parsed.data : [parsed.data];
    const index = messages.findIndex((m) => !switchboard.hasChannel(m.topic));
    if (index >= 0) {
      const field = Array.isArray(parsed.data) ? `[${index}].topic` : "topic";
      return c.json({
        error: `invalid body: ${field}: no channel matches "${messages[index].topic}"`,
      }, 400);
    }
    // All or nothing: a payload its channel's `messages` schema refuses, or a message too large
    // for the cluster bus, refuses the whole body.
    const invalid = refuseInvalidPayloads(
      c,
      switchboard,
      messages,
      (i) => Array.isArray(parsed.data) ? `[${i}].` : "",
    );
    if (invalid) return invalid;
    const tooLarge = switchboard.refusalOf(messages);
    if (tooLarge) return c.json({ error: tooLarge }, 413);
    for (const m of messages) switchboard.publish(m.topic, m.event, m.payload);
    switchboard.metrics.inc("switchboard_api_messages_total", undefined, messages.length);
    return c.json({ accepted: messages.length }, 202);
  });

  app.route("/", realtimeApiRoutes(switchboard));

  app.get("/api/topics/:topic", async (c) => {
    const topic = c.req.param("topic");
    const refused = await refuseRead(c, topic);
    if (refused) return refused;
    const last = await switchboard.lastMessage(topic);
    const etag = `"${last ? `${last.stream}.${last.seq}` : "0"}"`;
    c.header("etag", etag);
    // Shared caches may keep only what anyone may read.
    const audience = switchboard.isPublic(topic) ? "public" : "private";
    c.header("cache-control", `${audience}, max-age=2, stale-while-revalidate=5`);
    if (notModified(c.req.header("if-none-match"), etag)) return c.body(null, 304);
    return c.json({
      topic,
      event: last?.event ?? null,
      payload: last?.payload ?? null,
      at: last ? new Date(last.at).toISOString() : null,
      // Stream from here on: GET /events?topic=…&cursor=<cursor> (or as Last-Event-ID).
      cursor: switchboard.cursorOf(topic),
    });
  });

  app.get("/api/presence/:topic", async (c) => {
    const topic = c.req.param("topic");
    const refused = await refuseRead(c, topic);
    if (refused) return refused;
    c.header("cache-control", "no-store");
    return c.json({ topic, presences: switchboard.presenceOf(topic) });
  });

  app.get("/api/occupancy/:topic", async (c) => {
    const topic = c.req.param("topic");
    const refused = await refuseRead(c, topic);
    if (refused) return refused;
    c.header("cache-control", "no-store");
    return c.json({ topic, ...switchboard.extensions.occupancy.of(topic) });
  });
  return app;
}
