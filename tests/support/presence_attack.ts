/**
 * What the issue-21 attacks send: raw `realtime:*` joins with presence and `track` pushes, and
 * a JSON value nested far deeper than any limit.
 *
 * @example
 * ```ts
 * const raw = await joinRealtime(server.socketUrl, "realtime:room", "mallory");
 * raw.push("1", "2", "realtime:room", "presence", track({ deep: nested(30_000) }));
 * ```
 * @module
 */
import assert from "node:assert/strict";
import { openRaw, type RawSocket, replyOf } from "./raw_ws.ts";

/** A JSON value nested `depth` arrays deep, built as text (JSON.parse takes it; stringify would not). */
export function nested(depth: number): unknown {
  return JSON.parse("[".repeat(depth) + "]".repeat(depth));
}

/** A realtime-js `presence` push payload tracking `meta`. */
export function track(meta: unknown): Record<string, unknown> {
  return { type: "presence", event: "track", payload: meta };
}

/**
 * Opens a raw v2 WebSocket as `user` (dev mode: `user_id` is trusted, or `token`), joins
 * `topic` (join ref "1") with presence enabled under `key`, and waits for the ok reply.
 */
export async function joinRealtime(
  socketUrl: string,
  topic: string,
  user: string,
  { key = user, token }: { key?: string; token?: string } = {},
): Promise<RawSocket> {
  const auth = token ? `token=${token}` : `user_id=${user}`;
  const raw = await openRaw(`${socketUrl}/websocket?vsn=2.0.0&${auth}`);
  raw.push("1", "1", topic, "phx_join", { config: { presence: { key, enabled: true } } });
  const reply = await raw.next((f) => f.ref === "1" && f.event === "phx_reply");
  assert.equal(replyOf(reply).status, "ok", JSON.stringify(reply.payload));
  return raw;
}

/** Pushes a `track` with ref `ref` and returns the reply's status and response. */
export async function pushTrack(raw: RawSocket, topic: string, ref: string, meta: unknown) {
  raw.push("1", ref, topic, "presence", track(meta));
  return replyOf(await raw.next((f) => f.ref === ref && f.event === "phx_reply"));
}
