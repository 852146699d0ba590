/**
 * Who is calling the HTTP API: the holder of `API_TOKEN` (as `Authorization: Bearer`, or as the
 * `apikey` header Supabase clients send), or someone with another bearer token (a user token,
 * which only the realtime REST shapes accept).
 *
 * @example
 * ```ts
 * const caller = apiCaller(c.req.raw.headers, switchboard.config.apiToken);
 * if (!caller.admin) return unauthorized(c);
 * ```
 * @module
 */
import type { Context } from "hono";
import { bearerToken } from "../lib/auth.ts";

/** What the request's credentials say. */
export interface ApiCaller {
  /** It holds `API_TOKEN`, or no `API_TOKEN` is set (dev: the API is open). */
  admin: boolean;
  /** The bearer token when it is not `API_TOKEN` (maybe a user token). */
  bearer?: string;
}

/** Reads the API credentials of a request. */
export function apiCaller(headers: Headers, apiToken: string | undefined): ApiCaller {
  const bearer = bearerToken(headers.get("authorization"));
  if (apiToken === undefined) return { admin: true, bearer };
  const apikey = headers.get("apikey") ?? undefined;
  const admin = (bearer !== undefined && sameSecret(bearer, apiToken)) ||
    (apikey !== undefined && sameSecret(apikey, apiToken));
  return admin ? { admin } : { admin, bearer };
}

/** The 401 for a request without valid API credentials. */
export function unauthorized(c: Context, detail = ""): Response {
  c.header("www-authenticate", 'Bearer realm="switchboard"');
  return c.json(
    { error: `missing or wrong token: send Authorization: Bearer <API_TOKEN>${detail}` },
    401,
  );
}

/** Constant-time comparison, so the token cannot be guessed byte by byte from timing. */
export function sameSecret(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  if (x.length !== y.length) return false;
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}
