/**
 * The API's guard against token guessing: an address whose requests failed authentication
 * (401) `API_AUTH_FAILURES_PER_MINUTE` times within a minute gets 429 with `Retry-After` for
 * the rest of that minute, whatever it sends.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import type { Switchboard } from "../lib/core/switchboard.ts";
import type { Config } from "../lib/config.ts";
 * declare const switchboard: Switchboard;
 * new Hono().use("/api/*", apiAuthThrottle(switchboard));
 * ```
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { FailureThrottle } from "../lib/core/failure_throttle.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import type { Config } from "../lib/config.ts";
import { clientAddress } from "./client_address.ts";

/** A middleware counting the 401s of `/api/*` per address and refusing past the limit. */
export function apiAuthThrottle(switchboard: Switchboard<Config>): MiddlewareHandler {
  const throttle = new FailureThrottle({
    perMinute: switchboard.config.apiAuthFailuresPerMinute,
    clock: switchboard.clock,
  });
  return async (c, next) => {
    const address = clientAddress(c);
    const wait = throttle.retryAfter(address);
    if (wait > 0) {
      switchboard.metrics.inc("switchboard_refused_total", { reason: "api_auth_throttled" });
      c.header("retry-after", String(wait));
      return c.json({
        error: `too many failed authentications from this address: retry in ${wait} s`,
      }, 429);
    }
    await next();
    if (c.res.status === 401) throttle.failed(address);
  };
}
