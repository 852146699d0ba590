/**
 * Phoenix JSON serializers: v2 (`[join_ref, ref, topic, event, payload]`) and v1 (objects).
 *
 * @example
 * ```ts
 * const msg = decodeFrame('[null,"1","phoenix","heartbeat",{}]', "2.0.0");
 * encodeFrame({ ...msg, event: "phx_reply", payload: { status: "ok", response: {} } }, "2.0.0");
 * ```
 * @module
 */
import { isPayload, type Message } from "./message.ts";

/** The serializer versions the WebSocket and long-poll transports accept (`vsn` param). */
export type Vsn = "1.0.0" | "2.0.0";

/** Thrown when a client frame cannot be decoded; the message says what was wrong. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/** Parses `vsn` from connect params; returns undefined for an unsupported version. */
export function parseVsn(vsn: string | null | undefined): Vsn | undefined {
  if (vsn === null || vsn === undefined || vsn === "" || vsn === "1.0.0") return "1.0.0";
  if (vsn === "2.0.0") return "2.0.0";
  return undefined;
}

/** Encodes a message for the wire in the given serializer version. */
export function encodeFrame(msg: Message, vsn: Vsn): string {
  const json = JSON.stringify;
  if (msg.payloadJson !== undefined) {
    return vsn === "2.0.0"
      ? `[${json(msg.joinRef)},${json(msg.ref)},${json(msg.topic)},${
        json(msg.event)
      },${msg.payloadJson}]`
      : `{"topic":${json(msg.topic)},"event":${
        json(msg.event)
      },"payload":${msg.payloadJson},"ref":${json(msg.ref)}}`;
  }
  if (vsn === "2.0.0") return json([msg.joinRef, msg.ref, msg.topic, msg.event, msg.payload]);
  // v1 server frames carry no join_ref (the v1 client ignores it).
  return json({ topic: msg.topic, event: msg.event, payload: msg.payload, ref: msg.ref });
}

/** Decodes one text frame; throws {@link FrameError} naming the problem. */
export function decodeFrame(text: string, vsn: Vsn): Message {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new FrameError("frame is not valid JSON");
  }
  return vsn === "2.0.0" ? _fromV2(raw) : _fromV1(raw);
}

function _fromV2(raw: unknown): Message {
  if (!Array.isArray(raw) || raw.length !== 5) {
    throw new FrameError("frame must be an array [join_ref, ref, topic, event, payload]");
  }
  const [joinRef, ref, topic, event, payload] = raw;
  return _checked({ joinRef, ref, topic, event, payload });
}

function _fromV1(raw: unknown): Message {
  if (!isPayload(raw)) throw new FrameError("frame must be an object {topic, event, payload, ref}");
  return _checked({
    joinRef: raw.join_ref ?? null,
    ref: raw.ref ?? null,
    topic: raw.topic,
    event: raw.event,
    payload: raw.payload,
  });
}

function _checked(m: Record<Exclude<keyof Message, "payloadJson">, unknown>): Message {
  if (m.joinRef !== null && typeof m.joinRef !== "string") {
    throw new FrameError("join_ref must be a string or null");
  }
  if (m.ref !== null && typeof m.ref !== "string") {
    throw new FrameError("ref must be a string or null");
  }
  if (typeof m.topic !== "string" || m.topic === "") {
    throw new FrameError("topic must be a non-empty string");
  }
  // A lone surrogate (possible in JSON as "\ud800") cannot be URL-encoded into a cursor.
  if (!m.topic.isWellFormed()) throw new FrameError("topic must be well-formed Unicode");
  if (typeof m.event !== "string" || m.event === "") {
    throw new FrameError("event must be a non-empty string");
  }
  if (!isPayload(m.payload)) throw new FrameError("payload must be a JSON object");
  return m as unknown as Message;
}
