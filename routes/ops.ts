/**
 * Operations: `GET /healthz` (200 while serving, with the broker's state) and `GET /metrics`
 * (Prometheus text).
 * @module
 */
import { Hono } from "hono";
import type { Config } from "../lib/config.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";

/** The operations routes. */
export function opsRoutes(switchboard: Switchboard<Config>): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => {
    c.header("cache-control", "no-store");
    return c.json({
      status: "ok",
      node: switchboard.config.nodeId,
      uptime_s: Math.round((switchboard.clock.now() - switchboard.startedAt) / 1000),
      sessions: switchboard.sessionCount,
      broker: switchboard.brokerState(),
    });
  });
  app.get("/metrics", (c) => {
    c.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    c.header("cache-control", "no-store");
    return c.body(switchboard.metrics.render());
  });
  return app;
}
