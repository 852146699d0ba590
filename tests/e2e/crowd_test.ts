/**
 * Presence for crowds (docs/crowds.md) against the real server process: a join storm of 5,000
 * raw Phoenix v2 members on one record costs each member kilobytes and tells everyone the count;
 * the member list pages with every member exactly once, also while the storm goes on; a room
 * of 150 is still full Phoenix presence through the official client, turns into a crowd at 151
 * and back into a full room below 120.
 */
import assert from "node:assert/strict";
import type { Channel, Socket } from "phoenix";
import { joinCrowd, readAllPages, requestPage } from "../support/crowd.ts";
import { connectSocket, disconnect, join, push, withPresence } from "../support/phoenix.ts";
import { startServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

const STORM = 5_000;
const KIB = 1024;

Deno.test({
  name: "a storm of 5,000 members on a record: kilobytes per member, everyone told the count",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const server = await startServer({ PRESENCE_LEAVE_GRACE_MS: "0" });
    const topic = "record:crowd-storm";
    let crowd: Awaited<ReturnType<typeof joinCrowd>> | undefined;
    try {
      // Paging starts when half the crowd is in and goes on while the rest joins: members
      // present throughout must each be on exactly one page.
      let paging: Promise<string[]> | undefined;
      crowd = await joinCrowd({
        socketUrls: [server.socketUrl],
        topic,
        count: STORM,
        onWave: (joined) => {
          if (paging || joined.length < STORM / 2) return;
          paging = readAllPages(joined[0], topic, { limit: 100 });
          paging.catch(() => {}); // awaited below: a failure fails the test there
        },
      });
      const members = crowd.members;
      await waitFor(
        () => members.every((m) => m.users() >= STORM),
        `every member told the count (${STORM})`,
        40_000,
      );
      const bytes = members.reduce((sum, m) => sum + m.presenceBytes(), 0);
      const perMember = bytes / STORM;
      console.log(`presence traffic: ${(perMember / KIB).toFixed(1)} KiB per member`);
      assert.ok(perMember <= 40 * KIB, `${(perMember / KIB).toFixed(1)} KiB per member`);

      // The last joiner's state is the bounded visible set plus its own key.
      const last = members[STORM - 1];
      const state = last.presenceFrames().find((f) => f.event === "presence_state");
      const keys = Object.keys(state!.payload as object);
      assert.ok(keys.length <= 41, `visible set of ${keys.length}`);
      assert.ok(keys.includes(last.key), "the joiner sees itself");

      assert.ok(paging, "paging started in the middle of the storm");
      const during = await paging;
      assert.equal(new Set(during).size, during.length, "no member twice while joining");
      const early = members.slice(0, STORM / 2).map((m) => m.key);
      const listed = new Set(during);
      assert.deepEqual(early.filter((k) => !listed.has(k)), [], "members present throughout");

      const settled = await readAllPages(last, topic);
      assert.equal(settled.length, STORM);
      assert.deepEqual([...settled].sort(), members.map((m) => m.key).sort());
      assert.deepEqual(settled, [...settled].sort(), "pages in key order");
    } finally {
      await crowd?.close();
      await server.stop();
    }
  },
});

Deno.test({
  name: "presence_page refuses a limit over 200 and a cursor that is not a string",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const server = await startServer();
    const crowd = await joinCrowd({ socketUrls: [server.socketUrl], topic: "record:p", count: 3 });
    try {
      const [ann] = crowd.members;
      const first = await requestPage(ann, "record:p", { limit: 2 });
      assert.deepEqual(first.members.map((m) => m.key), ["u0", "u1"]);
      assert.equal(first.next, "u1");
      assert.deepEqual(
        (await requestPage(ann, "record:p", { cursor: first.next })).members
          .map((m) => m.key),
        ["u2"],
      );
      for (const bad of [{ limit: 201 }, { limit: 0 }, { cursor: 5 }, { limit: "9" }]) {
        const ref = `bad${JSON.stringify(bad)}`;
        ann.socket.push("1", ref, "record:p", "presence_page", bad);
        const reply = await ann.socket.next((f) => f.event === "phx_reply" && f.ref === ref);
        const { status, response } = reply.payload as {
          status: string;
          response: { reason: string; errors: { field: string }[] };
        };
        assert.equal(status, "error", JSON.stringify(bad));
        assert.equal(response.reason, "invalid_payload");
        assert.equal(response.errors[0].field, Object.keys(bad)[0]);
      }
    } finally {
      await crowd.close();
      await server.stop();
    }
  },
});

Deno.test({
  name: "a room of 150 is full presence through the official client; 151 a crowd; 119 a room again",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const server = await startServer({ PRESENCE_LEAVE_GRACE_MS: "0" });
    const topic = "record:room";
    const clients: { socket: Socket; channel: Channel; keys(): string[]; users: number[] }[] = [];
    const connect = async (i: number) => {
      const socket = await connectSocket(server.socketUrl, { user_id: `p${i}` });
      const channel = socket.channel(topic, { name: `P${i}` });
      const { keys } = withPresence(channel);
      const users: number[] = [];
      channel.on("occupancy", (p: { users: number }) => users.push(p.users));
      await join(channel);
      return { socket, channel, keys, users };
    };
    try {
      for (let start = 0; start < 150; start += 50) {
        clients.push(
          ...await Promise.all(Array.from({ length: 50 }, (_, i) => connect(start + i))),
        );
      }
      await waitFor(
        () => clients.every((c) => c.keys().length === 150),
        "every member sees all 150",
        20_000,
      );
      assert.ok(clients.every((c) => c.users.length === 0), "no counts in a room");

      // The 151st makes a crowd: everyone's list shrinks to the visible set, the count arrives.
      clients.push(await connect(150));
      await waitFor(
        () => clients.every((c) => c.users.at(-1) === 151 && c.keys().length <= 41),
        "everyone sees the visible set and a count of 151",
        10_000,
      );
      // An editor is always visible, whoever she is.
      const editor = clients[140];
      assert.equal((await push(editor.channel, "state", { state: "editing" })).status, "ok");
      await waitFor(
        () => clients.every((c) => c.keys().includes("p140×1")),
        "everyone sees the editor",
        10_000,
      );

      // Hysteresis: back to a room below 80% of the threshold (120), with the full list.
      const leaving = clients.splice(119);
      await Promise.all(leaving.map((c) => disconnect(c.socket)));
      await waitFor(
        () => clients.every((c) => c.keys().length === 119),
        "every member sees all 119 again",
        10_000,
      );
    } finally {
      await Promise.all(clients.map((c) => disconnect(c.socket)));
      await server.stop();
    }
  },
});
