/**
 * Supabase Realtime's REST broadcasts, as `@supabase/realtime-js` sends them: the batch
 * `POST /api/broadcast` `{messages: [{topic, event, payload, private?}]}` (its `send()` fallback)
 * and `POST /api/broadcast/:topic/events/:event` with a JSON or `application/octet-stream` body
 * (`httpSend()`). Topics come without the `realtime:` prefix (one that has it is kept). Both
 * answer 202. Authorized by `API_TOKEN` (bearer or `apikey` header), or by a user token (bearer,
 * verified with `SOCKET_SECRET`) for `realtime:*` topics within the token's scope.
 * @module
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { inScope } from "../lib/auth.ts";
import type { Config } from "../lib/config.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import { topicProblem } from "../lib/core/topic.ts";
import { describeErrors } from "../lib/core/validation.ts";
import { payloadProblem } from "../lib/core/limits.ts";
import type { Payload } from "../lib/core/message.ts";
import { MessageTooLargeError } from "../lib/core/broker.ts";
import { refuseInvalidPayloads } from "./payload_check.ts";
import { ReplyReason, SupabaseEvent, unmatchedTopicError } from "../lib/core/protocol.ts";
import { REALTIME_PREFIX, realtimeTopic, userBroadcast } from "../lib/supabase/realtime.ts";
import { type ApiCaller, apiCaller, unauthorized } from "./api_auth.ts";
import { readBytesBody, readJsonBody } from "./body.ts";

/** Topic and event names must fit a binary frame's one-byte lengths. */
const _MAX_NAME_BYTES = 255;

const _name = z.string().min(1, "must be a non-empty string").refine(
  (t) => t.isWellFormed() && new TextEncoder().encode(t).length <= _MAX_NAME_BYTES,
  `must be well-formed Unicode of at most ${_MAX_NAME_BYTES} bytes`,
);

const _batch = z.object({
  messages: z.array(
    z.object({
      topic: _name,
      event: _name,
      payload: z.unknown().default({}),
      private: z.boolean().optional(),
    }),
  ).min(1).max(1000),
});

/** True when a `POST /api/broadcast` body has Supabase's shape `{messages: [...]}`. */
export function isRealtimeBatch(body: unknown): body is { messages: unknown } {
  return typeof body === "object" && body !== null && !Array.isArray(body) &&
    "messages" in body && !("topic" in body);
}

/** What {@link publishRealtimeBatch} needs. */
export interface RealtimeBatch {
  c: Context;
  switchboard: Switchboard<Config>;
  caller: ApiCaller;
  body: { messages: unknown };
}

/** Publishes a batch `{messages: [{topic, event, payload}]}` as user broadcasts; 202. */
export async function publishRealtimeBatch(
  { c, switchboard, caller, body }: RealtimeBatch,
): Promise<Response> {
  const parsed = _batch.safeParse(body);
  if (!parsed.success) {
    return c.json({ error: `invalid body: ${describeErrors(parsed.error)}` }, 400);
  }
  const messages = parsed.data.messages.map((m) => ({ ...m, topic: realtimeTopic(m.topic) }));
  // The prefixed topic obeys the one topic rule (lib/core/topic.ts), like every entry point.
  for (const [i, m] of messages.entries()) {
    const problem = topicProblem(m.topic);
    if (problem) return c.json({ error: `invalid body: messages[${i}].topic: ${problem}` }, 400);
  }
  const refused = await _refuse(c, switchboard, caller, messages.map((m) => m.topic));
  if (refused) return refused;
  const index = messages.findIndex((m) => !switchboard.hasChannel(m.topic));
  if (index >= 0) {
    const topic = messages[index].topic;
    return c.json({
      error: `invalid body: messages[${index}].topic: no channel matches "${topic}"`,
    }, 400);
  }
  const broadcasts = messages.map((m) => ({
    topic: m.topic,
    event: SupabaseEvent.broadcast,
    payload: userBroadcast(m.event, m.payload),
  }));
  // All or nothing (issue 21): every message is checked before any is published; depth first
  // (a schema would recurse into a hostile value), then the channel's schema, then the bus.
  const tooDeep = _refuseDepth(c, switchboard, broadcasts);
  if (tooDeep) return tooDeep;
  const invalid = refuseInvalidPayloads(c, switchboard, broadcasts, (i) => `messages[${i}].`);
  if (invalid) return invalid;
  const tooLarge = _refuseSize(c, switchboard, broadcasts);
  if (tooLarge) return tooLarge;
  for (const b of broadcasts) switchboard.publish(b.topic, b.event, b.payload);
  switchboard.metrics.inc("switchboard_api_messages_total", undefined, messages.length);
  return c.json({ accepted: messages.length }, 202);
}

/** `POST /api/broadcast/:topic/events/:event`, realtime-js's `httpSend()`. */
export function realtimeApiRoutes(switchboard: Switchboard<Config>): Hono {
  const app = new Hono();
  app.post("/api/broadcast/:topic/events/:event", async (c) => {
    const caller = apiCaller(c.req.raw.headers, switchboard.config.apiToken);
    if (!caller.admin && caller.bearer === undefined) return unauthorized(c);
    const names = z.object({ topic: _name, event: _name }).safeParse(c.req.param());
    if (!names.success) {
      return c.json({ error: `invalid path: ${describeErrors(names.error)}` }, 400);
    }
    const topic = realtimeTopic(names.data.topic);
    const problem = topicProblem(topic);
    if (problem) return c.json({ error: `invalid path: topic: ${problem}` }, 400);
    const { event } = names.data;
    const refused = await _refuse(c, switchboard, caller, [topic]);
    if (refused) return refused;
    if (!switchboard.hasChannel(topic)) {
      return c.json({ error: unmatchedTopicError(topic), reason: ReplyReason.unmatchedTopic }, 404);
    }
    const max = switchboard.config.maxApiBodyBytes;
    const binary = c.req.header("content-type")?.startsWith("application/octet-stream");
    if (binary) {
      const body = await readBytesBody(c.req.raw, max);
      if (!body.ok) return c.json({ error: body.error }, body.status);
      const meta = { type: SupabaseEvent.broadcast, event };
      try {
        switchboard.publish(topic, SupabaseEvent.broadcast, meta, body.value);
      } catch (err) {
        if (!(err instanceof MessageTooLargeError)) throw err;
        switchboard.metrics.inc("switchboard_refused_total", { reason: "message_too_large" });
        return c.json({ error: err.message }, 413);
      }
    } else {
      const body = await readJsonBody(c.req.raw, max);
      if (!body.ok) return c.json({ error: body.error }, body.status);
      const payload = userBroadcast(event, body.value);
      const message = { topic, event: SupabaseEvent.broadcast, payload };
      const invalid = _refuseDepth(c, switchboard, [message]) ??
        refuseInvalidPayloads(c, switchboard, [message], () => "") ??
        _refuseSize(c, switchboard, [message]);
      if (invalid) return invalid;
      switchboard.publish(topic, SupabaseEvent.broadcast, payload);
    }
    switchboard.metrics.inc("switchboard_api_messages_total");
    return c.json({ accepted: 1 }, 202);
  });
  return app;
}

/** A 400 when a payload nests past `MAX_PAYLOAD_DEPTH`; undefined when none does. */
function _refuseDepth(
  c: Context,
  switchboard: Switchboard<Config>,
  messages: { topic: string; event: string; payload: Payload }[],
): Response | undefined {
  const maxDepth = switchboard.config.maxPayloadDepth;
  for (const [i, m] of messages.entries()) {
    const problem = payloadProblem(m.payload, { maxDepth });
    if (problem === undefined) continue;
    switchboard.metrics.inc("switchboard_refused_total", { reason: ReplyReason.invalidPayload });
    const where = messages.length > 1 ? `messages[${i}].payload` : "payload";
    return c.json({ error: `invalid body: ${where} ${problem}` }, 400);
  }
  return undefined;
}

/** A 413 when a message is too large for the cluster bus; undefined when all fit. */
function _refuseSize(
  c: Context,
  switchboard: Switchboard<Config>,
  messages: { topic: string; event: string; payload: Payload }[],
): Response | undefined {
  const tooLarge = switchboard.refusalOf(messages);
  if (tooLarge === undefined) return undefined;
  switchboard.metrics.inc("switchboard_refused_total", { reason: ReplyReason.messageTooLarge });
  return c.json({ error: tooLarge }, 413);
}

/**
 * Undefined when the caller may publish to every topic: it holds `API_TOKEN`, or its bearer is
 * a valid user token and every topic is a `realtime:*` one in the token's scope.
 */
async function _refuse(
  c: Context,
  switchboard: Switchboard<Config>,
  caller: ApiCaller,
  topics: string[],
): Promise<Response | undefined> {
  if (caller.admin) return undefined;
  const check = caller.bearer === undefined
    ? undefined
    : await switchboard.verifyIdentity(caller.bearer);
  if (!check?.ok) {
    const why = check ? ` (user ${check.error})` : "";
    return unauthorized(c, ` or a user token signed with SOCKET_SECRET${why}`);
  }
  const scope = check.identity.claims?.scope;
  const outside = topics.find((t) =>
    !t.startsWith(REALTIME_PREFIX) || (scope !== undefined && !inScope(scope, t))
  );
  if (outside !== undefined) {
    return c.json({ error: `this token may not broadcast to "${outside}"` }, 403);
  }
  return undefined;
}
