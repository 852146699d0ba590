/**
 * The pages people look at. For now: `/`, what Switchboard is and how to try it.
 * @module
 */
import { Hono } from "hono";
import type { Switchboard } from "../lib/switchboard.ts";

/** The page routes. */
export function pageRoutes(switchboard: Switchboard): Hono {
  const app = new Hono();
  app.get("/", (c) =>
    c.html(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Switchboard</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}code,pre{background:#f3f3f3;padding:.1rem .3rem}pre{padding:.6rem;overflow:auto}</style>
</head><body>
<h1>Switchboard</h1>
<p>Phoenix-style channels on Deno: WebSocket (the official <code>phoenix</code> client),
Server-Sent Events and an HTTP API, with presence. Node <code>${
      _escape(switchboard.config.nodeId)
    }</code>.</p>
<h2>Try it</h2>
<pre>curl -N 'http://${_escape(c.req.header("host") ?? "localhost:8000")}/events?topic=status:demo'
curl -X POST http://${_escape(c.req.header("host") ?? "localhost:8000")}/api/broadcast \\
  -H 'content-type: application/json' \\
  -d '{"topic":"status:demo","event":"status","payload":{"state":"degraded","message":"Slow"}}'</pre>
<p><a href="/healthz">/healthz</a> · <a href="/metrics">/metrics</a></p>
</body></html>`));
  return app;
}

function _escape(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
