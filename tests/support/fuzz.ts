/**
 * fast-check arbitraries for the fuzz tests: frames (valid, near-valid, junk), cursors, env
 * records and broadcast bodies.
 *
 * @example
 * ```ts
 * fc.assert(fc.property(anyFrameText, (text) => { decodeFrame(text, "2.0.0"); }));
 * ```
 * @module
 */
import fc from "fast-check";
import { CONFIG_KEYS } from "../../lib/config.ts";
import type { Cursor, TopicCursor } from "../../lib/resume/cursor.ts";
import type { Message, Payload } from "../../lib/core/message.ts";

/** True for a plain JSON object (what `JSON.parse` makes for `{…}`). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    Object.getPrototypeOf(value) === Object.prototype;
}

/** What a value looks like after a trip through JSON (-0 becomes 0, null prototypes go). */
export function jsonClone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value));
}

/** Characters that tend to break things: lone surrogates, separators, escapes, controls. */
const trickyChar: fc.Arbitrary<string> = fc.constantFrom(
  "\ud800",
  "\udfff",
  "\ud83d",
  "\u0000",
  "\u001f",
  "\u2028",
  "\ufeff",
  "\ufffd",
  "é",
  "😀",
  "%",
  "&",
  "=",
  "*",
  ",",
  "~",
  ":",
  "/",
  "\\",
  '"',
  " ",
  "\n",
);

/**
 * Any string: ASCII, full unicode graphemes, arbitrary UTF-16 code points, or mixes of tricky
 * characters (lone surrogates included).
 */
export const anyString: fc.Arbitrary<string> = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme" }),
  fc.string({ unit: "binary" }),
  fc.string({ unit: fc.oneof(trickyChar, fc.string({ minLength: 1, maxLength: 1 })) }),
);

/** Small JSON values of any type. */
export const smallJson: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 2 });

/** A JSON payload object. */
export const payloadArb: fc.Arbitrary<Payload> = fc.dictionary(anyString, smallJson, {
  maxKeys: 5,
}).map(jsonClone);

/** A valid message (as the decoder must return it). */
export const messageArb: fc.Arbitrary<Message> = fc.record({
  joinRef: fc.option(anyString, { nil: null }),
  ref: fc.option(anyString, { nil: null }),
  topic: anyString.filter((s) => s !== "" && s.isWellFormed()),
  event: anyString.filter((s) => s !== ""),
  payload: payloadArb,
}, { noNullPrototype: true });

/** The message fields and their wire names. */
export const FIELDS = [
  ["joinRef", "join_ref"],
  ["ref", "ref"],
  ["topic", "topic"],
  ["event", "event"],
  ["payload", "payload"],
] as const;
type Field = typeof FIELDS[number][0];

/** A value of the wrong type for `field`. */
export function wrongValue(field: Field): fc.Arbitrary<unknown> {
  switch (field) {
    case "joinRef":
    case "ref":
      return smallJson.filter((v) => v !== null && typeof v !== "string");
    case "topic":
    case "event":
      return fc.oneof(fc.constant(""), smallJson.filter((v) => typeof v !== "string"));
    case "payload":
      return smallJson.filter((v) => !isPlainObject(v));
  }
}

/** A valid message with exactly one field replaced by a value of the wrong type. */
export const mutatedMessage: fc.Arbitrary<{ field: Field; wire: string; raw: unknown[] }> = fc
  .constantFrom(...FIELDS).chain(([field, wire]) =>
    fc.record({ m: messageArb, bad: wrongValue(field) }).map(({ m, bad }) => {
      const raw: unknown[] = [m.joinRef, m.ref, m.topic, m.event, m.payload];
      raw[FIELDS.findIndex(([f]) => f === field)] = bad;
      return { field, wire, raw };
    })
  );

/** A valid v2 frame with one element dropped or one extra element. */
export const wrongLengthFrame: fc.Arbitrary<string> = fc.tuple(
  messageArb,
  fc.nat({ max: 4 }),
  fc.boolean(),
  smallJson,
).map(([m, i, drop, extra]) => {
  const raw: unknown[] = [m.joinRef, m.ref, m.topic, m.event, m.payload];
  if (drop) raw.splice(i, 1);
  else raw.splice(i, 0, extra);
  return JSON.stringify(raw);
});

/** Any text a client could send as a frame: junk, JSON, arrays, near-valid frames. */
export const anyFrameText: fc.Arbitrary<string> = fc.oneof(
  anyString,
  fc.json({ maxDepth: 3 }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.array(smallJson, { maxLength: 7 }).map((a) => JSON.stringify(a)),
  mutatedMessage.map(({ raw }) => JSON.stringify(raw)),
  wrongLengthFrame,
  messageArb.map((m) => JSON.stringify([m.joinRef, m.ref, m.topic, m.event, m.payload])),
  messageArb.map((m) =>
    JSON.stringify({
      join_ref: m.joinRef,
      ref: m.ref,
      topic: m.topic,
      event: m.event,
      payload: m.payload,
    })
  ),
);

/** The characters of the cursor text form. */
export const CURSOR_ALPHABET = [..."abcdefghijklmnopqrstuvwxyz0123456789~*,=&%.:_-"];

/** Strings over the cursor alphabet. */
export const cursorAlphabetString: fc.Arbitrary<string> = fc.string({
  unit: fc.constantFrom(...CURSOR_ALPHABET),
  maxLength: 80,
});

/** A stream name the parser accepts. */
export const streamName: fc.Arbitrary<string> = fc.stringMatching(
  /^[A-Za-z0-9_.-]{1,64}~[a-z0-9]{1,16}$/,
);

/** One topic's position. */
export const topicCursorArb: fc.Arbitrary<TopicCursor> = fc.record({
  since: fc.nat({ max: 1e13 }),
  streams: fc.uniqueArray(fc.tuple(streamName, fc.nat()), { selector: ([s]) => s, maxLength: 4 })
    .map((pairs) => new Map(pairs)),
}, { noNullPrototype: true });

/** A valid cursor; topics are non-empty, well-formed unicode strings. */
export const cursorArb: fc.Arbitrary<Cursor> = fc.uniqueArray(
  fc.tuple(
    fc.oneof(fc.string({ minLength: 1 }), fc.string({ unit: "grapheme", minLength: 1 })),
    topicCursorArb,
  ),
  { selector: ([topic]) => topic, maxLength: 4 },
).map((entries) => new Map(entries));

/** Values worth trying for any env variable. */
export const envValue: fc.Arbitrary<string> = fc.oneof(
  anyString,
  fc.integer().map(String),
  fc.double().map(String),
  fc.constantFrom(
    "",
    " ",
    "0",
    "-1",
    "1",
    "65535",
    "65536",
    "100000",
    "100001",
    "1e3",
    "1.5",
    "0x10",
    "Infinity",
    "NaN",
    " 42 ",
    "debug",
    "warn",
    "verbose",
    "https://example.upstash.io",
    "not a url",
    "a-very-long-secret-value",
    "node.1",
    "bad node",
    "*",
    "https://example.com",
    "https://a.example, http://b.example:8080",
    "example.com",
  ),
);

/** An env record: known keys to arbitrary values, plus unknown keys. */
export const envArb: fc.Arbitrary<Record<string, string | undefined>> = fc.tuple(
  fc.dictionary(fc.constantFrom(...CONFIG_KEYS), fc.option(envValue, { nil: undefined }), {
    maxKeys: CONFIG_KEYS.length,
  }),
  fc.dictionary(
    fc.oneof(
      fc.string(),
      fc.constantFrom("constructor", "toString", "__proto__", "hasOwnProperty", "port", "Port"),
    ),
    fc.option(envValue, { nil: undefined }),
    { maxKeys: 3 },
  ),
).map(([known, unknown]) =>
  // fromEntries keeps an own "__proto__" key as data.
  Object.fromEntries([...Object.entries(unknown), ...Object.entries(known)])
);

/** Topics for broadcast bodies: routable, unroutable, empty, or not strings at all. */
const bodyTopic: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom("status:a", "record:1", "status:", "record:", "", "nope:1", "status"),
  anyString.map((s) => `status:${s}`),
  anyString,
  smallJson,
);

/** Events for broadcast bodies: plain, reserved, too long, or not strings. */
const bodyEvent: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    "status",
    "update",
    "",
    "phx_join",
    "phx_reply",
    "presence_diff",
    "heartbeat",
    "joined",
    "x".repeat(128),
    "x".repeat(129),
  ),
  anyString,
  smallJson,
);

/** A broadcast message whose fields may be missing or of any type. */
export const bodyMessage: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      topic: bodyTopic,
      event: bodyEvent,
      payload: fc.oneof(payloadArb, smallJson),
    }, { requiredKeys: [] }),
  },
  { weight: 1, arbitrary: smallJson },
);
