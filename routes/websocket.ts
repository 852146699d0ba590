/**
 * `GET /socket/websocket`: the Phoenix WebSocket transport (v2 arrays, or v1 objects without
 * `vsn`). It only moves frames; the {@link Session} does the rest.
 * @module
 */
import { Hono } from "hono";
import type { Broadcast } from "../lib/core/broadcast.ts";
import type { Message } from "../lib/core/message.ts";
import { encodeFrame, parseVsn, type Vsn } from "../lib/core/serializer.ts";
import type { Connection, Session } from "../lib/core/session.ts";
import type { Identity, Switchboard } from "../lib/core/switchboard.ts";
import { connectParams } from "./params.ts";

const _BEARER_PREFIX = "base64url.bearer.phx.";

/** Moves frames between one Deno WebSocket and its session. */
class WebSocketConnection implements Connection {
  readonly transport = "websocket";
  session?: Session;
  #sent = 0;
  /** What opening the session needs, dropped once it is open. */
  opening?: { switchboard: Switchboard; params: Record<string, string>; identity: Identity };

  constructor(readonly socket: WebSocket, readonly vsn: Vsn, readonly maxBuffered: number) {}

  /** The socket's events (this object is the listener of all of them). */
  handleEvent(event: Event): void {
    if (event.type === "message") {
      const data = (event as MessageEvent).data;
      if (typeof data === "string") return this.session?.receiveText(data);
      this.session?.send({
        joinRef: null,
        ref: null,
        topic: "phoenix",
        event: "phx_error",
        payload: { reason: "bad_frame", detail: "binary frames are not supported; send text" },
      });
    } else if (event.type === "open" && this.opening) {
      const { switchboard, params, identity } = this.opening;
      this.opening = undefined;
      this.session = switchboard.openSession(this, params, identity, this.vsn);
    } else if (event.type === "close") {
      this.session?.close("disconnect");
    }
  }

  /** Made on demand (at shutdown): a promise per idle socket would cost memory for nothing. */
  get whenClosed(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => this.socket.addEventListener("close", () => resolve()));
  }

  sendMessage(msg: Message): void {
    this.#send(encodeFrame(msg, this.vsn));
  }

  sendBroadcast(b: Broadcast): void {
    this.#send(this.vsn === "2.0.0" ? b.v2 : b.v1);
  }

  #send(frame: string): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(frame);
    // A client that stops reading makes the unsent bytes pile up here; past the limit it goes
    // (1013: try again later), and resumes from its cursor when it comes back. Reading
    // bufferedAmount is a call into Deno: every 16th frame (or a large one) is enough.
    if ((++this.#sent & 15) !== 0 && frame.length < 16_384) return;
    if (this.socket.bufferedAmount > this.maxBuffered) {
      this.close(1013, "slow consumer: reconnect and resume");
      this.session?.close("slow_consumer");
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
  app.get("/socket/websocket", async (c) => {
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
    // Refused before the upgrade: the client sees an HTTP error and retries with backoff.
    const pending = switchboard.admit(params, req.headers.get("origin"));
    const admission = pending instanceof Promise ? await pending : pending;
    if (!admission.ok) return c.json({ error: admission.error }, admission.status);
    // The browser fails the handshake unless the server picks one of the offered protocols.
    const offersPhoenix = protocolHeader?.split(",").some((p) => p.trim() === "phoenix");
    // idleTimeout 0: Deno's own ping timeout can close healthy sockets under load (a race
    // between its pong and its timer); the session's heartbeat timeout covers liveness.
    const { socket, response } = Deno.upgradeWebSocket(
      req,
      offersPhoenix ? { protocol: "phoenix", idleTimeout: 0 } : { idleTimeout: 0 },
    );
    const connection = new WebSocketConnection(socket, vsn, switchboard.config.maxOutboundBytes);
    connection.opening = { switchboard, params, identity: admission.identity };
    // One listener object for every event: no closures kept per idle socket.
    for (const type of ["open", "message", "close", "error"]) {
      socket.addEventListener(type, connection);
    }
    return response;
  });
  return app;
}
