/**
 * Webhooks, occupancy and the server API across nodes joined through Redis (the real
 * `redis-server` and the Upstash bridge), one real webhook receiver: two nodes with
 * `WEBHOOK_URL` and an older one without it. Each event is sent once by the cluster, occupancy
 * counts every transport on both nodes, a disconnect sent to one node ends the user's sessions
 * on the other, and when the sending node is killed the other takes over.
 */
import assert from "node:assert/strict";
import { LongPoll } from "phoenix";
import { postApi, waitForOccupancy } from "../support/api.ts";
import { waitForCluster } from "../support/cluster.ts";
import { connectSocket, disconnect, join } from "../support/phoenix.ts";
import { startBridge, startRedis } from "../support/redis.ts";
import { type ServerProcess, startServer } from "../support/server.ts";
import { openSse } from "../support/sse.ts";
import { waitFor } from "../support/wait.ts";
import { eventsOf, startReceiver } from "../support/webhooks.ts";

const SECRET = "cluster-webhook-secret";

async function webhookRequests(node: ServerProcess): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  return Number(text.match(/^switchboard_webhook_requests_total\{result="ok"\} (\d+)$/m)?.[1] ?? 0);
}

Deno.test("webhooks and occupancy across two nodes through Redis", async (t) => {
  await using receiver = startReceiver(SECRET);
  await using redis = await startRedis();
  await using bridge = await startBridge({ redisUrl: redis.url, token: "wh-token" });
  const env = (id: string) => ({
    UPSTASH_REDIS_REST_URL: bridge.url,
    UPSTASH_REDIS_REST_TOKEN: "wh-token",
    NODE_ID: id,
    REDIS_HEARTBEAT_MS: "2000",
    WEBHOOK_URL: receiver.url,
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_RETRY_MS: "100,200,400",
    PRESENCE_LEAVE_GRACE_MS: "300",
    LONGPOLL_TIMEOUT_MS: "1500",
  });
  // The oldest node has no WEBHOOK_URL (a rolling change of the setting): it is never elected.
  const { WEBHOOK_URL: _url, ...withoutWebhooks } = env("w0");
  const n0 = await startServer(withoutWebhooks);
  const [n1, n2] = await Promise.all([startServer(env("w1")), startServer(env("w2"))]);
  try {
    await waitForCluster([n0, n1, n2]);

    await t.step("two nodes with subscribers on one topic: each event once", async () => {
      const topic = "record:cl-once";
      const ann = await connectSocket(n1.socketUrl, { user_id: "ann" });
      await join(ann.channel(topic, { name: "Ann" }));
      const bob = await connectSocket(n2.socketUrl, { user_id: "bob" });
      await join(bob.channel(topic, { name: "Bob" }));
      const sse = await openSse(`${n2.url}/events?topic=${topic}&user_id=cy`);
      await sse.next((e) => e.event === "joined");
      await waitFor(() => eventsOf(receiver, topic).length >= 4, "occupied and 3 members", 15_000);
      await disconnect(ann);
      await disconnect(bob);
      await sse.close();
      await waitFor(() => eventsOf(receiver, topic).includes("channel_vacated"), "vacated", 15_000);
      const events = eventsOf(receiver, topic);
      assert.equal(events[0], "channel_occupied");
      assert.equal(events.at(-1), "channel_vacated");
      assert.deepEqual(events.slice(1, 4).sort(), [
        "member_added:ann",
        "member_added:bob",
        "member_added:cy",
      ]);
      assert.deepEqual(events.slice(4, 7).sort(), [
        "member_removed:ann",
        "member_removed:bob",
        "member_removed:cy",
      ]);
      assert.equal(events.length, 8, events.join(", "));
      // Once: not only each event id once, but no event sent by both nodes under two ids.
      const all = receiver.events().filter((e) => e.topic === topic);
      assert.equal(all.length, 8);
      assert.ok(receiver.requests.every((r) => r.verified));
    });

    await t.step("occupancy counts every transport on both nodes", async () => {
      const topic = "status:cl-occ";
      const a = await connectSocket(n1.socketUrl, { user_id: "ann" });
      const pushed: { subscribers: number }[] = [];
      const channel = a.channel(topic);
      channel.on("occupancy", (p: { subscribers: number }) => pushed.push(p));
      await join(channel);
      const lp = await connectSocket(n1.url + "/socket", { user_id: "bob" }, {
        transport: LongPoll,
      });
      await join(lp.channel(topic));
      const sse = await openSse(`${n2.url}/events?topic=${topic}&user_id=cy`);
      await sse.next((e) => e.event === "joined");
      const b = await connectSocket(n2.socketUrl, { user_id: "dan" });
      await join(b.channel(topic));
      for (const node of [n1, n2]) {
        await waitForOccupancy(node.url, topic, { subscribers: 4, users: 4 });
      }
      await waitFor(() => pushed.at(-1)?.subscribers === 4, "the occupancy event on n1");
      await sse.next((e) => e.event === "occupancy" && e.json?.payload.subscribers === 4);
      await disconnect(a);
      await disconnect(lp);
      await disconnect(b);
      await sse.close();
      for (const node of [n1, n2]) {
        await waitForOccupancy(node.url, topic, { subscribers: 0, users: 0 }, 10_000);
      }
    });

    await t.step("disconnect sent to one node ends the user's sessions on both", async () => {
      const topic = "status:cl-kick";
      const annWs = await connectSocket(n1.socketUrl, { user_id: "ann" });
      const annClosed: unknown[] = [];
      const annChannel = annWs.channel(topic);
      annChannel.on("phx_close", (p: unknown) => annClosed.push(p));
      await join(annChannel);
      const annSse = await openSse(`${n2.url}/events?topic=${topic}&user_id=ann`);
      await annSse.next((e) => e.event === "joined");
      const annLp = await connectSocket(n2.url + "/socket", { user_id: "ann" }, {
        transport: LongPoll,
      });
      await join(annLp.channel(topic));
      const bob = await connectSocket(n2.socketUrl, { user_id: "bob" });
      await join(bob.channel(topic));
      // Users add up per node: Ann on n1 and on n2 counts twice (docs/webhooks.md).
      for (const node of [n1, n2]) {
        await waitForOccupancy(node.url, topic, { subscribers: 4, users: 3 });
      }
      const answer = await postApi(n1.url, "/api/disconnect", { user_id: "ann" });
      assert.deepEqual(answer, { status: 200, body: { sessions: 1 } });
      await annSse.ended;
      await waitFor(() => annClosed.length === 1, "phx_close on n1");
      annWs.disconnect();
      annLp.disconnect();
      for (const node of [n1, n2]) {
        await waitForOccupancy(node.url, topic, { subscribers: 1, users: 1 });
      }
      const unsubscribed = await postApi(n1.url, "/api/unsubscribe", { user_id: "bob", topic });
      assert.deepEqual(unsubscribed.body, { sessions: 0 }, "bob is on n2, not on n1");
      await waitForOccupancy(n2.url, topic, { subscribers: 0, users: 0 });
      await disconnect(bob);
    });

    await t.step("the sending node killed with its subscribers: the other takes over", async () => {
      // The sender is the node that made webhook requests so far; the other has made none.
      const sent = await Promise.all([n1, n2].map((n) => webhookRequests(n)));
      assert.equal(sent.filter((n) => n > 0).length, 1, `requests per node: ${sent}`);
      const [sender, other] = sent[0] > 0 ? [n1, n2] : [n2, n1];
      const topic = "record:cl-dead";
      const ann = await connectSocket(sender.socketUrl, { user_id: "ann" }, {
        reconnectAfterMs: () => 60_000,
      });
      await join(ann.channel(topic, { name: "Ann" }));
      await waitFor(() => eventsOf(receiver, topic).length === 2, "occupied, ann added", 10_000);
      await sender.kill();
      ann.disconnect();
      // Noticed within the node TTL (2.5 heartbeats of 2 s); the survivor sends what is left.
      await waitFor(
        () => eventsOf(receiver, topic).length === 4,
        "ann gone with the sender",
        20_000,
      );
      assert.deepEqual(eventsOf(receiver, topic), [
        "channel_occupied",
        "member_added:ann",
        "member_removed:ann",
        "channel_vacated",
      ]);
      assert.ok(await webhookRequests(other) > 0, "the survivor sent them");
      await waitForOccupancy(other.url, topic, { subscribers: 0, users: 0 });
    });
  } finally {
    await Promise.all([n0.stop(), n1.stop(), n2.stop()]);
  }
});
