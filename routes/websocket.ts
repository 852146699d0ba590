/**
 * `GET /socket/websocket`: the Phoenix WebSocket transport (v2 arrays, or v1 objects without
 * `vsn`). Admission happens before the upgrade, so a refused client sees an HTTP error and
 * backs off; the runtime's `upgrade` makes the socket, {@link WebSocketConnection} moves frames.
 * @module
 */
import { Hono } from "hono";
import { serializerFor } from "../lib/core/serializer.ts";
import type { Config } from "../lib/config.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import type { UpgradeWebSocket } from "../lib/transports/upgrade.ts";
import {
  offeredProtocols,
  tokenFromProtocols,
  WebSocketConnection,
} from "../lib/transports/websocket.ts";
import { connectParams } from "./params.ts";

/** The WebSocket transport's routes; `upgrade` is the runtime's (see `lib/runtime/`). */
export function websocketRoutes(switchboard: Switchboard<Config>, upgrade: UpgradeWebSocket): Hono {
  const app = new Hono();
  app.get("/socket/websocket", async (c) => {
    const req = c.req.raw;
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return c.json({ error: "expected a WebSocket upgrade (GET with Upgrade: websocket)" }, 426);
    }
    const params = connectParams(new URL(req.url).searchParams);
    const serializer = serializerFor(params.vsn);
    if (!serializer) {
      return c.json(
        { error: `unsupported vsn "${params.vsn}": use 2.0.0 (or omit for 1.0.0)` },
        403,
      );
    }
    const protocols = offeredProtocols(req.headers.get("sec-websocket-protocol"));
    const token = tokenFromProtocols(protocols);
    if (token !== undefined) params.token = token;
    const pending = switchboard.admit(params, req.headers.get("origin"));
    const admission = pending instanceof Promise ? await pending : pending;
    if (!admission.ok) return c.json({ error: admission.error }, admission.status);
    // The browser fails the handshake unless the server picks one of the offered protocols.
    const { socket, response, openedAlready, terminate } = upgrade(req, {
      protocol: protocols.includes("phoenix") ? "phoenix" : undefined,
    });
    const connection = new WebSocketConnection({
      socket,
      serializer,
      maxBuffered: switchboard.config.maxOutboundBytes,
      closeTimeoutMs: switchboard.config.closeTimeoutMs,
      terminate,
    });
    const { identity } = admission;
    connection.listen(
      () => switchboard.openSession({ connection, params, identity, serializer }),
      openedAlready,
    );
    return response;
  });
  return app;
}
