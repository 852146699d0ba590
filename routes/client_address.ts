/**
 * The client's address, for budgets kept per address (long-poll sessions, failed API logins).
 * On Deno it is the TCP peer (`Deno.serve` hands it to the app as its env); on Workers the
 * address Cloudflare saw (`cf-connecting-ip`, set by Cloudflare, not by the client).
 * `X-Forwarded-For` is not read: any client can write it. Behind a proxy of your own, every
 * client shares the proxy's address (docs/limits.md).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * const app = new Hono();
 * app.get("/", (c) => c.text(clientAddress(c)));
 * ```
 * @module
 */
import type { Context } from "hono";

/** The client's address, or "unknown" when the runtime does not say. */
export function clientAddress(c: Context): string {
  const env = c.env as { remoteAddr?: { hostname?: unknown } } | undefined;
  const hostname = env?.remoteAddr?.hostname;
  if (typeof hostname === "string" && hostname !== "") return hostname;
  return c.req.header("cf-connecting-ip") ?? "unknown";
}
