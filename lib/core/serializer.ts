/**
 * Phoenix serializers, one object per wire version: v2 (`[join_ref, ref, topic, event,
 * payload]`, what the official client sends with `vsn=2.0.0`, plus its binary frames) and v1
 * (objects, no `vsn`, text only). Transports pick one at connect time with
 * {@link serializerFor} and never branch on versions. Every byte layout of the binary frames
 * (Phoenix's push, reply and broadcast, and Supabase Realtime's user broadcasts) lives here.
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
import { isPayload, type Message, type Payload } from "./message.ts";
import { PhxEvent, SupabaseEvent } from "./protocol.ts";

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
  /** The version's binary frames; undefined when it has none (v1). */
  readonly binary?: BinaryCodec;
}

/** Encodes and decodes binary frames (messages with {@link Message.binary}). */
export interface BinaryCodec {
  /** A binary push (kind 0), reply (kind 1) or Supabase user broadcast (kind 4) for one client. */
  encode(msg: Message): Uint8Array;
  /** A binary fan-out frame, encoded once per broadcast. */
  encodeBroadcast(b: Broadcast): Uint8Array;
  /** Decodes a client's binary frame; throws {@link FrameError} naming the problem. */
  decode(bytes: Uint8Array): Message;
}

/**
 * The first byte of a binary frame. 0–2 are Phoenix's (`phoenix/serializer.js`), 3–4 Supabase
 * Realtime's (`@supabase/realtime-js/dist/module/lib/serializer.js`).
 */
const _Kind = { push: 0, reply: 1, broadcast: 2, userBroadcastPush: 3, userBroadcast: 4 } as const;
/** How a Supabase user broadcast's payload is encoded (the byte after the lengths). */
const _Encoding = { binary: 0, json: 1 } as const;
/** The event that carries Supabase user broadcasts, and the `type` inside their payload. */
const _USER_BROADCAST = SupabaseEvent.broadcast;
/** Every string field of a binary frame is prefixed by a one-byte length. */
const _MAX_FIELD = 255;

const _utf8 = new TextEncoder();
const _strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The v2 binary frames (WebSocket only: long-poll and SSE carry text). */
const _v2Binary: BinaryCodec = {
  encode(msg) {
    const bytes = msg.binary ?? new Uint8Array(0);
    if (msg.event === PhxEvent.reply) {
      const status = String(msg.payload.status ?? "ok");
      return _frame(_Kind.reply, [msg.joinRef ?? "", msg.ref ?? "", msg.topic, status], [], bytes);
    }
    const user = _userBroadcast(msg.event, msg.payload);
    if (user) return _frame(_Kind.userBroadcast, [msg.topic, ...user], [_Encoding.binary], bytes);
    return _frame(_Kind.push, [msg.joinRef ?? "", msg.topic, msg.event], [], bytes);
  },
  encodeBroadcast(b) {
    return b.encoded("v2-binary", _encodeBinaryBroadcast);
  },
  decode(bytes) {
    const kind = bytes[0];
    if (kind === _Kind.push) {
      const { fields: [joinRef, ref, topic, event], rest } = _fields(bytes, 4, 0);
      return _checked({ joinRef, ref, topic, event, payload: {}, binary: rest });
    }
    if (kind === _Kind.userBroadcastPush) {
      const { fields: [joinRef, ref, topic, userEvent, meta], rest } = _fields(bytes, 5, 1);
      const encoding = bytes[6];
      const payload: Payload = { type: _USER_BROADCAST, event: userEvent };
      if (meta !== null) payload.meta = _parseJson(meta, "metadata");
      if (encoding === _Encoding.json) {
        payload.payload = _parseJson(_text(rest, "payload"), "payload");
        return _checked({ joinRef, ref, topic, event: _USER_BROADCAST, payload });
      }
      if (encoding !== _Encoding.binary) {
        throw new FrameError(
          `user broadcast encoding must be 0 (binary) or 1 (JSON), not ${encoding}`,
        );
      }
      return _checked({
        joinRef,
        ref,
        topic,
        event: _USER_BROADCAST,
        payload,
        binary: rest,
      });
    }
    throw new FrameError(
      `binary frame kind ${
        kind ?? "(empty frame)"
      } is not a client frame: send 0 (push) or 3 (user broadcast)`,
    );
  },
};

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
  binary: _v2Binary,
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

function _encodeBinaryBroadcast(b: Broadcast): Uint8Array {
  const bytes = b.binary ?? new Uint8Array(0);
  const user = _userBroadcast(b.event, b.payload);
  if (user) return _frame(_Kind.userBroadcast, [b.topic, ...user], [_Encoding.binary], bytes);
  return _frame(_Kind.broadcast, [b.topic, b.event], [], bytes);
}

/** A Supabase user broadcast's user event and metadata, or undefined for any other message. */
function _userBroadcast(event: string, payload: Payload): [string, string] | undefined {
  if (event !== _USER_BROADCAST || payload.type !== _USER_BROADCAST) return undefined;
  if (typeof payload.event !== "string") return undefined;
  return [payload.event, isPayload(payload.meta) ? json(payload.meta) : ""];
}

/** `kind`, one length byte per field, the `flags` bytes, the fields (UTF-8), then `bytes`. */
function _frame(kind: number, fields: string[], flags: number[], bytes: Uint8Array): Uint8Array {
  const encoded = fields.map((f) => _utf8.encode(f));
  let size = 1 + encoded.length + flags.length + bytes.length;
  for (const [i, f] of encoded.entries()) {
    if (f.length > _MAX_FIELD) {
      throw new Error(
        `cannot encode a binary frame: field ${i + 1} is ${f.length} bytes, at most ${_MAX_FIELD}`,
      );
    }
    size += f.length;
  }
  const frame = new Uint8Array(size);
  let offset = 0;
  frame[offset++] = kind;
  for (const f of encoded) frame[offset++] = f.length;
  for (const flag of flags) frame[offset++] = flag;
  for (const f of encoded) {
    frame.set(f, offset);
    offset += f.length;
  }
  frame.set(bytes, offset);
  return frame;
}

/**
 * Reads `count` length-prefixed UTF-8 fields after the kind byte and `flags` more header
 * bytes; empty fields are null (the clients send "" for a null ref).
 */
function _fields(
  bytes: Uint8Array,
  count: number,
  flags: number,
): { fields: (string | null)[]; rest: Uint8Array } {
  const header = 1 + count + flags;
  if (bytes.length < header) {
    throw new FrameError(`binary frame too short: ${bytes.length} bytes, header needs ${header}`);
  }
  const fields: (string | null)[] = [];
  let offset = header;
  for (let i = 1; i <= count; i++) {
    const end = offset + bytes[i];
    if (end > bytes.length) {
      throw new FrameError(`binary frame too short: field ${i} ends past the frame`);
    }
    fields.push(end === offset ? null : _text(bytes.subarray(offset, end), `field ${i}`));
    offset = end;
  }
  return { fields, rest: bytes.subarray(offset) };
}

function _text(bytes: Uint8Array, what: string): string {
  try {
    return _strictUtf8.decode(bytes);
  } catch {
    throw new FrameError(`${what} is not valid UTF-8`);
  }
}

function _parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new FrameError(`${what} is not valid JSON`);
  }
}

function _parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new FrameError("frame is not valid JSON");
  }
}

function _checked(
  m: Record<Exclude<keyof Message, "payloadJson" | "binary">, unknown> & { binary?: Uint8Array },
): Message {
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
