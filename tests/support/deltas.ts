/**
 * Reading Fossil deltas the way a subscriber would, for the delta suites: publishing a list of
 * payloads, and rebuilding the exact payload texts of an SSE stream or a WebSocket's frames,
 * counting the bytes they took on the wire.
 *
 * @example
 * ```ts
 * await publishAll(server.url, "status:acme", statusUpdates(10));
 * const decoded = decodeSse(stream, "status:acme"); // decoded.texts, decoded.kinds, decoded.bytes
 * ```
 * @module
 */
import assert from "node:assert/strict";
import { applyStringDelta } from "fossil-delta";
import { publishStatus } from "./api.ts";
import { openRaw, type RawFrame, type RawSocket, replyOf } from "./raw_ws.ts";
import type { SseEvent, SseStream } from "./sse.ts";

const _utf8 = new TextEncoder();

/** Publishes `payloads` one after the other as event `status` on `topic`. */
export async function publishAll(url: string, topic: string, payloads: Record<string, unknown>[]) {
  for (const payload of payloads) await publishStatus(url, topic, payload);
}

/**
 * A subscriber's view of one topic: the exact JSON text of each payload, rebuilt from full
 * messages (cut out of the frame's text, not re-encoded) and deltas (applied to the previous).
 */
export class Decoded {
  texts: string[] = [];
  kinds: ("full" | "delta")[] = [];
  bytes = 0;

  full(text: string, wireBytes: number): void {
    this.texts.push(text);
    this.kinds.push("full");
    this.bytes += wireBytes;
  }

  delta(delta: string, wireBytes: number): void {
    const base = this.texts.at(-1);
    assert.ok(base !== undefined, "a delta arrived before any full payload");
    this.texts.push(applyStringDelta(base, delta));
    this.kinds.push("delta");
    this.bytes += wireBytes;
  }
}

/** The SSE event's bytes as the server wrote them (`id:`, `event:`, one `data:` line). */
export function sseBytes(e: SseEvent): number {
  const id = e.id === undefined ? "" : `id: ${e.id}\n`;
  return _utf8.encode(`${id}event: ${e.event}\ndata: ${e.data}\n\n`).byteLength;
}

/** Reads SSE `status` events from `stream` (from its `from`-th event on) into a {@link Decoded}. */
export function decodeSse(stream: SseStream, topic: string, from = 0): Decoded {
  const out = new Decoded();
  const prefix = `{"topic":${JSON.stringify(topic)},"payload":`;
  for (const e of stream.events.slice(from)) {
    if (e.event !== "status") continue;
    const data = e.json as { delta?: string };
    if (typeof data.delta === "string") out.delta(data.delta, sseBytes(e));
    else {
      assert.ok(e.data.startsWith(prefix), `unexpected SSE data ${e.data.slice(0, 80)}`);
      out.full(e.data.slice(prefix.length, -1), sseBytes(e));
    }
  }
  return out;
}

/** Reads the WebSocket frames of `topic` into a {@link Decoded}. */
export function decodeWs(frames: RawFrame[], topic: string): Decoded {
  const out = new Decoded();
  const prefix = `[null,null,${JSON.stringify(topic)},"status",`;
  for (const f of frames) {
    if (f.topic !== topic || typeof f.raw !== "string") continue;
    const bytes = _utf8.encode(f.raw).byteLength;
    if (f.event === "phx_delta") {
      const p = f.payload as { event: string; delta: string };
      assert.equal(p.event, "status");
      out.delta(p.delta, bytes);
    } else if (f.event === "status") {
      assert.ok(f.raw.startsWith(prefix));
      out.full(f.raw.slice(prefix.length, -1), bytes);
    }
  }
  return out;
}

/** Opens a raw v2 WebSocket and joins `topic` with `payload`; fails unless the join is ok. */
export async function joinRaw(
  socketUrl: string,
  topic: string,
  payload: Record<string, unknown>,
): Promise<{ ws: RawSocket; response: Record<string, unknown> }> {
  const ws = await openRaw(`${socketUrl}/websocket?vsn=2.0.0`);
  ws.push("1", "1", topic, "phx_join", payload);
  const reply = replyOf(await ws.next((f) => f.ref === "1" && f.event === "phx_reply"));
  assert.equal(reply.status, "ok", JSON.stringify(reply.response));
  return { ws, response: reply.response };
}

/** How many of a subscriber's messages came `kind`. */
export const countOf = (d: Decoded, kind: "full" | "delta") =>
  d.kinds.filter((k) => k === kind).length;
