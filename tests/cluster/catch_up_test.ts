/**
 * The transport-neutral pieces of "nothing lost across nodes": envelopes packed under the bus'
 * line limit, the sent log that answers re-send requests, and the receiving side that holds
 * what came early, asks for gaps, and declares lost what nobody has any more.
 */
import assert from "node:assert/strict";
import type { BrokerMessage } from "../../lib/core/broker.ts";
import { InboundRuns, SentLog } from "../../lib/cluster/catch_up.ts";
import {
  type BusEnvelope,
  envelopeJson,
  packByBytes,
  parseEnvelope,
} from "../../lib/cluster/envelope.ts";

function msg(n: number): BrokerMessage {
  return {
    topic: "t",
    event: "e",
    payload: { n },
    origin: { nodeId: "a" },
    stream: "a~x",
    seq: n,
    at: 0,
  };
}

function env(fields: Partial<BusEnvelope>): BusEnvelope {
  return { v: 1, n: "a", e: "run1", s: 1, t: 0, ...fields };
}

function receiver(clock = { now: () => 0 }) {
  const delivered: number[] = [];
  const lost: number[] = [];
  const asked: number[] = [];
  const runs = new InboundRuns({
    clock,
    deliver: (m) => delivered.push(m.payload.n as number),
    lost: (_node, count) => lost.push(count),
    request: (_node, _epoch, from) => asked.push(from),
    retryMs: 100,
    maxAsks: 2,
  });
  return { runs, delivered, lost, asked };
}

Deno.test("envelopes stay under the limit, whatever the burst", () => {
  const parts = Array.from({ length: 20 }, (_, i) => JSON.stringify(msg(i)) + " ".repeat(60_000));
  const groups = packByBytes(parts, 128 * 1024);
  assert.equal(groups.flat().length, 20, "nothing dropped, order kept");
  assert.deepEqual(groups.flat(), parts);
  for (const group of groups) {
    const json = envelopeJson({ v: 1, n: "a", e: "r", s: 1, t: 0, i: 1 }, { m: group });
    assert.ok(json.length < 128 * 1024 + 1024, `an envelope of ${json.length} characters`);
  }
  const one = envelopeJson({ v: 1, n: "a", e: "r", s: 2, t: 0, h: 3 }, {
    m: [JSON.stringify(msg(1))],
    p: [`"t":{"ann":{"metas":[]}}`],
  });
  const parsed = parseEnvelope(one)!;
  assert.deepEqual(parsed.m, [msg(1)]);
  assert.deepEqual(parsed.p, { t: { ann: { metas: [] } } });
  assert.equal(parsed.h, 3);
});

Deno.test("the sent log re-sends from an index, and says where it starts", () => {
  let now = 0;
  const log = new SentLog({ count: 3, bytes: 1 << 20, maxAgeMs: 1000 }, { now: () => now });
  for (let n = 1; n <= 5; n++) assert.equal(log.add(`m${n}`), n);
  assert.deepEqual(log.from(4), { first: 4, messages: ["m4", "m5"] });
  assert.deepEqual(log.from(1), { first: 3, messages: ["m3", "m4", "m5"] }, "1 and 2 are gone");
  now = 5000;
  assert.deepEqual(log.from(1), { first: 6, messages: [] }, "everything too old");
});

Deno.test("a receiver holds what came early, asks for the gap, delivers in order", () => {
  const r = receiver();
  r.runs.take(env({ i: 1, h: 2, m: [msg(1), msg(2)] }));
  r.runs.take(env({ i: 5, h: 6, m: [msg(5), msg(6)] }));
  assert.deepEqual(r.delivered, [1, 2]);
  assert.deepEqual(r.asked, [3]);
  r.runs.take(env({ r: true, i: 3, h: 6, m: [msg(3), msg(4), msg(5), msg(6)] }));
  assert.deepEqual(r.delivered, [1, 2, 3, 4, 5, 6], "each once, in order");
  assert.deepEqual(r.lost, []);
});

Deno.test("a heartbeat past what arrived is a gap too; a re-send past it is a loss", () => {
  const r = receiver();
  r.runs.take(env({ i: 1, h: 1, m: [msg(1)] }));
  r.runs.take(env({ h: 4 }));
  assert.deepEqual(r.asked, [2]);
  // The publisher kept only 4: 2 and 3 are lost, and said so.
  r.runs.take(env({ r: true, i: 4, h: 4, m: [msg(4)] }));
  assert.deepEqual(r.delivered, [1, 4]);
  assert.deepEqual(r.lost, [2]);
});

Deno.test("a gap nobody fills is asked again, then declared lost", () => {
  let now = 0;
  const r = receiver({ now: () => now });
  r.runs.take(env({ i: 1, h: 1, m: [msg(1)] }));
  r.runs.take(env({ i: 3, h: 3, m: [msg(3)] }));
  assert.deepEqual(r.asked, [2]);
  now = 150;
  r.runs.tick();
  assert.deepEqual(r.asked, [2, 2]);
  now = 300;
  r.runs.tick();
  assert.deepEqual(r.lost, [1]);
  assert.deepEqual(r.delivered, [1, 3], "what was held goes on after the loss");
});

Deno.test("a restarted node: its old run's missing messages are lost, the new run followed from 1", () => {
  const r = receiver();
  r.runs.take(env({ i: 1, h: 1, m: [msg(1)] }));
  r.runs.take(env({ h: 3 }));
  r.runs.take(env({ e: "run2", i: 2, h: 2, m: [msg(12)] }));
  assert.deepEqual(r.lost, [2], "2 and 3 of run1");
  assert.deepEqual(r.asked, [2, 1], "asks run2 for its first");
  r.runs.take(env({ e: "run2", r: true, i: 1, h: 2, m: [msg(11), msg(12)] }));
  assert.deepEqual(r.delivered, [1, 11, 12]);
});

Deno.test("a receiver that starts late follows from where it joins; re-sends for others are not its", () => {
  const r = receiver();
  r.runs.take(env({ r: true, i: 1, h: 9, m: [msg(1)] }));
  r.runs.take(env({ i: 10, h: 10, m: [msg(10)] }));
  assert.deepEqual(r.delivered, [10]);
  assert.deepEqual(r.asked, []);
  r.runs.askAll();
  assert.deepEqual(r.asked, [11], "after its own outage it asks from where it is");
});
