/**
 * The shape of one Phoenix channel message, independent of the wire format.
 *
 * @example
 * ```ts
 * const reply: Message = { joinRef: "1", ref: "2", topic: "room:1", event: "phx_reply", payload: { status: "ok", response: {} } };
 * ```
 * @module
 */

/** A JSON object payload, as Phoenix requires for every message. */
export type Payload = Record<string, unknown>;

/** One channel message: `[join_ref, ref, topic, event, payload]` in the v2 serializer. */
export interface Message {
  joinRef: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: Payload;
  /**
   * The payload already encoded as JSON (then `payload` is not read): lets a large payload
   * shared by many frames, like a topic's `presence_state`, be encoded once.
   */
  payloadJson?: string;
  /**
   * Raw bytes: the message travels as a Phoenix v2 binary frame. For a push or broadcast they
   * are the payload (and `payload` the JSON metadata beside them: `{}` for Phoenix frames,
   * `{type, event, meta?}` for Supabase's user broadcasts); for a `phx_reply` they are the
   * response and `payload.status` is the status.
   */
  binary?: Uint8Array;
}

/** Returns true when `value` is a plain JSON object (not an array, not null). */
export function isPayload(value: unknown): value is Payload {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
