/**
 * Server-Sent Events framing, in one place: every line the SSE transport writes is built here.
 * Fields never contain CR or LF (an `event:` or `id:` with a newline would let its author forge
 * whole events), so the writer refuses them instead of escaping.
 *
 * @example
 * ```ts
 * sseEvent("status:acme", "status", '{"state":"operational"}');
 * // 'event: status\ndata: {"topic":"status:acme","payload":{"state":"operational"}}\n\n'
 * ```
 * @module
 */
import { toBase64 } from "../core/base64.ts";
import type { Broadcast } from "../core/broadcast.ts";

const _encoder = new TextEncoder();
const _LINE_BREAK = /[\r\n]/;

/** Thrown when a field would break the framing (it holds CR or LF). */
export class SseFieldError extends Error {
  constructor(field: string) {
    super(`SSE ${field} must not contain CR or LF`);
    this.name = "SseFieldError";
  }
}

function _field(name: string, value: string): string {
  if (_LINE_BREAK.test(value)) throw new SseFieldError(name);
  return value;
}

/**
 * One event: `event:` and one `data:` line `{"topic": T, "payload": P}`, and the blank line. A
 * binary message adds its bytes as base64: `{"topic": T, "payload": P, "binary": "<base64>"}`.
 */
export function sseEvent(
  topic: string,
  event: string,
  payloadJson: string,
  binary?: Uint8Array,
): string {
  const bytes = binary === undefined ? "" : `,"binary":"${toBase64(binary)}"`;
  return _event(topic, event, `"payload":${payloadJson}${bytes}`);
}

/** `event:` and the data line `{"topic": T, <fields>}`, and the blank line. */
function _event(topic: string, event: string, fields: string): string {
  // JSON never holds raw newlines, so one data line always suffices.
  return `event: ${_field("event", event)}\ndata: {"topic":${JSON.stringify(topic)},${fields}}\n\n`;
}

/** The `id:` line that precedes an event (a resume cursor). */
export function sseId(id: string): string {
  return `id: ${_field("id", id)}\n`;
}

/** How long EventSource waits before reconnecting, as its own event. */
export function sseRetry(ms: number): string {
  return `retry: ${Math.max(0, Math.floor(ms))}\n\n`;
}

/** A comment line; proxies see traffic, EventSource ignores it. */
export function sseComment(text: string): string {
  return `: ${_field("comment", text)}\n\n`;
}

/** A broadcast's event lines as bytes, encoded once per broadcast for every SSE subscriber. */
export function sseBroadcastBytes(b: Broadcast): Uint8Array {
  return b.encoded("sse", _encodeBroadcast);
}

/**
 * A broadcast sent as a Fossil delta (`delta.ts`), encoded once per broadcast:
 * `event: E` / `data: {"topic": T, "delta": D}`.
 */
export function sseDeltaBytes(b: Broadcast, deltaJson: string): Uint8Array {
  return b.encoded(
    "sse-delta",
    () => _encoder.encode(_event(b.topic, b.event, `"delta":${deltaJson}`)),
  );
}

function _encodeBroadcast(b: Broadcast): Uint8Array {
  return _encoder.encode(sseEvent(b.topic, b.event, JSON.stringify(b.payload), b.binary));
}
