/** The hub: local fan-out encoded once per topic, broadcast-from, retention and positions. */
import { v2Serializer } from "../../lib/core/serializer.ts";
import assert from "node:assert/strict";
import { type BrokerMessage, MessageTooLargeError } from "../../lib/core/broker.ts";
import { MemoryBroker } from "../../lib/core/broker_memory.ts";
import type { Broadcast } from "../../lib/core/broadcast.ts";
import { Hub } from "../../lib/core/hub.ts";
import { channelTest, FakeClock } from "../../lib/testing.ts";
import { statusChannel } from "../../channels/status.ts";

Deno.test("every subscriber gets the same Broadcast object, so it is encoded once", () => {
  const hub = new Hub({ broker: new MemoryBroker(), nodeId: "n1" });
  const seen: Broadcast[] = [];
  for (let i = 0; i < 3; i++) hub.subscribe("t:1", { id: `s${i}`, deliver: (b) => seen.push(b) });
  hub.broadcast("t:1", "e", { a: 1 });
  assert.equal(seen.length, 3);
  assert.ok(seen.every((b) => b === seen[0]));
  const frames = seen.map((b) => v2Serializer.encodeBroadcast(b));
  assert.ok(frames.every((f) => f === frames[0]));
  assert.equal(frames[0], '[null,null,"t:1","e",{"a":1}]');
});

Deno.test("broadcast-from skips only the sending subscriber", () => {
  const hub = new Hub({ broker: new MemoryBroker(), nodeId: "n1" });
  const got: string[] = [];
  hub.subscribe("t:1", { id: "a", deliver: () => got.push("a") });
  hub.subscribe("t:1", { id: "b", deliver: () => got.push("b") });
  hub.broadcast("t:1", "e", {}, { exceptId: "a" });
  assert.deepEqual(got, ["b"]);
});

Deno.test("sequences count 1, 2, 3 per topic in this node's stream; presence is not numbered", () => {
  const hub = new Hub({ broker: new MemoryBroker(), nodeId: "n1" });
  assert.equal(hub.broadcast("t:1", "e", { n: 1 }).seq, 1);
  assert.equal(hub.broadcast("t:2", "e", { n: 1 }).seq, 1);
  const second = hub.broadcast("t:1", "e", { n: 2 });
  assert.equal(second.seq, 2);
  assert.match(second.stream, /^n1~[a-z0-9]+$/);
  assert.equal(hub.broadcast("t:1", "presence_diff", { joins: {}, leaves: {} }).seq, 0);
  assert.deepEqual(hub.last("t:1")?.payload, { n: 2 });
  assert.equal(hub.last("t:3"), undefined);
  assert.deepEqual([...hub.head("t:1").streams], [[second.stream, 2]]);
});

Deno.test("a failing subscriber does not stop delivery to the others", () => {
  const errors: unknown[] = [];
  const quiet = () => {};
  const log = { debug: quiet, info: quiet, warn: quiet, error: (m: string) => errors.push(m) };
  const hub = new Hub({ broker: new MemoryBroker(), nodeId: "n1", log });
  let delivered = 0;
  hub.subscribe("t:1", {
    id: "bad",
    deliver: () => {
      throw new Error("boom");
    },
  });
  hub.subscribe("t:1", { id: "good", deliver: () => delivered++ });
  hub.broadcast("t:1", "e", {});
  assert.equal(delivered, 1);
  assert.equal(errors.length, 1);
});

Deno.test("unsubscribe removes the subscriber and forgets empty topics", () => {
  const hub = new Hub({ broker: new MemoryBroker(), nodeId: "n1" });
  const off = hub.subscribe("t:1", { id: "a", deliver: () => {} });
  assert.equal(hub.topicCount, 1);
  off();
  off();
  assert.equal(hub.topicCount, 0);
  assert.equal(hub.subscriberCount("t:1"), 0);
});

/** A memory broker whose "other node" is the test: it hands the hub messages as if received. */
class InboxBroker extends MemoryBroker {
  receive: (msg: BrokerMessage) => void = () => {};
  override onMessage(handler: (msg: BrokerMessage) => void): void {
    this.receive = handler;
  }
}

Deno.test("from another node: a re-sent number is had already, a skipped number is a loss", () => {
  const broker = new InboxBroker();
  const hub = new Hub({ broker, nodeId: "n1" });
  const got: (number | "lost")[] = [];
  hub.subscribe("t:1", {
    id: "s",
    deliver: (b) => got.push(b.payload.n as number),
    lost: () => got.push("lost"),
  });
  const from = (seq: number): BrokerMessage => ({
    topic: "t:1",
    event: "e",
    payload: { n: seq },
    origin: { nodeId: "n2" },
    stream: "n2~abc",
    seq,
    at: Date.now(),
  });
  for (const seq of [1, 2, 2, 1, 4, 5]) broker.receive(from(seq));
  assert.deepEqual(got, [1, 2, "lost", 4, 5]);
});

Deno.test("a message too large for the bus is refused before anything happens", () => {
  const broker = new (class extends MemoryBroker {
    readonly maxMessageBytes = 1000;
    override publish(msg: BrokerMessage): void {
      const bytes = JSON.stringify(msg).length;
      if (bytes > this.maxMessageBytes) throw new MessageTooLargeError(bytes, 1000);
    }
  })();
  const hub = new Hub({ broker, nodeId: "n1" });
  const got: unknown[] = [];
  hub.subscribe("t:1", { id: "s", deliver: (b) => got.push(b.payload) });
  assert.throws(() => hub.checkSize("t:1", "e", { blob: "x".repeat(2000) }), MessageTooLargeError);
  assert.throws(() => hub.broadcast("t:1", "e", { blob: "x".repeat(2000) }), /too large/);
  assert.deepEqual(got, [], "not delivered locally either");
  assert.equal(hub.broadcast("t:1", "e", { n: 1 }).seq, 1, "no number was used up");
});

Deno.test("a viewer whose updates from another node were lost gets a reset with the current status", async () => {
  const broker = new InboxBroker();
  // Real time as the start: the messages below carry `at: Date.now()`.
  await using t = channelTest({
    channels: [statusChannel],
    broker,
    clock: new FakeClock(Date.now()),
  });
  const viewer = t.connect();
  assert.equal((await viewer.join("status:lost", {})).status, "ok");
  const from = (seq: number): BrokerMessage => ({
    topic: "status:lost",
    event: "status",
    payload: { n: seq },
    origin: { nodeId: "n2" },
    stream: "n2~abc",
    seq,
    at: Date.now(),
  });
  broker.receive(from(1));
  assert.deepEqual(await viewer.nextEvent("status:lost", "status"), { n: 1 });
  broker.receive(from(3)); // 2 never came
  const reset = await viewer.nextEvent("status:lost", "reset") as {
    reason: string;
    state: { status: unknown };
  };
  assert.equal(reset.reason, "messages_lost");
  assert.deepEqual(reset.state.status, { n: 3 }, "the current status");
  assert.deepEqual(await viewer.nextEvent("status:lost", "status"), { n: 3 });
});
