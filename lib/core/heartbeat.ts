/**
 * The fixed heartbeat: a Phoenix heartbeat whose ref never changes, so its frame is always the
 * same text and a runtime can answer it without waking the node (Cloudflare's
 * `setWebSocketAutoResponse` matches whole frames). The Switchboard client sends it
 * (`lib/client/engine.ts`); anywhere else the session answers it like any heartbeat, with the
 * same reply. Phoenix's own heartbeats carry a new ref each time: they reach the node.
 *
 * @example
 * ```ts
 * socket.send(FIXED_PING); // answered with FIXED_PONG
 * ```
 * @module
 */

/** The ref of the fixed heartbeat (Phoenix's own refs are numbers, so it never collides). */
export const FIXED_HEARTBEAT_REF = "hb";

/** The fixed heartbeat as the v2 serializer writes it: the exact text the client sends. */
export const FIXED_PING = `[null,"${FIXED_HEARTBEAT_REF}","phoenix","heartbeat",{}]`;

/** The reply to {@link FIXED_PING}, byte for byte what a session would answer. */
export const FIXED_PONG =
  `[null,"${FIXED_HEARTBEAT_REF}","phoenix","phx_reply",{"status":"ok","response":{}}]`;
