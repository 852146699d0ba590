/**
 * Failures the node keeps from spreading (issue 21): a subscriber that throws in a fan-out, and
 * a message or loss from the broker the hub cannot take, are logged and counted in
 * `switchboard_contained_errors_total{where}`; the other subscribers, the next messages and the
 * broker's receive loop go on. The broker here is the memory broker with its two receive hooks
 * kept, so the test can hand the hub what a peer would.
 */
import assert from "node:assert/strict";
import type { Broadcast } from "../../lib/core/broadcast.ts";
import type { BrokerLoss, BrokerMessage } from "../../lib/core/broker.ts";
import { MemoryBroker } from "../../lib/core/broker_memory.ts";
import { Switchboard } from "../../lib/core/switchboard.ts";
import type { Logger } from "../../lib/log.ts";

/** The memory broker, with the handlers the hub registers kept for the test to call. */
class PeerBroker extends MemoryBroker {
  receive: (msg: BrokerMessage) => void = () => {};
  lose: (loss: BrokerLoss) => void = () => {};
  override onMessage(handler: (msg: BrokerMessage) => void): void {
    this.receive = handler;
  }
  override onLoss(handler: (loss: BrokerLoss) => void): void {
    this.lose = handler;
  }
}

function node() {
  const broker = new PeerBroker();
  const errors: string[] = [];
  const log: Logger = {
    debug: () => {},
    info: () => {},
    warn: () => {},
    error: (message) => errors.push(message),
  };
  const switchboard = new Switchboard({ config: {}, channels: [], broker, log });
  const contained = (where: string) =>
    switchboard.metrics.value("switchboard_contained_errors_total", { where });
  return { broker, switchboard, errors, contained };
}

/** A message from node `peer-1`, as its replication hands it over. */
function fromPeer(seq: number, fields: Partial<BrokerMessage> = {}): BrokerMessage {
  return {
    topic: "status:acme",
    event: "status",
    payload: { seq },
    origin: { nodeId: "peer-1" },
    stream: "peer-1~run001",
    seq,
    at: Date.now(),
    ...fields,
  };
}

Deno.test("a subscriber that throws: the others get the message, one fan-out error counted", () => {
  const { switchboard, errors, contained } = node();
  const got: Broadcast[] = [];
  switchboard.hub.subscribe("status:acme", {
    id: "broken",
    deliver: () => {
      throw new Error("a channel's bug");
    },
  });
  switchboard.hub.subscribe("status:acme", { id: "fine", deliver: (b) => got.push(b) });
  switchboard.hub.broadcast("status:acme", "status", { ok: true });
  assert.equal(got.length, 1);
  assert.equal(contained("fan-out"), 1);
  assert.deepEqual(errors, ["fan-out failed; contained"]);
});

Deno.test("a peer message the hub cannot take is contained and counted; the next one arrives", () => {
  const { broker, switchboard, contained } = node();
  const got: Broadcast[] = [];
  switchboard.hub.subscribe("status:acme", { id: "viewer", deliver: (b) => got.push(b) });
  // Bytes that are not base64: corrupted on the bus.
  assert.doesNotThrow(() => broker.receive(fromPeer(1, { binary: "%%%" })));
  assert.equal(contained("peer message"), 1);
  broker.receive(fromPeer(2));
  assert.deepEqual(got.map((b) => b.payload), [{ seq: 2 }]);
});

Deno.test("a loss whose handling fails in one subscriber: the others start over, counted", () => {
  const { broker, switchboard, contained } = node();
  let startedOver = 0;
  switchboard.hub.subscribe("status:acme", {
    id: "broken",
    deliver: () => {},
    lost: () => {
      throw new Error("a channel's bug");
    },
  });
  switchboard.hub.subscribe("status:acme", {
    id: "fine",
    deliver: () => {},
    lost: () => startedOver++,
  });
  assert.doesNotThrow(() => broker.lose({ nodeId: "peer-1", count: 3 }));
  assert.equal(startedOver, 1);
  assert.equal(contained("fan-out"), 1);
});
