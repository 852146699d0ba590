/**
 * Webhooks and occupancy on one node: the real server process with `WEBHOOK_URL` pointing at a
 * real receiver (`Deno.serve`, signatures checked with Web Crypto), clients over WebSocket (the
 * official phoenix client), SSE (fetch) and long-poll (phoenix's LongPoll transport).
 */
import assert from "node:assert/strict";
import { LongPoll } from "phoenix";
import { publishStatus, waitForOccupancy } from "../support/api.ts";
import { connectSocket, disconnect, join } from "../support/phoenix.ts";
import { startServer } from "../support/server.ts";
import { openSse } from "../support/sse.ts";
import { delay, waitFor } from "../support/wait.ts";
import { eventsOf, startReceiver } from "../support/webhooks.ts";

const SECRET = "webhook-secret-of-the-test";

async function metric(url: string, line: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const found = text.split("\n").find((l) => l.startsWith(line + " "));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

Deno.test("webhooks and occupancy on one node", async (t) => {
  await using receiver = startReceiver(SECRET);
  const server = await startServer({
    WEBHOOK_URL: receiver.url,
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_RETRY_MS: "100,200,400",
    PRESENCE_LEAVE_GRACE_MS: "300",
    // A long-poll client that stops polling is gone after this (the default is 15 s).
    LONGPOLL_TIMEOUT_MS: "1500",
  });
  try {
    await t.step(
      "signed events in order per topic, from WebSocket, SSE and long-poll",
      async () => {
        const ws = await connectSocket(server.socketUrl, { user_id: "ann" });
        await join(ws.channel("record:wh-ws", { name: "Ann" }));
        const sse = await openSse(`${server.url}/events?topic=status:wh-sse&user_id=sse1`);
        await sse.next((e) => e.event === "joined");
        const lp = await connectSocket(server.url + "/socket", { user_id: "lp1" }, {
          transport: LongPoll,
        });
        await join(lp.channel("status:wh-lp"));
        await waitFor(
          () => eventsOf(receiver, "record:wh-ws").length === 2,
          "occupied and ann added",
          10_000,
        );
        assert.deepEqual(eventsOf(receiver, "record:wh-ws"), [
          "channel_occupied",
          "member_added:ann",
        ]);
        await waitFor(() => eventsOf(receiver, "status:wh-sse").length === 1, "SSE occupied");
        await waitFor(() => eventsOf(receiver, "status:wh-lp").length === 1, "long-poll occupied");

        await disconnect(ws);
        await sse.close();
        await disconnect(lp);
        await waitFor(() => eventsOf(receiver, "record:wh-ws").length === 4, "ann left", 10_000);
        assert.deepEqual(eventsOf(receiver, "record:wh-ws"), [
          "channel_occupied",
          "member_added:ann",
          "member_removed:ann",
          "channel_vacated",
        ]);
        for (const topic of ["status:wh-sse", "status:wh-lp"]) {
          await waitFor(() => eventsOf(receiver, topic).length === 2, `${topic} vacated`, 10_000);
          assert.deepEqual(eventsOf(receiver, topic), ["channel_occupied", "channel_vacated"]);
        }
        assert.ok(receiver.requests.length > 0);
        assert.ok(receiver.requests.every((r) => r.verified), "every signature verifies");
        const body = JSON.parse(receiver.requests[0].body);
        assert.equal(typeof body.time_ms, "number");
        assert.equal(typeof body.events[0].id, "string");
      },
    );

    await t.step("occupancy counts every transport; the status channel pushes it", async () => {
      const topic = "status:occ";
      const ws = await connectSocket(server.socketUrl, { user_id: "ann" });
      const channel = ws.channel(topic);
      const pushed: { subscribers: number; users: number }[] = [];
      channel.on("occupancy", (p: { subscribers: number; users: number }) => pushed.push(p));
      await join(channel);
      const sse = await openSse(`${server.url}/events?topic=${topic}&user_id=bob`);
      const lp = await connectSocket(server.url + "/socket", { user_id: "ann" }, {
        transport: LongPoll,
      });
      await join(lp.channel(topic));
      await waitForOccupancy(server.url, topic, { subscribers: 3, users: 2 });
      await waitFor(() => pushed.at(-1)?.subscribers === 3, "the occupancy event");
      assert.deepEqual(pushed.at(-1), { subscribers: 3, users: 2 });
      const overSse = await sse.next((e) =>
        e.event === "occupancy" && e.json?.payload.subscribers === 3
      );
      assert.deepEqual(overSse.json?.payload, { subscribers: 3, users: 2 });
      // Never twice the same counts in a row.
      for (let i = 1; i < pushed.length; i++) assert.notDeepEqual(pushed[i], pushed[i - 1]);
      await sse.close();
      await disconnect(lp);
      await waitFor(() => pushed.at(-1)?.subscribers === 1, "the others gone", 10_000);
      await waitForOccupancy(server.url, topic, { subscribers: 1, users: 1 });
      await disconnect(ws);
      await waitForOccupancy(server.url, topic, { subscribers: 0, users: 0 });
    });

    await t.step("a receiver answering 500 gets the events later", async () => {
      const errorsBefore = await metric(
        server.url,
        'switchboard_webhook_requests_total{result="error"}',
      );
      receiver.failNext(2);
      const ws = await connectSocket(server.socketUrl, { user_id: "cy" });
      await join(ws.channel("status:wh-retry"));
      await waitFor(() => eventsOf(receiver, "status:wh-retry").length === 1, "retried", 10_000);
      assert.deepEqual(eventsOf(receiver, "status:wh-retry"), ["channel_occupied"]);
      assert.equal(receiver.requests.filter((r) => r.status === 500).length, 2);
      const errors = await metric(server.url, 'switchboard_webhook_requests_total{result="error"}');
      assert.equal(errors - errorsBefore, 2);
      assert.ok(await metric(server.url, 'switchboard_webhook_events_total{outcome="sent"}') > 0);
      await disconnect(ws);
    });
  } finally {
    await server.stop();
  }
});

Deno.test("a reconnect within the leave grace sends no member event", async () => {
  await using receiver = startReceiver(SECRET);
  // A grace longer than the webhooks' tick (~1 s): a leave that ignored it would go out.
  const server = await startServer({
    WEBHOOK_URL: receiver.url,
    WEBHOOK_SECRET: SECRET,
    PRESENCE_LEAVE_GRACE_MS: "3000",
  });
  try {
    const topic = "record:wh-handover";
    const wes = await connectSocket(server.socketUrl, { user_id: "wes" });
    await join(wes.channel(topic, { name: "Wes" }));
    const first = await connectSocket(server.socketUrl, { user_id: "ann" });
    await join(first.channel(topic, { name: "Ann" }));
    await waitFor(() => eventsOf(receiver, topic).length === 3, "wes and ann added", 10_000);
    // Ann's connection drops; she is back 1.5 s later, within the grace, after a tick or more.
    await disconnect(first);
    const droppedAt = Date.now();
    await delay(1_500);
    const second = await connectSocket(server.socketUrl, { user_id: "ann" });
    await join(second.channel(topic, { name: "Ann" }));
    // Past the grace, a third member: had Ann's leave gone out, it would come before Cy's join
    // (the events of one topic keep their order).
    await delay(Math.max(0, droppedAt + 3_500 - Date.now()));
    const cy = await connectSocket(server.socketUrl, { user_id: "cy" });
    await join(cy.channel(topic, { name: "Cy" }));
    await waitFor(() => eventsOf(receiver, topic).includes("member_added:cy"), "cy", 10_000);
    assert.deepEqual(eventsOf(receiver, topic), [
      "channel_occupied",
      "member_added:wes",
      "member_added:ann",
      "member_added:cy",
    ]);
    for (const socket of [wes, second, cy]) await disconnect(socket);
  } finally {
    await server.stop();
  }
});

Deno.test("a receiver that never answers: clients get their messages, the queue stays bounded", async () => {
  // Accepts the requests and never answers them.
  const held: (() => void)[] = [];
  const hung = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    () => new Promise<Response>((resolve) => held.push(() => resolve(new Response(null)))),
  );
  const server = await startServer({
    WEBHOOK_URL: `http://127.0.0.1:${hung.addr.port}/hooks`,
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_TIMEOUT_MS: "60000",
    WEBHOOK_MAX_QUEUE: "5",
  });
  try {
    const sockets = [];
    const got: unknown[][] = [];
    // 20 topics occupied: 20 events for a queue of 5 behind a request that never ends.
    for (let i = 0; i < 20; i++) {
      const socket = await connectSocket(server.socketUrl, { user_id: `u${i}` });
      const channel = socket.channel(`status:hung-${i}`);
      const mine: unknown[] = [];
      channel.on("status", (p: unknown) => mine.push(p));
      await join(channel);
      sockets.push(socket);
      got.push(mine);
    }
    await waitFor(() => held.length === 1, "the first webhook request, held");
    for (let i = 0; i < 20; i++) {
      await publishStatus(server.url, `status:hung-${i}`, { state: "operational", n: i });
    }
    await waitFor(() => got.every((g) => g.length === 1), "every client got its status");
    await waitFor(
      async () => await metric(server.url, "switchboard_webhook_queued") <= 5,
      "the queue bounded",
    );
    assert.ok(
      await metric(server.url, 'switchboard_webhook_events_total{outcome="dropped"}') > 0,
      "the oldest events were dropped and counted",
    );
    for (const socket of sockets) await disconnect(socket);
  } finally {
    await server.stop();
    // After the server: its last try at shutdown is held too.
    for (const release of held) release();
    await hung.shutdown();
  }
});
