/**
 * Property-based tests (fast-check) for "no crash, always a clear error": the frame decoder, the
 * cursor parser, the env config, the broadcast API body and raw WebSocket frames. The app is
 * served in-process on a free port.
 */
import { serveInProcess } from "../support/in_process.ts";
import { MAX_TOPIC_BYTES } from "../../lib/core/topic.ts";
import assert from "node:assert/strict";
import fc from "fast-check";
import { channels } from "../../channels/mod.ts";
import { CONFIG_KEYS, ConfigError, loadConfig } from "../../lib/config.ts";
import { type Cursor, CursorError, formatCursor, parseCursor } from "../../lib/resume/cursor.ts";
import type { Message } from "../../lib/core/message.ts";
import {
  FrameError,
  type Serializer,
  v1Serializer,
  v2Serializer,
  type Vsn,
} from "../../lib/core/serializer.ts";
import { isReply, openRaw, type RawFrame } from "../support/raw_ws.ts";
import {
  anyFrameText,
  anyString,
  bodyMessage,
  cursorAlphabetString,
  cursorArb,
  envArb,
  isPlainObject,
  messageArb,
  mutatedMessage,
  payloadArb,
  smallJson,
  wrongLengthFrame,
} from "../support/fuzz.ts";

const PURE_RUNS = 200;
const HTTP_RUNS = 150;
const WS_RUNS = 200;
const VERSIONS: Vsn[] = ["2.0.0", "1.0.0"];
const SERIALIZERS: Record<Vsn, Serializer> = { "2.0.0": v2Serializer, "1.0.0": v1Serializer };
const decodeFrame = (text: string, vsn: Vsn) => SERIALIZERS[vsn].decode(text);
const encodeFrame = (msg: Message, vsn: Vsn) => SERIALIZERS[vsn].encode(msg);

// ---------------------------------------------------------------------------------------------
// Frame decoder

/** Decodes `text`; asserts a well-typed Message or a FrameError with a message, and returns it. */
function decodeOrFrameError(text: string, vsn: Vsn): Message | FrameError {
  let msg: Message;
  try {
    msg = decodeFrame(text, vsn);
  } catch (err) {
    assert.ok(err instanceof FrameError, `not a FrameError for ${JSON.stringify(text)}: ${err}`);
    assert.equal(typeof err.message, "string");
    assert.ok(err.message.length > 0, "FrameError with an empty message");
    return err;
  }
  assert.deepEqual(Object.keys(msg).sort(), ["event", "joinRef", "payload", "ref", "topic"]);
  assert.ok(msg.joinRef === null || typeof msg.joinRef === "string", "joinRef type");
  assert.ok(msg.ref === null || typeof msg.ref === "string", "ref type");
  assert.ok(typeof msg.topic === "string" && msg.topic !== "", "topic type");
  assert.ok(typeof msg.event === "string" && msg.event !== "", "event type");
  assert.ok(isPlainObject(msg.payload), "payload is a plain object");
  return msg;
}

Deno.test("fuzz: the frame decoder returns a Message or throws a FrameError", async (t) => {
  const inputs: [string, fc.Arbitrary<string>][] = [
    ["arbitrary strings", anyString],
    ["fc.json()", fc.json()],
    ["fc.jsonValue()", fc.jsonValue().map((v) => JSON.stringify(v))],
    [
      "arrays of 0..7 values",
      fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 7 }).map(
        (a) => JSON.stringify(a),
      ),
    ],
    ["v2 frames of the wrong length", wrongLengthFrame],
    ["any frame text", anyFrameText],
  ];
  for (const [name, arb] of inputs) {
    await t.step(name, () => {
      for (const vsn of VERSIONS) {
        fc.assert(fc.property(arb, (text) => void decodeOrFrameError(text, vsn)), {
          numRuns: PURE_RUNS,
        });
      }
    });
  }

  await t.step("v2 frames with one field of the wrong type: a FrameError naming it", () => {
    fc.assert(
      fc.property(mutatedMessage, ({ wire, raw }) => {
        const result = decodeOrFrameError(JSON.stringify(raw), "2.0.0");
        assert.ok(result instanceof FrameError, `decoded ${JSON.stringify(raw)}`);
        assert.ok(result.message.startsWith(`${wire} `), result.message);
      }),
      { numRuns: PURE_RUNS },
    );
  });

  await t.step("v1 frames with one field of the wrong type: a FrameError naming it", () => {
    fc.assert(
      fc.property(mutatedMessage, ({ wire, raw }) => {
        const [join_ref, ref, topic, event, payload] = raw;
        const text = JSON.stringify({ join_ref, ref, topic, event, payload });
        const result = decodeOrFrameError(text, "1.0.0");
        assert.ok(result instanceof FrameError, `decoded ${text}`);
        assert.ok(result.message.startsWith(`${wire} `), result.message);
      }),
      { numRuns: PURE_RUNS },
    );
  });

  await t.step("round trip: decode(encode(m)) equals m", () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        assert.deepEqual(decodeFrame(encodeFrame(m, "2.0.0"), "2.0.0"), m);
        // v1 server frames carry no join_ref.
        assert.deepEqual(decodeFrame(encodeFrame(m, "1.0.0"), "1.0.0"), { ...m, joinRef: null });
      }),
      { numRuns: PURE_RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Cursor parser

const CURSOR_TOO_LONG = "cursor is longer than 16384 characters";
const STREAM = /^[A-Za-z0-9_.-]{1,64}~[a-z0-9]{1,16}$/;

/** Parses `text`; asserts a well-formed Cursor or a CursorError saying "bad cursor". */
function parseOrCursorError(text: string): Cursor | CursorError {
  let cursor: Cursor;
  try {
    cursor = parseCursor(text);
  } catch (err) {
    assert.ok(err instanceof CursorError, `not a CursorError for ${JSON.stringify(text)}: ${err}`);
    assert.ok(
      err.message.startsWith("bad cursor") || err.message === CURSOR_TOO_LONG,
      err.message,
    );
    return err;
  }
  assert.ok(cursor instanceof Map);
  for (const [topic, position] of cursor) {
    assert.equal(typeof topic, "string");
    assert.ok(Number.isSafeInteger(position.since) && position.since >= 0, "since");
    assert.ok(position.streams instanceof Map);
    for (const [stream, seq] of position.streams) {
      assert.match(stream, STREAM);
      assert.ok(Number.isSafeInteger(seq) && seq >= 0, "seq");
    }
  }
  return cursor;
}

/** Small edits of a string over the cursor alphabet. */
const nearValidCursor: fc.Arbitrary<string> = fc.tuple(
  cursorArb.map(formatCursor),
  fc.nat(),
  fc.nat({ max: 3 }),
  cursorAlphabetString,
).map(([text, at, cut, insert]) => {
  const i = text.length === 0 ? 0 : at % (text.length + 1);
  return text.slice(0, i) + insert.slice(0, 3) + text.slice(i + cut);
});

Deno.test("fuzz: the cursor parser returns a Cursor or throws a CursorError", async (t) => {
  const inputs: [string, fc.Arbitrary<string>][] = [
    ["arbitrary strings", anyString],
    ["strings over the cursor alphabet", cursorAlphabetString],
    ["near-valid cursors", nearValidCursor],
    [
      "over-long strings",
      fc.tuple(fc.nat({ max: 100 }), cursorAlphabetString).map(([n, s]) =>
        `a=1${"0".repeat(16_384 + n)}${s}`
      ),
    ],
  ];
  for (const [name, arb] of inputs) {
    await t.step(name, () => {
      fc.assert(
        fc.property(arb, (text) => {
          const result = parseOrCursorError(text);
          // Whatever parses, formats back to text that parses to the same cursor.
          if (result instanceof Map) assert.deepEqual(parseCursor(formatCursor(result)), result);
        }),
        { numRuns: PURE_RUNS },
      );
    });
  }

  await t.step("round trip: parse(format(c)) equals c", () => {
    fc.assert(
      fc.property(cursorArb, (cursor) => {
        assert.deepEqual(parseCursor(formatCursor(cursor)), cursor);
      }),
      { numRuns: PURE_RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Env config

Deno.test("fuzz: loadConfig returns a config or a ConfigError naming a given key", () => {
  fc.assert(
    fc.property(envArb, (env) => {
      const given = new Set(
        Object.entries(env)
          .filter(([k, v]) => CONFIG_KEYS.includes(k) && v !== undefined && v.trim() !== "")
          .map(([k]) => k),
      );
      let config;
      try {
        config = loadConfig(env);
      } catch (err) {
        assert.ok(err instanceof ConfigError, `not a ConfigError: ${err}`);
        const [head, ...lines] = err.message.split("\n");
        assert.equal(head, "invalid configuration:");
        // Lines name variables; a bad value echoed in a message may carry its own newlines.
        const named = lines.flatMap((line) => line.match(/^ {2}([A-Z_/]+): \S/)?.[1] ?? []);
        assert.ok(named.length > 0, `no variable named: ${JSON.stringify(err.message)}`);
        for (const name of named) {
          assert.ok(name.split("/").some((k) => given.has(k)), `${name} was not given: ${name}`);
        }
        return;
      }
      assert.ok(Number.isInteger(config.port) && config.port >= 0 && config.port <= 65535);
      if (given.has("PORT")) assert.equal(config.port, Number(env.PORT!.trim()));
      assert.ok(config.host.length > 0);
      assert.ok(["debug", "info", "warn", "error"].includes(config.logLevel));
      assert.match(config.redisPrefix, /^[A-Za-z0-9_.:-]{1,64}$/);
      for (
        const n of [
          config.maxFrameBytes,
          config.maxApiBodyBytes,
          config.heartbeatTimeoutMs,
          config.sseHeartbeatMs,
          config.history.size,
          config.history.maxAgeMs,
          config.longpollTimeoutMs,
        ]
      ) {
        assert.ok(Number.isSafeInteger(n) && n > 0, `limit ${n}`);
      }
      assert.ok(config.history.size <= 100_000);
      assert.ok(Number.isSafeInteger(config.presenceBatchMs) && config.presenceBatchMs >= 0);
      assert.equal(config.socketSecret === undefined || config.socketSecret.length >= 16, true);
      assert.equal(
        config.redis === undefined,
        !given.has("UPSTASH_REDIS_REST_URL") && !given.has("UPSTASH_REDIS_REST_TOKEN"),
      );
    }),
    { numRuns: PURE_RUNS },
  );
});

// ---------------------------------------------------------------------------------------------
// The app, served in-process

const MAX_BODY = 4096;

function serve(env: Record<string, string> = {}) {
  return serveInProcess({ channels, env: { MAX_API_BODY_BYTES: String(MAX_BODY), ...env } });
}

async function assertHealthy(url: string): Promise<void> {
  const res = await fetch(`${url}/healthz`);
  const body = await res.json();
  assert.equal(res.status, 200);
  assert.equal(body.status, "ok");
}

/** What POST /api/broadcast must answer for a body: the status and what the error names. */
type Expected =
  | { status: 202; accepted: number }
  | { status: 400 | 413; error: RegExp; names?: string[] };

const _RESERVED = /^(phx_|presence_)|^(heartbeat|joined|reset)$/;
// deno-lint-ignore no-control-regex
const _CONTROL = /[\u0000-\u001f\u007f]/;
/** The server's default MAX_PAYLOAD_DEPTH. */
const _MAX_DEPTH = 32;

function _depth(value: unknown): number {
  if (typeof value !== "object" || value === null) return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + Math.max(0, ...children.map(_depth));
}

/** The paths of a message's bad fields (`prefix` is "" or "[i]."). */
function messageProblems(m: unknown, prefix: string): string[] {
  if (!isPlainObject(m)) return [prefix === "" ? "(root)" : prefix.slice(0, -1)];
  const problems: string[] = [];
  const topic = m.topic;
  const routable = typeof topic === "string" && topic.isWellFormed() &&
    new TextEncoder().encode(topic).length <= MAX_TOPIC_BYTES &&
    ["status:", "record:"].some((p) => topic.startsWith(p) && topic.length > p.length);
  if (!routable) problems.push(`${prefix}topic`);
  const event = m.event;
  if (
    typeof event !== "string" || event.length === 0 || event.length > 128 ||
    _RESERVED.test(event) || _CONTROL.test(event) || !event.isWellFormed()
  ) {
    problems.push(`${prefix}event`);
  }
  if (
    m.payload !== undefined && (!isPlainObject(m.payload) || _depth(m.payload) > _MAX_DEPTH)
  ) problems.push(`${prefix}payload`);
  return problems;
}

/** The model of POST /api/broadcast. */
function expectedAnswer(text: string): Expected {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length > MAX_BODY) return { status: 413, error: /^body larger than 4096 bytes$/ };
  // The body travels as UTF-8: lone surrogates arrive as U+FFFD.
  const received = new TextDecoder().decode(bytes);
  if (received.trim() === "") return { status: 400, error: /^empty body: / };
  let value: unknown;
  try {
    value = JSON.parse(received);
  } catch {
    return { status: 400, error: /^body is not valid JSON: / };
  }
  const messages = Array.isArray(value) ? value : [value];
  if (Array.isArray(value) && (value.length === 0 || value.length > 1000)) {
    return { status: 400, error: /^invalid body: \(root\): /, names: ["(root)"] };
  }
  const problems = messages.flatMap((m, i) =>
    messageProblems(m, Array.isArray(value) ? `[${i}].` : "")
  );
  if (problems.length > 0) return { status: 400, error: /^invalid body: .+: ./, names: problems };
  return { status: 202, accepted: messages.length };
}

/** A body to POST: its text, sent with a content-length or streamed in chunks. */
interface Body {
  text: string;
  stream: boolean;
}

const oversized: fc.Arbitrary<string> = fc.tuple(
  fc.integer({ min: MAX_BODY + 1, max: 3 * MAX_BODY }),
  fc.boolean(),
).map(([size, valid]) => {
  const head = valid ? '{"topic":"status:big","event":"status","payload":{"pad":"' : '{"pad":"';
  return `${head}${"x".repeat(Math.max(0, size - head.length - 3))}"}}`;
});

const bodyArb: fc.Arbitrary<Body> = fc.record({
  text: fc.oneof(
    anyString,
    fc.json(),
    bodyMessage.map((m) => JSON.stringify(m)),
    fc.array(bodyMessage, { maxLength: 20 }).map((a) => JSON.stringify(a)),
    fc.array(
      fc.record({
        topic: fc.constantFrom("status:a", "record:7"),
        event: fc.constantFrom("status", "update"),
        payload: payloadArb,
      }),
      { minLength: 1, maxLength: 20 },
    ).map((a) => JSON.stringify(a)),
    oversized,
  ),
  stream: fc.boolean(),
});

function requestBody({ text, stream }: Body): BodyInit {
  if (!stream) return text;
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 1000) controller.enqueue(bytes.slice(i, i + 1000));
      controller.close();
    },
  });
}

Deno.test("fuzz: POST /api/broadcast answers 202, 400 or 413 with a JSON error", async () => {
  const app = serve();
  try {
    await fc.assert(
      fc.asyncProperty(bodyArb, async (body) => {
        const expected = expectedAnswer(body.text);
        const res = await fetch(`${app.url}/api/broadcast`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: requestBody(body),
        });
        const text = await res.text();
        const where = `POST ${JSON.stringify(body.text.slice(0, 300))} -> ${res.status} ${text}`;
        assert.match(res.headers.get("content-type") ?? "", /^application\/json/, where);
        let answer: Record<string, unknown>;
        try {
          answer = JSON.parse(text);
        } catch {
          assert.fail(`not a JSON body: ${where}`);
        }
        assert.equal(res.status, expected.status, where);
        if (expected.status === 202) {
          assert.deepEqual(answer, { accepted: expected.accepted }, where);
          return;
        }
        assert.equal(typeof answer.error, "string", where);
        const error = answer.error as string;
        assert.match(error, expected.error, where);
        if (expected.names) {
          assert.ok(expected.names.some((n) => error.includes(`${n}: `)), where);
        }
      }),
      { numRuns: HTTP_RUNS },
    );
    await assertHealthy(app.url);
  } finally {
    await app.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Raw WebSocket frames

/** Frames aimed at the real channels (joins with cursors, pushes, leaves). */
const channelFrame: fc.Arbitrary<string> = fc.record({
  joinRef: fc.option(fc.string(), { nil: null }),
  ref: fc.option(fc.string(), { nil: null }),
  topic: fc.oneof(
    fc.constantFrom("status:a", "record:1", "phoenix", "nope:1"),
    anyString.map((s) => `status:${s}`),
    anyString.map((s) => `record:${s}`),
  ),
  event: fc.oneof(
    fc.constantFrom("phx_join", "phx_leave", "heartbeat", "state", "patch", "status"),
    fc.string({ minLength: 1 }),
  ),
  payload: fc.oneof(
    payloadArb,
    fc.record({
      cursor: fc.oneof(fc.constant(""), cursorAlphabetString, cursorArb.map(formatCursor)),
      name: smallJson,
    }, { requiredKeys: [] }),
    fc.record({ state: fc.oneof(fc.constantFrom("viewing", "editing"), smallJson) }),
  ),
}).map((m) => JSON.stringify([m.joinRef, m.ref, m.topic, m.event, m.payload]));

/** Joins of the real channels' topics, with a `cursor` join param (resume). */
const joinFrame: fc.Arbitrary<string> = fc.record({
  ref: fc.string(),
  topic: fc.tuple(fc.constantFrom("status:", "record:"), anyString).map(([p, s]) => p + s),
  cursor: fc.oneof(fc.constant(""), cursorAlphabetString, cursorArb.map(formatCursor)),
}).map(({ ref, topic, cursor }) => JSON.stringify([ref, ref, topic, "phx_join", { cursor }]));

Deno.test("fuzz: raw WebSocket frames never break the socket or the server", async () => {
  // Limits high enough that every fuzzed frame reaches its handler (no rate_limited or
  // too_many_topics short cut); unknown keys would be ignored by loadConfig.
  const app = serve({
    PUSH_RATE_PER_SEC: "1000000",
    PUSH_BURST: "1000000",
    MAX_TOPICS_PER_SESSION: "1000000",
  });
  // Errors the server logs while handling a frame are crashes of that frame.
  const logged: string[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => void logged.push(args.map(String).join(" "));
  const ws = await openRaw(`${app.socketUrl}/websocket?vsn=2.0.0`);
  try {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(anyFrameText, channelFrame, { arbitrary: joinFrame, weight: 2 }),
        async (text) => {
          logged.length = 0;
          const from = ws.log.length;
          const hb = `fuzz-hb-${++n}`;
          ws.send(text);
          ws.push(null, hb, "phoenix", "heartbeat", {});
          // Frames are handled in order: the reply comes after whatever the frame caused.
          const reply = await ws.next(isReply(hb));
          assert.deepEqual(reply.json, [null, hb, "phoenix", "phx_reply", {
            status: "ok",
            response: {},
          }]);
          assert.deepEqual(
            logged.splice(0),
            [],
            `the server logged errors for ${JSON.stringify(text)}`,
          );
          const decoded = (() => {
            try {
              return decodeFrame(text, "2.0.0");
            } catch (err) {
              return err as FrameError;
            }
          })();
          const sent = ws.log.slice(from);
          if (!(decoded instanceof FrameError) && decoded.event === "phx_join") {
            // Every join is answered, ok or error.
            assert.ok(
              sent.some((f) =>
                f.event === "phx_reply" && f.ref === decoded.ref && f.topic === decoded.topic
              ),
              `no reply to the join ${JSON.stringify(text)}`,
            );
          }
          if (decoded instanceof FrameError) {
            assert.ok(
              sent.some((f: RawFrame) =>
                f.topic === "phoenix" && f.event === "phx_error" &&
                JSON.stringify(f.payload) ===
                  JSON.stringify({ reason: "bad_frame", detail: decoded.message })
              ),
              `no bad_frame phx_error for ${JSON.stringify(text)}`,
            );
          }
        },
      ),
      { numRuns: WS_RUNS },
    );
    ws.send('[null,"hb","phoenix","heartbeat",{}]');
    const reply = await ws.next(isReply("hb"));
    assert.equal(reply.raw, '[null,"hb","phoenix","phx_reply",{"status":"ok","response":{}}]');
    await assertHealthy(app.url);
  } finally {
    console.error = consoleError;
    await ws.close();
    await app.close();
  }
});
