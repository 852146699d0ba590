/**
 * The official `phoenix` Socket, sending the fixed heartbeat (`lib/core/heartbeat.ts`): the
 * same frame every time (ref `hb`), so a Cloudflare node object answers it with its
 * WebSocket auto-response, without waking up, and a Deno server answers it like any
 * heartbeat. Everything else is Phoenix's: the interval, the timeout that drops a connection
 * whose heartbeat goes unanswered, the reconnects.
 *
 * @example
 * ```ts
 * import { LongPoll } from "phoenix";
 * const { socket } = connectPhoenix({ Socket: FixedHeartbeatSocket, LongPoll }, { params });
 * ```
 * @module
 */
import { Socket } from "phoenix";
import { FIXED_HEARTBEAT_REF } from "../core/heartbeat.ts";

/** The members of phoenix's `Socket` (1.8) its heartbeat uses; not in its public API. */
interface _Internals {
  pendingHeartbeatRef: string | null;
  heartbeatTimeoutTimer: ReturnType<typeof setTimeout>;
  heartbeatIntervalMs: number;
  isConnected(): boolean;
  push(data: { topic: string; event: string; payload: object; ref: string }): void;
  heartbeatTimeout(): void;
}

/**
 * A phoenix `Socket` whose heartbeats all carry the ref {@link FIXED_HEARTBEAT_REF}; typed as
 * phoenix's own `Socket` (its members come from the untyped phoenix module).
 */
export const FixedHeartbeatSocket: typeof Socket = class extends Socket {
  /** Phoenix's `sendHeartbeat`, with the fixed ref instead of a new one (phoenix 1.8). */
  sendHeartbeat(): void {
    const socket = this as unknown as _Internals;
    if (socket.pendingHeartbeatRef && !socket.isConnected()) return;
    socket.pendingHeartbeatRef = FIXED_HEARTBEAT_REF;
    socket.push({ topic: "phoenix", event: "heartbeat", payload: {}, ref: FIXED_HEARTBEAT_REF });
    socket.heartbeatTimeoutTimer = setTimeout(
      () => socket.heartbeatTimeout(),
      socket.heartbeatIntervalMs,
    );
  }
};
