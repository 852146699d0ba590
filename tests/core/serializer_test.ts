/** The v2 and v1 serializers and the SSE cursor: what they accept and how they refuse. */
import assert from "node:assert/strict";
import {
  FrameError,
  serializerFor,
  v1Serializer,
  v2Serializer,
} from "../../lib/core/serializer.ts";
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
