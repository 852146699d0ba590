/**
 * The server API for the app's backend (bearer `API_TOKEN`): `POST /api/disconnect
 * {"user_id"}` ends that user's sessions on every node (clients get `phx_close` with
 * `{reason: "disconnected"}` and close code 4010; their old tokens are refused) and
 * `POST /api/unsubscribe {"user_id", "topic"}` removes the user from one topic everywhere
 * (`phx_close` with `{reason: "unsubscribed"}`). Both answer `{"sessions": n}`, the sessions
 * affected on the node that took the request, and are safe to repeat.
 *
 * @example
 * ```ts
 * app.route("/", serverApiRoutes(switchboard));
 * ```
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import type { Config } from "../lib/config.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import { describeErrors } from "../lib/core/validation.ts";
import { topicField } from "./api.ts";
import { apiCaller, unauthorized } from "./api_auth.ts";
import { readJsonBody } from "./body.ts";

/** A user id as tokens carry it (`sub`). */
const _userId = z.string().min(1).max(256);

const _disconnect = z.object({ user_id: _userId }).strict();

const _unsubscribe = z.object({
  user_id: _userId,
  topic: topicField,
}).strict();

/** The server API routes. */
export function serverApiRoutes(switchboard: Switchboard<Config>): Hono {
  const app = new Hono();
  const { apiToken, maxApiBodyBytes } = switchboard.config;
  /** The body, checked against `schema`, or the response refusing the request. */
  const read = async <T>(req: Request, schema: z.ZodType<T>) => {
    if (!apiCaller(req.headers, apiToken).admin) return { refused: "unauthorized" as const };
    const body = await readJsonBody(req, maxApiBodyBytes);
    if (!body.ok) return { error: body.error, status: body.status };
    const parsed = schema.safeParse(body.value);
    if (!parsed.success) {
      return { error: `invalid body: ${describeErrors(parsed.error)}`, status: 400 as const };
    }
    return { value: parsed.data };
  };

  app.post("/api/disconnect", async (c) => {
    const body = await read(c.req.raw, _disconnect);
    if ("refused" in body) return unauthorized(c);
    if ("error" in body) return c.json({ error: body.error }, body.status);
    return c.json({ sessions: switchboard.extensions.disconnect(body.value.user_id) });
  });

  app.post("/api/unsubscribe", async (c) => {
    const body = await read(c.req.raw, _unsubscribe);
    if ("refused" in body) return unauthorized(c);
    if ("error" in body) return c.json({ error: body.error }, body.status);
    const { user_id, topic } = body.value;
    return c.json({ sessions: switchboard.extensions.unsubscribe(user_id, topic) });
  });
  return app;
}
