/** The v2 and v1 serializers and the SSE cursor: what they accept and how they refuse. */
import assert from "node:assert/strict";
import {
  FrameError,
  serializerFor,
  v1Serializer,
  v2Serializer,
} from "../../lib/core/serializer.ts";
import fc from "fast-check";
import { Broadcast } from "../../lib/core/broadcast.ts";
import { CursorError, formatCursor, parseCursor } from "../../lib/resume/cursor.ts";

Deno.test("v2 frames decode to messages and encode back", () => {
  const msg = v2Serializer.decode('["1","2","room:1","phx_join",{"a":1}]');
  assert.deepEqual(msg, {
    joinRef: "1",
    ref: "2",
    topic: "room:1",
    event: "phx_join",
    payload: { a: 1 },
  });
  assert.equal(v2Serializer.encode(msg), '["1","2","room:1","phx_join",{"a":1}]');
  const heartbeat = v2Serializer.decode('[null,"9","phoenix","heartbeat",{}]');
  assert.equal(heartbeat.joinRef, null);
});

Deno.test("v1 frames are objects and server frames carry no join_ref", () => {
  const msg = v1Serializer.decode('{"topic":"t:1","event":"e","payload":{},"ref":"3"}');
  assert.deepEqual(msg, { joinRef: null, ref: "3", topic: "t:1", event: "e", payload: {} });
  assert.deepEqual(JSON.parse(v1Serializer.encode({ ...msg, joinRef: "1" })), {
    topic: "t:1",
    event: "e",
    payload: {},
    ref: "3",
  });
});

Deno.test("bad frames throw FrameError naming the problem", async (t) => {
  const cases: [string, RegExp][] = [
    ["not json", /not valid JSON/],
    ['{"topic":"x"}', /must be an array/],
    ['[null,"1","t","e"]', /must be an array/],
    ['[null,"1","t","e",[]]', /payload must be a JSON object/],
    ['[null,"1",5,"e",{}]', /topic must be a non-empty string/],
    ['[null,"1","t","",{}]', /event must be a non-empty string/],
    ['[1,"1","t","e",{}]', /join_ref must be a string or null/],
    ['[null,2,"t","e",{}]', /ref must be a string or null/],
  ];
  for (const [text, message] of cases) {
    await t.step(text, () => {
      assert.throws(() => v2Serializer.decode(text), (e: unknown) => {
        assert.ok(e instanceof FrameError);
        assert.match(e.message, message);
        return true;
      });
    });
  }
  assert.throws(() => v1Serializer.decode("[]"), /must be an object/);
});

Deno.test("vsn: absent means 1.0.0, 2.0.0 is v2, anything else is unsupported", () => {
  assert.equal(serializerFor(null), v1Serializer);
  assert.equal(serializerFor("2.0.0"), v2Serializer);
  assert.equal(serializerFor("3.0.0"), undefined);
});

Deno.test("cursor round-trips topics with any characters and refuses garbage", () => {
  const cursor = new Map([
    ["status:a&b=c", { since: 1700000000000, streams: new Map([["n1~ab", 3], ["n2.x~9z", 12]]) }],
    ["record:ü 1", { since: 5, streams: new Map() }],
  ]);
  const text = formatCursor(cursor);
  assert.equal(text, "status%3Aa%26b%3Dc=1700000000000,n1~ab*3,n2.x~9z*12&record%3A%C3%BC%201=5");
  assert.deepEqual(parseCursor(text), cursor);
  assert.deepEqual(parseCursor(""), new Map());
  for (
    const bad of [
      "nonsense",
      "a=-1",
      "a=1.5",
      "=3",
      "%E0%A4%A=1",
      "a=99999999999999999",
      "a=1,x*2",
      "a=1,n~a*x",
    ]
  ) {
    assert.throws(() => parseCursor(bad), CursorError, bad);
  }
});

Deno.test("v2 binary frames: the layouts of phoenix/serializer.js and realtime-js", async (t) => {
  const codec = v2Serializer.binary!;
  const bytes = new Uint8Array([9, 8]);
  const utf8 = (s: string) => [...new TextEncoder().encode(s)];
  await t.step("a client push (kind 0) decodes with its refs, topic, event and bytes", () => {
    const frame = new Uint8Array([
      0,
      1,
      1,
      3,
      2,
      ...utf8("1"),
      ...utf8("2"),
      ...utf8("t:1"),
      101,
      118,
      9,
      8,
    ]);
    const msg = codec.decode(frame);
    assert.deepEqual({ ...msg, binary: [...msg.binary!] }, {
      joinRef: "1",
      ref: "2",
      topic: "t:1",
      event: "ev",
      payload: {},
      binary: [9, 8],
    });
  });
  await t.step("a reply (kind 1) carries the status as its event", () => {
    const frame = codec.encode({
      joinRef: "1",
      ref: "2",
      topic: "t:1",
      event: "phx_reply",
      payload: { status: "ok" },
      binary: bytes,
    });
    assert.deepEqual([...frame], [1, 1, 1, 3, 2, ...utf8("12t:1ok"), 9, 8]);
  });
  await t.step("a server push (kind 0) has no ref; a broadcast (kind 2) no refs", () => {
    const push = codec.encode({
      joinRef: "1",
      ref: null,
      topic: "t:1",
      event: "ev",
      payload: {},
      binary: bytes,
    });
    assert.deepEqual([...push], [0, 1, 3, 2, ...utf8("1t:1ev"), 9, 8]);
    const b = new Broadcast({ topic: "t:1", event: "ev", payload: {}, binary: bytes });
    assert.deepEqual([...codec.encodeBroadcast(b)], [2, 3, 2, ...utf8("t:1ev"), 9, 8]);
  });
  await t.step("Supabase user broadcasts: push (kind 3) in, broadcast (kind 4) out", () => {
    const topic = utf8("realtime:r");
    const json = utf8('{"x":1}');
    const jsonPush = new Uint8Array([
      3,
      1,
      1,
      topic.length,
      1,
      0,
      1,
      49,
      50,
      ...topic,
      99,
      ...json,
    ]);
    assert.deepEqual(codec.decode(jsonPush), {
      joinRef: "1",
      ref: "2",
      topic: "realtime:r",
      event: "broadcast",
      payload: { type: "broadcast", event: "c", payload: { x: 1 } },
    });
    const meta = utf8('{"persist":true}');
    const binPush = new Uint8Array([
      3,
      0,
      1,
      topic.length,
      1,
      meta.length,
      0,
      50,
      ...topic,
      99,
      ...meta,
      7,
    ]);
    const decoded = codec.decode(binPush);
    assert.equal(decoded.joinRef, null, "an empty join_ref is null");
    assert.deepEqual(decoded.payload, { type: "broadcast", event: "c", meta: { persist: true } });
    assert.deepEqual([...decoded.binary!], [7]);
    const out = new Broadcast({
      topic: "realtime:r",
      event: "broadcast",
      payload: { type: "broadcast", event: "c" },
      binary: bytes,
    });
    assert.deepEqual([...codec.encodeBroadcast(out)], [
      4,
      topic.length,
      1,
      0,
      0,
      ...topic,
      99,
      9,
      8,
    ]);
  });
  await t.step("bad frames throw FrameError; v1 has no binary frames", () => {
    assert.throws(() => codec.decode(new Uint8Array([])), FrameError);
    assert.throws(() => codec.decode(new Uint8Array([3, 0, 0, 1, 1, 0, 7, 116, 99])), /encoding/);
    assert.throws(
      () => codec.decode(new Uint8Array([3, 0, 0, 1, 1, 0, 1, 116, 99, 123])),
      /payload is not valid JSON/,
    );
    assert.equal(v1Serializer.binary, undefined);
    const long = "x".repeat(256);
    assert.throws(
      () =>
        codec.encodeBroadcast(
          new Broadcast({ topic: long, event: "e", payload: {}, binary: bytes }),
        ),
      /at most 255/,
    );
  });
});

Deno.test("any bytes decode to a message or throw FrameError, never anything else", () => {
  const codec = v2Serializer.binary!;
  // Frames that start like the two client kinds, then anything: the decoder's edge cases.
  const frame = fc.tuple(
    fc.constantFrom(0, 3, 1, 2, 4, 255),
    fc.uint8Array({ maxLength: 12 }),
    fc.uint8Array({ maxLength: 64 }),
  ).map(([kind, header, rest]) => new Uint8Array([kind, ...header, ...rest]));
  fc.assert(
    fc.property(fc.oneof(frame, fc.uint8Array({ maxLength: 300 })), (bytes) => {
      try {
        const msg = codec.decode(bytes);
        assert.equal(typeof msg.topic, "string");
        assert.ok(msg.topic.length > 0);
      } catch (err) {
        if (!(err instanceof FrameError)) throw err;
      }
    }),
    { numRuns: 2000 },
  );
});

Deno.test("a cursor whose topic holds a raw lone surrogate is refused (fuzz counterexample)", () => {
  assert.throws(() => parseCursor("\ud800=0"), CursorError);
  assert.throws(() => parseCursor("%F0%9F=0"), CursorError);
});
