/**
 * Property-based tests (fast-check) of the presence and realtime paths against the real server
 * (issue 21): whatever meta a client tracks, and whatever body a realtime REST call carries,
 * the answer is an ok or a clear refusal, the topic keeps working (newcomers get a
 * `presence_state`, the API reads it) and nothing escapes to the process' last line of defence.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { anyString, smallJson } from "../support/fuzz.ts";
import { uncaughtErrors } from "../support/metrics.ts";
import { joinRealtime, nested } from "../support/presence_attack.ts";
import { replyOf } from "../support/raw_ws.ts";
import { startServer } from "../support/server.ts";

const RUNS = 120;

/** Metas from the plain to the hostile: deep nesting, large strings, odd keys and values. */
const metaArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.dictionary(anyString, smallJson, { maxKeys: 8 }),
  fc.integer({ min: 1, max: 29_000 }).map((depth) => ({ deep: nested(depth) })),
  fc.integer({ min: 0, max: 60_000 }).map((n) => ({ pad: "x".repeat(n) })),
  fc.jsonValue({ maxDepth: 6 }),
  fc.constantFrom({ phx_ref: "forged" }, { __proto__: { a: 1 } }, { constructor: "c" }, null, []),
);

/** The start of a value's JSON, or a note when it nests too deep to print. */
function _describe(value: unknown): string {
  try {
    return String(JSON.stringify(value)).slice(0, 200);
  } catch {
    return "(nested too deep to print)";
  }
}

const REFUSALS = new Set([
  "invalid_payload",
  "presence_meta_too_large",
  "too_many_presences",
  "presence_topic_full",
]);

Deno.test("fuzz: presence tracks get ok or a named refusal; the topic keeps working", async () => {
  const server = await startServer({ PUSH_RATE_PER_SEC: "100000", PUSH_BURST: "100000" });
  const topic = "realtime:fuzz";
  const raw = await joinRealtime(server.socketUrl, topic, "fuzzer");
  try {
    let ref = 1;
    await fc.assert(
      fc.asyncProperty(metaArb, fc.boolean(), async (meta, untrack) => {
        const r = String(++ref);
        const event = untrack ? "untrack" : "track";
        raw.push("1", r, topic, "presence", { type: "presence", event, payload: meta });
        const reply = replyOf(await raw.next((f) => f.ref === r && f.event === "phx_reply"));
        const where = `${event} ${_describe(meta)} -> ${JSON.stringify(reply).slice(0, 300)}`;
        if (reply.status !== "ok") {
          assert.equal(reply.status, "error", where);
          assert.ok(REFUSALS.has(String(reply.response.reason)), where);
        }
        // The topic's presence still encodes, whatever was tracked.
        const listed = await fetch(`${server.url}/api/presence/${topic}`);
        assert.equal(listed.status, 200, `${where}: ${await listed.text()}`);
      }),
      { numRuns: RUNS },
    );
    const late = await joinRealtime(server.socketUrl, topic, "late");
    const state = await late.next((f) => f.event === "presence_state");
    assert.equal(typeof state.payload, "object");
    const listed = await fetch(`${server.url}/api/presence/${topic}`);
    assert.equal(listed.status, 200, await listed.text());
    await late.close();
    assert.equal(await uncaughtErrors(server.url), 0, server.output());
  } finally {
    await raw.close();
    await server.stop();
  }
});

/** Realtime REST bodies: JSON of any shape and depth, and batches. */
const restBody: fc.Arbitrary<string> = fc.oneof(
  fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v)),
  fc.integer({ min: 1, max: 20_000 }).map((d) => `{"v":${"[".repeat(d)}${"]".repeat(d)}}`),
  fc.array(
    fc.record({ topic: fc.constantFrom("fz", "fz2"), event: anyString, payload: smallJson }),
    { maxLength: 5 },
  ).map((messages) => JSON.stringify({ messages })),
  anyString,
);

Deno.test("fuzz: realtime REST answers 202, 400 or 413; the topic still reads", async () => {
  const server = await startServer();
  try {
    await fc.assert(
      fc.asyncProperty(restBody, fc.boolean(), async (body, batch) => {
        const path = batch ? "/api/broadcast" : "/api/broadcast/fz/events/e";
        const res = await fetch(`${server.url}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        const text = await res.text();
        const where = `POST ${path} ${body.slice(0, 200)} -> ${res.status} ${text.slice(0, 200)}`;
        assert.ok([202, 400, 413].includes(res.status), where);
        if (res.status !== 202) assert.equal(typeof JSON.parse(text).error, "string", where);
        // What was accepted still reads back.
        const read = await fetch(`${server.url}/api/topics/realtime:fz`);
        assert.equal(read.status, 200, `${where}: ${await read.text()}`);
      }),
      { numRuns: RUNS },
    );
    for (const topic of ["realtime:fz", "realtime:fz2"]) {
      const read = await fetch(`${server.url}/api/topics/${topic}`);
      assert.equal(read.status, 200, await read.text());
    }
    assert.equal(await uncaughtErrors(server.url), 0, server.output());
  } finally {
    await server.stop();
  }
});
