/**
 * `GET /socket/websocket`: the Phoenix WebSocket transport (v2 arrays, or v1 objects without
 * `vsn`). It only moves frames; the {@link Session} does the rest.
 * @module
 */
import { Hono } from "hono";
import type { Broadcast } from "../lib/broadcast.ts";
import type { Message } from "../lib/message.ts";
import { encodeFrame, parseVsn, type Vsn } from "../lib/serializer.ts";
import type { Connection } from "../lib/session.ts";
import type { Switchboard } from "../lib/switchboard.ts";
import { connectParams } from "./params.ts";

const _BEARER_PREFIX = "base64url.bearer.phx.";

/** Writes frames to one Deno WebSocket. */
class WebSocketConnection implements Connection {
  readonly transport = "websocket";
  constructor(readonly socket: WebSocket, readonly vsn: Vsn) {}

  sendMessage(msg: Message): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(encodeFrame(msg, this.vsn));
  }

  sendBroadcast(b: Broadcast): void {
    if (this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(this.vsn === "2.0.0" ? b.v2 : b.v1);
    }
  }

  close(code: number, reason: string): void {
    if (this.socket.readyState > WebSocket.OPEN) return;
    // A close reason is limited to 123 bytes.
    this.socket.close(code, reason.slice(0, 120));
  }
}

/**
 * Decodes the `authToken` the Phoenix client (1.8+) sends as a subprotocol
 * `base64url.bearer.phx.<base64, '=' stripped>`.
 */
export function tokenFromProtocols(header: string | null): string | undefined {
  const bearer = header?.split(",").map((p) => p.trim()).find((p) => p.startsWith(_BEARER_PREFIX));
  if (!bearer) return undefined;
  try {
    const b64 = bearer.slice(_BEARER_PREFIX.length).replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(
      atob(b64 + "=".repeat((4 - b64.length % 4) % 4)),
      (c) => c.charCodeAt(0),
    );
    return new TextDecoder().decode(bytes);
  } catch {
    return undefined;
  }
}

/** The WebSocket transport's routes. */
export function websocketRoutes(switchboard: Switchboard): Hono {
  const app = new Hono();
  app.get("/socket/websocket", (c) => {
    const req = c.req.raw;
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return c.json({ error: "expected a WebSocket upgrade (GET with Upgrade: websocket)" }, 426);
    }
    const params = connectParams(new URL(req.url).searchParams);
    const vsn = parseVsn(params.vsn);
    if (!vsn) {
      return c.json(
        { error: `unsupported vsn "${params.vsn}": use 2.0.0 (or omit for 1.0.0)` },
        403,
      );
    }
    const protocolHeader = req.headers.get("sec-websocket-protocol");
    const token = tokenFromProtocols(protocolHeader);
    if (token !== undefined) params.token = token;
    // The browser fails the handshake unless the server picks one of the offered protocols.
    const offersPhoenix = protocolHeader?.split(",").some((p) => p.trim() === "phoenix");
    const { socket, response } = Deno.upgradeWebSocket(
      req,
      offersPhoenix ? { protocol: "phoenix" } : {},
    );
    const connection = new WebSocketConnection(socket, vsn);
    socket.onopen = () => {
      const session = switchboard.openSession(connection, params, vsn);
      socket.onmessage = (event) => {
        if (typeof event.data === "string") return session.receiveText(event.data);
        session.send({
          joinRef: null,
          ref: null,
          topic: "phoenix",
          event: "phx_error",
          payload: { reason: "bad_frame", detail: "binary frames are not supported; send text" },
        });
      };
      socket.onclose = () => session.close("disconnect");
    };
    socket.onerror = () => {};
    return response;
  });
  return app;
}
