/**
 * `GET /socket/websocket`: the Phoenix WebSocket transport (v2 arrays, or v1 objects without
 * `vsn`). Admission happens before the upgrade; a refused client's upgrade is still accepted so
 * that it can read why (a browser cannot read a refused upgrade): the socket answers joins with
 * the refusal and closes with its 4xxx code (`websocket_refusal.ts`). The runtime's `upgrade`
 * makes the socket, {@link WebSocketConnection} moves frames.
 * @module
 */
import { Hono } from "hono";
import { type Serializer, serializerFor, v2Serializer } from "../lib/core/serializer.ts";
import {
  REFUSAL_CLOSE_CODES,
  RefusalReason,
  type RefusalReasonName,
  unsupportedVsnError,
} from "../lib/core/protocol.ts";
import { RefusedWebSocket } from "../lib/transports/websocket_refusal.ts";
import type { Config } from "../lib/config.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import type { UpgradeWebSocket } from "../lib/transports/upgrade.ts";
import {
  offeredProtocols,
  tokenFromProtocols,
  WebSocketConnection,
} from "../lib/transports/websocket.ts";
import { connectParams } from "./params.ts";

/** The header of a refused socket's 101 response, naming the refusal. */
export const REFUSAL_HEADER = "x-switchboard-refusal";

/** Refused sockets held open at once, at most (each for `REFUSAL_LINGER_MS`). */
const _MAX_LINGERING = 1_000;

/** The WebSocket transport's routes; `upgrade` is the runtime's (see `lib/runtime/`). */
export function websocketRoutes(switchboard: Switchboard<Config>, upgrade: UpgradeWebSocket): Hono {
  const app = new Hono();
  /** Refused sockets waiting for their close (see {@link RefusedWebSocket}). */
  let lingering = 0;
  app.get("/socket/websocket", async (c) => {
    const req = c.req.raw;
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return c.json({ error: "expected a WebSocket upgrade (GET with Upgrade: websocket)" }, 426);
    }
    const params = connectParams(new URL(req.url).searchParams);
    const protocols = offeredProtocols(req.headers.get("sec-websocket-protocol"));
    // The browser fails the handshake unless the server picks one of the offered protocols.
    const accept = (serializer: Serializer, hibernatable = true) => {
      const { socket, response, openedAlready, terminate, hibernation } = upgrade(req, {
        protocol: protocols.includes("phoenix") ? "phoenix" : undefined,
        hibernatable,
      });
      const connection = new WebSocketConnection({
        socket,
        serializer,
        maxBuffered: switchboard.config.maxOutboundBytes,
        closeTimeoutMs: switchboard.config.closeTimeoutMs,
        terminate,
        lastPingAt: hibernation?.lastPingAt,
      });
      return { connection, response, openedAlready, hibernation };
    };
    const refuse = (status: 401 | 403, reason: RefusalReasonName, error: string) => {
      // Bounded: past the cap, a refusal is a plain HTTP error again.
      if (lingering >= _MAX_LINGERING) return c.json({ error, reason }, status);
      let accepted;
      try {
        accepted = accept(serializerFor(params.vsn) ?? v2Serializer, false);
      } catch {
        // A handshake the runtime cannot complete (a malformed upgrade): the HTTP answer says it.
        return c.json({ error, reason }, status);
      }
      const { connection, response, openedAlready } = accepted;
      lingering++;
      const refusal = { code: REFUSAL_CLOSE_CODES[reason], reason, error };
      // For tools that see the handshake (curl -i, proxies' logs): the 101 says it is a refusal.
      response.headers.set(REFUSAL_HEADER, reason);
      new RefusedWebSocket({ connection, refusal, onGone: () => lingering-- }).listen(
        openedAlready,
      );
      return response;
    };
    const serializer = serializerFor(params.vsn);
    if (!serializer) {
      return refuse(403, RefusalReason.unsupportedVsn, unsupportedVsnError(params.vsn));
    }
    const token = tokenFromProtocols(protocols);
    if (token !== undefined) params.token = token;
    const pending = switchboard.admit(params, req.headers.get("origin"));
    const admission = pending instanceof Promise ? await pending : pending;
    if (!admission.ok) return refuse(admission.status, admission.reason, admission.error);
    const { connection, response, openedAlready, hibernation } = accept(serializer);
    const { identity } = admission;
    connection.listen(
      () => switchboard.openSession({ connection, params, identity, serializer }),
      openedAlready,
      hibernation !== undefined,
    );
    hibernation?.adopt(connection);
    return response;
  });
  return app;
}
