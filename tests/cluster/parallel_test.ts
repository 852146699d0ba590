/**
 * `deno task start:parallel` (`deno serve --parallel`, here with 2 isolates) acts as one server:
 * 16 official Phoenix clients spread over the isolates by the kernel see complete presence,
 * API broadcasts reach all, broadcast-from is not echoed, leaves are seen by all, an SSE reader
 * resumes with `Last-Event-ID` whichever isolate takes the reconnect, the server API's
 * disconnect reaches a user's sockets on every isolate, and SIGTERM drains every
 * isolate and exits 0.
 */
import assert from "node:assert/strict";
import type { Channel } from "phoenix";
import {
  connectSocket,
  disconnect,
  join,
  push,
  type Socket,
  withPresence,
} from "../support/phoenix.ts";
import { isReply, openRaw, type RawSocket, replyOf } from "../support/raw_ws.ts";
import { freePort } from "../support/redis.ts";
import { parallelTaskArgs, spawnListening } from "../support/server.ts";
import { openSse } from "../support/sse.ts";
import { delay, waitFor } from "../support/wait.ts";
import { eventsOf, startReceiver } from "../support/webhooks.ts";

/** A new connection per request: the kernel picks the isolate per connection. */
const fresh = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });

async function post(url: string, body: unknown): Promise<void> {
  const res = await fetch(`${url}/api/broadcast`, {
    method: "POST",
    body: JSON.stringify(body),
    client: fresh,
  });
  await res.body?.cancel();
  assert.equal(res.status, 202);
}

/** `/healthz` of the whole process: every isolate's own answer. */
async function isolates(url: string) {
  const body = await (await fetch(`${url}/healthz`, { client: fresh })).json();
  return body as {
    sessions: number;
    workers: { node: string; sessions: number; broker: { nodes: number } }[];
  };
}

Deno.test("deno task start:parallel: two isolates act as one server", async (t) => {
  const port = freePort();
  await using receiver = startReceiver("parallel-webhook-secret");
  const server = await spawnListening({
    args: await parallelTaskArgs(),
    env: {
      PORT: String(port),
      HOST: "127.0.0.1",
      DENO_JOBS: "2",
      LOG_LEVEL: "warn",
      WEBHOOK_URL: receiver.url,
      WEBHOOK_SECRET: "parallel-webhook-secret",
    },
    timeoutMs: 20_000,
  });
  const url = server.url;
  const sockets: Socket[] = [];
  try {
    await waitFor(
      () => server.output().includes(`Listening on ${url}/ with 2 threads`),
      "2 threads",
    )
      .catch((err) => {
        throw new Error(`${err.message}\n${server.output()}`);
      });
    await waitFor(
      async () => {
        const health = await isolates(url);
        return health.workers.length === 2 && health.workers.every((w) => w.broker.nodes === 2);
      },
      "both isolates up and seeing each other",
      15_000,
    );
    // The development defaults are reported by every isolate, as by `deno task start`.
    const openApi = server.output().match(/API_TOKEN is unset/g) ?? [];
    assert.equal(openApi.length, 2, server.output());

    const channels: Channel[] = [];
    const views: ReturnType<typeof withPresence>[] = [];
    const patches: unknown[][] = [];
    await t.step("16 clients, spread over the isolates, see complete presence", async () => {
      // The isolates accept connections from one port as they come: a quick series may all go
      // to one of them. Connecting again (bounded) until both have clients keeps this test
      // about two isolates.
      let perIsolate: number[] = [];
      let health: Awaited<ReturnType<typeof isolates>> | undefined;
      for (let attempt = 0; attempt < 5; attempt++) {
        await Promise.all(sockets.splice(0).map(disconnect));
        channels.length = views.length = patches.length = 0;
        await waitFor(async () => (await isolates(url)).sessions === 0, "no sessions left");
        await Promise.all(Array.from({ length: 16 }, async (_, i) => {
          const socket = await connectSocket(`ws://127.0.0.1:${port}/socket`, {
            user_id: `u${i}`,
          });
          sockets[i] = socket;
        }));
        health = await isolates(url);
        perIsolate = health.workers.map((w) => w.sessions);
        if (perIsolate.length === 2 && perIsolate.every((n) => n > 0)) break;
      }
      assert.ok(perIsolate.every((n) => n > 0), `sessions per isolate: ${perIsolate}`);
      for (const [i, socket] of sockets.entries()) {
        const channel = socket.channel("record:par", { name: `U${i}` });
        const got: unknown[] = [];
        channel.on("patch", (p: unknown) => got.push(p));
        patches.push(got);
        views.push(withPresence(channel));
        channels.push(channel);
        await join(channel);
      }
      health = await isolates(url);
      assert.equal(health!.sessions, 16, "/healthz counts the whole process");
      const metrics = await (await fetch(`${url}/metrics`, { client: fresh })).text();
      const labelled = new Set([...metrics.matchAll(/worker="([^"]+)"/g)].map((m) => m[1]));
      assert.equal(labelled.size, 2, "/metrics has the samples of both isolates");
      await waitFor(
        () => views.every((v) => v.keys().length === 16),
        "every client sees all 16",
        10_000,
      );
    });

    await t.step("occupancy and webhooks count both isolates, each event once", async () => {
      // Eventually consistent (within a second or two): then every read, whichever isolate.
      const read = async () =>
        await (await fetch(`${url}/api/occupancy/record:par`, { client: fresh })).json();
      // Compared within the wait: a client whose heartbeat reply came late (2 busy cores)
      // reconnects and rejoins, and the count dips for a moment.
      const expected = JSON.stringify({ topic: "record:par", subscribers: 16, users: 16 });
      await waitFor(async () => {
        const reads = await Promise.all(Array.from({ length: 6 }, read));
        return reads.every((r) => JSON.stringify(r) === expected);
      }, "16 subscribers and users whichever isolate answers");
      await waitFor(() => eventsOf(receiver, "record:par").length === 17, "17 events", 10_000);
      const events = eventsOf(receiver, "record:par");
      assert.equal(events[0], "channel_occupied");
      assert.deepEqual(
        events.slice(1).sort(),
        Array.from({ length: 16 }, (_, i) => `member_added:u${i}`).sort(),
      );
      assert.ok(receiver.requests.every((r) => r.verified));
    });

    await t.step("API broadcasts reach all; broadcast-from is not echoed", async () => {
      for (let n = 1; n <= 5; n++) {
        await post(url, { topic: "record:par", event: "patch", payload: { api: n } });
      }
      await waitFor(() => patches.every((p) => p.length === 5), "5 API patches everywhere");
      // Each POST may land on either isolate: order holds per publisher, not across them.
      const sorted = (p: unknown[]) => p.map((x) => (x as { api: number }).api).sort();
      assert.ok(patches.every((p) => sorted(p).join() === "1,2,3,4,5"));
      assert.equal((await push(channels[0], "patch", { from: 0 })).status, "ok");
      await waitFor(
        () => patches.slice(1).every((p) => p.length === 6),
        "the patch on the other 15",
      );
      await delay(300);
      assert.equal(patches[0].length, 5, "not echoed to the sender");
    });

    await t.step("leaves are seen by all", async () => {
      await Promise.all(sockets.splice(12, 4).map(disconnect));
      await waitFor(
        () => views.slice(0, 12).every((v) => v.keys().length === 12),
        "12 left on every client",
        10_000,
      );
    });

    await t.step("SSE resumes with Last-Event-ID whichever isolate takes it", async () => {
      const topic = "status:par";
      const first = await openSse(`${url}/events?topic=${topic}`, {}, { client: fresh });
      await first.next((e) => e.event === "joined");
      await post(url, { topic, event: "status", payload: { n: 1 } });
      const seen = await first.next((e) => e.event === "status");
      await first.close();
      for (let n = 2; n <= 4; n++) await post(url, { topic, event: "status", payload: { n } });
      await delay(200);
      // Several reconnects: the kernel sends them to either isolate.
      for (let attempt = 0; attempt < 6; attempt++) {
        const again = await openSse(`${url}/events?topic=${topic}`, {
          "last-event-id": seen.lastEventId,
        }, { client: fresh });
        await waitFor(
          () => again.events.filter((e) => e.event === "status").length >= 3,
          "the 3 missed",
        );
        await delay(100);
        const got = again.events.flatMap((e) =>
          e.event === "status" ? [e.json!.payload.n] : e.event === "reset" ? ["reset"] : []
        );
        // Each publish may have landed on either isolate: order holds per publisher only.
        assert.deepEqual(got.slice().sort(), [2, 3, 4], `attempt ${attempt}: ${got}`);
        await again.close();
      }
    });

    await t.step("POST /api/disconnect ends a user's sessions on every isolate", async () => {
      const zed: RawSocket[] = [];
      for (let i = 0; i < 6; i++) {
        // A new connection each: the kernel spreads them over the isolates.
        const raw = await openRaw(`${server.socketUrl}/websocket?vsn=2.0.0&user_id=zed`);
        raw.push("1", "1", "status:par-api", "phx_join", {});
        assert.equal(replyOf(await raw.next(isReply("1"))).status, "ok");
        zed.push(raw);
      }
      // No API_TOKEN in this test: the API is open (development defaults).
      const res = await fetch(`${url}/api/disconnect`, {
        method: "POST",
        body: JSON.stringify({ user_id: "zed" }),
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      const codes = await Promise.all(zed.map((raw) => raw.closed.then((c) => c.code)));
      assert.deepEqual(codes, [4010, 4010, 4010, 4010, 4010, 4010]);
    });

    await t.step("SIGTERM drains every isolate and exits 0 within 10 s", async () => {
      const closes = new Map<Socket, number>();
      for (const socket of sockets) {
        socket.onClose((e: { code: number }) => closes.has(socket) || closes.set(socket, e.code));
      }
      // Killed (not exit 0) if it has not drained within 10 s.
      const { code } = await server.stop(10_000);
      assert.equal(code, 0, server.output());
      await waitFor(() => closes.size === sockets.length, "every socket closed");
      // `deno serve` closes WebSockets itself on SIGTERM ("Server shutting down", 1001) before
      // the isolates' own drain (1012) runs; the client reconnects after either.
      const codes = [...closes.values()];
      assert.ok(codes.every((c) => c === 1001 || c === 1012), `close codes ${codes}`);
    });
  } finally {
    for (const socket of sockets) socket.disconnect();
    // SIGTERM first: the launcher passes it on to `deno serve` (a SIGKILL would orphan it).
    await server.stop(12_000);
    fresh.close();
  }
});
