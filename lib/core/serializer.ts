/**
 * Phoenix JSON serializers, one object per wire version: v2 (`[join_ref, ref, topic, event,
 * payload]`, what the official client sends with `vsn=2.0.0`) and v1 (objects, no `vsn`).
 * Transports pick one at connect time with {@link serializerFor} and never branch on versions.
 *
 * @example
 * ```ts
 * const serializer = serializerFor("2.0.0")!;
 * const msg = serializer.decode('[null,"1","phoenix","heartbeat",{}]');
 * serializer.encode({ ...msg, event: "phx_reply", payload: { status: "ok", response: {} } });
 * ```
 * @module
 */
import type { Broadcast } from "./broadcast.ts";
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

/** Encodes and decodes the frames of one wire version. */
export interface Serializer {
  readonly vsn: Vsn;
  /** One frame for one client (reply, push, close). */
  encode(msg: Message): string;
  /** A fan-out frame, encoded once per broadcast however many subscribers get it. */
  encodeBroadcast(b: Broadcast): string;
  /** Decodes one text frame; throws {@link FrameError} naming the problem. */
  decode(text: string): Message;
}

const json = JSON.stringify;

/** The v2 array serializer (`vsn=2.0.0`). */
export const v2Serializer: Serializer = {
  vsn: "2.0.0",
  encode(msg) {
    if (msg.payloadJson === undefined) {
      return json([msg.joinRef, msg.ref, msg.topic, msg.event, msg.payload]);
    }
    return `[${json(msg.joinRef)},${json(msg.ref)},${json(msg.topic)},${
      json(msg.event)
    },${msg.payloadJson}]`;
  },
  encodeBroadcast(b) {
    return b.encoded("v2", _encodeV2Broadcast);
  },
  decode(text) {
    const raw = _parse(text);
    if (!Array.isArray(raw) || raw.length !== 5) {
      throw new FrameError("frame must be an array [join_ref, ref, topic, event, payload]");
    }
    const [joinRef, ref, topic, event, payload] = raw;
    return _checked({ joinRef, ref, topic, event, payload });
  },
};

/** The v1 object serializer (no `vsn`); its server frames carry no join_ref. */
export const v1Serializer: Serializer = {
  vsn: "1.0.0",
  encode(msg) {
    const payload = msg.payloadJson ?? json(msg.payload);
    return `{"topic":${json(msg.topic)},"event":${json(msg.event)},"payload":${payload},"ref":${
      json(msg.ref)
    }}`;
  },
  encodeBroadcast(b) {
    return b.encoded("v1", _encodeV1Broadcast);
  },
  decode(text) {
    const raw = _parse(text);
    if (!isPayload(raw)) {
      throw new FrameError("frame must be an object {topic, event, payload, ref}");
    }
    return _checked({
      joinRef: raw.join_ref ?? null,
      ref: raw.ref ?? null,
      topic: raw.topic,
      event: raw.event,
      payload: raw.payload,
    });
  },
};

/** The serializer for a `vsn` connect param (none means 1.0.0); undefined when unsupported. */
export function serializerFor(vsn: string | null | undefined): Serializer | undefined {
  if (vsn === null || vsn === undefined || vsn === "" || vsn === "1.0.0") return v1Serializer;
  if (vsn === "2.0.0") return v2Serializer;
  return undefined;
}

function _encodeV2Broadcast(b: Broadcast): string {
  return json([null, null, b.topic, b.event, b.payload]);
}

function _encodeV1Broadcast(b: Broadcast): string {
  return json({ topic: b.topic, event: b.event, payload: b.payload, ref: null });
}

function _parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new FrameError("frame is not valid JSON");
  }
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
