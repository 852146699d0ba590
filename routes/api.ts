/**
 * The HTTP API: `POST /api/broadcast` (bearer `API_TOKEN`), `GET /api/topics/:topic` (last
 * message with `ETag`) and `GET /api/presence/:topic`.
 * @module
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import { z } from "zod";
import type { Switchboard } from "../lib/core/switchboard.ts";
import { describeErrors } from "../lib/core/validation.ts";
import { readJsonBody } from "./body.ts";

const _RESERVED = /^(phx_|presence_)|^(heartbeat|joined)$/;

const _message = z.object({
  topic: z.string().min(1, "must be a non-empty string").refine(
    (t) => t.isWellFormed(),
    "must be well-formed Unicode",
  ),
  event: z.string().min(1, "must be a non-empty string").max(128).refine(
    (e) => !_RESERVED.test(e),
    "is reserved by the protocol (phx_*, presence_*, heartbeat, joined)",
  ),
  payload: z.record(z.string(), z.unknown(), "must be a JSON object").default({}),
});
const _batch = z.array(_message).min(1).max(1000);

/** Constant-time comparison, so the token cannot be guessed byte by byte from timing. */
function _sameSecret(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  if (x.length !== y.length) return false;
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

/** The API routes. */
export function apiRoutes(switchboard: Switchboard): Hono {
  const app = new Hono();
  const { apiToken, allowedOrigins } = switchboard.config;
  // Explicit CORS: browsers on the allowed origins (any, when ALLOWED_ORIGINS is unset) may
  // call the API; the bearer token still guards publishing.
  app.use(
    "/api/*",
    cors({
      origin: allowedOrigins ?? "*",
      allowMethods: ["GET", "POST", "OPTIONS"],
      allowHeaders: ["Authorization", "Content-Type", "If-None-Match"],
      exposeHeaders: ["ETag"],
      maxAge: 600,
    }),
  );

  app.post("/api/broadcast", async (c) => {
    if (apiToken !== undefined) {
      const header = c.req.header("authorization") ?? "";
      if (!header.startsWith("Bearer ") || !_sameSecret(header.slice(7), apiToken)) {
        c.header("www-authenticate", 'Bearer realm="switchboard"');
        return c.json(
          { error: "missing or wrong token: send Authorization: Bearer <API_TOKEN>" },
          401,
        );
      }
    }
    const body = await readJsonBody(c.req.raw, switchboard.config.maxApiBodyBytes);
    if (!body.ok) return c.json({ error: body.error }, body.status);
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
    for (const m of messages) switchboard.publish(m.topic, m.event, m.payload);
    switchboard.metrics.inc("switchboard_api_messages_total", undefined, messages.length);
    return c.json({ accepted: messages.length }, 202);
  });

  app.get("/api/topics/:topic", async (c) => {
    const topic = c.req.param("topic");
    if (!switchboard.hasChannel(topic)) {
      return c.json({ error: `unknown topic "${topic}": no channel matches it` }, 404);
    }
    const last = await switchboard.lastMessage(topic);
    const etag = `"${last ? `${last.stream}.${last.seq}` : "0"}"`;
    c.header("etag", etag);
    c.header("cache-control", "public, max-age=2, stale-while-revalidate=5");
    if (c.req.header("if-none-match") === etag) return c.body(null, 304);
    return c.json({
      topic,
      event: last?.event ?? null,
      payload: last?.payload ?? null,
      at: last ? new Date(last.at).toISOString() : null,
      // Stream from here on: GET /events?topic=…&cursor=<cursor> (or as Last-Event-ID).
      cursor: switchboard.cursorOf(topic),
    });
  });

  app.get("/api/presence/:topic", (c) => {
    const topic = c.req.param("topic");
    if (!switchboard.hasChannel(topic)) {
      return c.json({ error: `unknown topic "${topic}": no channel matches it` }, 404);
    }
    c.header("cache-control", "no-store");
    return c.json({ topic, presences: switchboard.presenceOf(topic) });
  });
  return app;
}
