/**
 * The Cloudflare Worker on Cloudflare's runtime: `deno task dev:worker` (the pinned
 * `wrangler dev`, workerd) driven like the Deno server is driven elsewhere: the official
 * `phoenix` client over WebSocket (with `authToken`) and long-poll, a fetch-based SSE reader
 * with `Last-Event-ID` resume, the HTTP API with ETag polling, webhooks and the server API's
 * disconnect from a node object, the pages, the close handshake,
 * and slow consumers on a runtime whose WebSocket has no `bufferedAmount`. Also
 * `wrangler deploy --dry-run` of the bundle.
 */
import assert from "node:assert/strict";
import { LongPoll } from "phoenix";
import { nowSeconds, signToken } from "../../lib/auth.ts";
import { connectSocket, disconnect, join, push, withPresence } from "../support/phoenix.ts";
import { isReply, openRaw, replyOf } from "../support/raw_ws.ts";
import { openSse } from "../support/sse.ts";
import { waitFor } from "../support/wait.ts";
import { WRANGLER } from "../../scripts/support/wrangler.ts";
import { eventsOf, startReceiver } from "../support/webhooks.ts";
import { halfClosedSockets, processTree, startWorker } from "../support/worker.ts";

const SECRET = "worker-secret-0123456789";
const API_TOKEN = "worker-api-token";
const _root = new URL("../../", import.meta.url);

async function post(url: string, body: unknown, token = API_TOKEN): Promise<number> {
  const res = await fetch(`${url}/api/broadcast`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  await res.body?.cancel();
  return res.status;
}

async function metric(url: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(text.match(pattern)?.[1] ?? 0);
}

/** A masked client text frame (zero mask) for a raw WebSocket connection. */
function textFrame(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  assert.ok(bytes.length < 126);
  const frame = new Uint8Array(6 + bytes.length);
  frame.set([0x81, 0x80 | bytes.length, 0, 0, 0, 0]);
  frame.set(bytes, 6);
  return frame;
}

/**
 * A raw TCP client that sends `request` (and `frames`), reads until `until` has arrived, and
 * then never reads another byte.
 */
async function stuckClient(
  port: number,
  request: string,
  until: string,
  frames: Uint8Array[] = [],
): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(request));
  let seen = "";
  const buffer = new Uint8Array(4096);
  for (const frame of frames) await conn.write(frame);
  const deadline = setTimeout(() => conn.close(), 10_000);
  for (let reads = 0; reads < 50 && !seen.includes(until); reads++) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) throw new Error(`the server closed before "${until}":\n${seen}`);
    seen += new TextDecoder().decode(buffer.subarray(0, n));
  }
  clearTimeout(deadline);
  assert.ok(seen.includes(until), `"${until}" within 50 reads:\n${seen}`);
  return conn;
}

const _UPGRADE = "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

Deno.test("Cloudflare Worker on workerd (deno task dev:worker)", async (t) => {
  await using receiver = startReceiver("worker-webhook-secret");
  const worker = await startWorker({
    WEBHOOK_URL: receiver.url,
    WEBHOOK_SECRET: "worker-webhook-secret",
    API_TOKEN,
    SOCKET_SECRET: SECRET,
    HISTORY_SIZE: "50",
    // Small, so the slow-consumer step needs little traffic.
    MAX_OUTBOUND_BYTES: String(512 * 1024),
  });
  const ann = await signToken(SECRET, { sub: "ann", exp: nowSeconds() + 600 });
  const bob = await signToken(SECRET, { sub: "bob", exp: nowSeconds() + 600 });
  try {
    await t.step("/healthz answers from node-1 with the memory broker", async () => {
      const health = await (await fetch(`${worker.url}/healthz`)).json();
      assert.equal(health.status, "ok");
      assert.equal(health.node, "node-1");
      assert.equal(health.broker.kind, "memory");
      const metrics = await (await fetch(`${worker.url}/metrics`)).text();
      assert.match(metrics, /switchboard_connections\{transport="websocket"\} \d+/);
    });

    await t.step(
      "phoenix client: authToken, join, push replies, broadcasts, presence of two users, leave",
      async () => {
        const annSocket = await connectSocket(worker.socketUrl, {}, { authToken: ann });
        assert.equal(annSocket.conn.protocol, "phoenix", "the chosen subprotocol is echoed");
        const bobSocket = await connectSocket(worker.socketUrl, { token: bob });
        const annChannel = annSocket.channel("record:edge", { name: "Ann" });
        const bobChannel = bobSocket.channel("record:edge", { name: "Bob" });
        const annView = withPresence(annChannel);
        const bobView = withPresence(bobChannel);
        const annPatches: unknown[] = [];
        const bobPatches: unknown[] = [];
        annChannel.on("patch", (p: unknown) => annPatches.push(p));
        bobChannel.on("patch", (p: unknown) => bobPatches.push(p));
        await join(annChannel);
        await join(bobChannel);
        await waitFor(
          () => annView.keys().join() === "ann×1,bob×1" && bobView.keys().join() === "ann×1,bob×1",
          "both users in both presence lists",
        );
        assert.deepEqual(await push(annChannel, "state", { state: "editing" }), {
          status: "ok",
          response: {},
        });
        assert.equal((await push(annChannel, "state", { state: "sleeping" })).status, "error");
        await waitFor(() => {
          const metas = bobView.presence.list((_k: string, p: { metas: { state: string }[] }) =>
            p.metas[0].state
          );
          return metas.includes("editing");
        }, "Bob sees Ann editing");
        await push(bobChannel, "patch", { line: 1 });
        assert.equal(
          await post(worker.url, { topic: "record:edge", event: "patch", payload: { line: 2 } }),
          202,
        );
        await waitFor(() => annPatches.length === 2 && bobPatches.length === 1, "patches");
        // Occupancy and signed webhooks from the node object.
        const occupancy = await fetch(`${worker.url}/api/occupancy/record:edge`, {
          headers: { authorization: `Bearer ${API_TOKEN}` },
        });
        assert.deepEqual(await occupancy.json(), {
          topic: "record:edge",
          subscribers: 2,
          users: 2,
        });
        await waitFor(() => eventsOf(receiver, "record:edge").length === 3, "3 webhook events");
        assert.equal(eventsOf(receiver, "record:edge")[0], "channel_occupied");
        assert.ok(receiver.requests.every((r) => r.verified));
        assert.deepEqual(annPatches, [{ line: 1 }, { line: 2 }]);
        assert.deepEqual(bobPatches, [{ line: 2 }], "a patch is not echoed to its sender");
        // A status page: read-only, the last status for a late joiner.
        const status = annSocket.channel("status:edge");
        const live: unknown[] = [];
        status.on("status", (p: unknown) => live.push(p));
        assert.deepEqual((await join(status)).status, null);
        assert.equal(
          await post(worker.url, {
            topic: "status:edge",
            event: "status",
            payload: { state: "degraded" },
          }),
          202,
        );
        await waitFor(() => live.length === 1, "the status broadcast");
        assert.deepEqual(live[0], { state: "degraded" });
        assert.deepEqual(await push(status, "status", {}), {
          status: "error",
          response: { reason: "read_only" },
        });
        const late = await connectSocket(worker.socketUrl, { token: bob });
        assert.deepEqual((await join(late.channel("status:edge"))).status, { state: "degraded" });
        await disconnect(late);
        // Leave: Bob sees Ann go.
        await new Promise((resolve) => annChannel.leave().receive("ok", resolve));
        await waitFor(() => bobView.keys().join() === "bob×1", "Ann's leave reaches Bob");
        // The server API on the Worker: Cy's session ends (4010); then the record is empty.
        const cy = await signToken(SECRET, { sub: "cy", exp: nowSeconds() + 600 });
        const cySocket = await connectSocket(worker.socketUrl, { token: cy });
        await join(cySocket.channel("record:edge", { name: "Cy" }));
        await waitFor(
          () => eventsOf(receiver, "record:edge").includes("member_added:cy"),
          "member_added:cy",
          10_000,
        );
        const cyCloses: number[] = [];
        cySocket.onClose((e: { code: number }) => cyCloses.push(e.code));
        const ended = await fetch(`${worker.url}/api/disconnect`, {
          method: "POST",
          headers: { authorization: `Bearer ${API_TOKEN}` },
          body: JSON.stringify({ user_id: "cy" }),
        });
        assert.deepEqual(await ended.json(), { sessions: 1 });
        await waitFor(() => cyCloses.includes(4010), "Cy's socket closed by the server");
        await disconnect(cySocket);
        await disconnect(annSocket);
        await disconnect(bobSocket);
        await waitFor(
          () => eventsOf(receiver, "record:edge").at(-1) === "channel_vacated",
          "channel_vacated",
          10_000,
        );
        const events = eventsOf(receiver, "record:edge");
        assert.equal(events[0], "channel_occupied");
        assert.deepEqual(events.slice(1, -1).sort(), [
          "member_added:ann",
          "member_added:bob",
          "member_added:cy",
          "member_removed:ann",
          "member_removed:bob",
          "member_removed:cy",
        ]);
      },
    );

    await t.step("SSE: joined, events with ids, Last-Event-ID resume without gaps", async () => {
      const url = `${worker.url}/events?topic=status:sse-edge&token=${ann}`;
      const first = await openSse(url);
      assert.equal(first.response.status, 200);
      assert.match(first.response.headers.get("content-type") ?? "", /^text\/event-stream/);
      const joined = await first.next((e) => e.event === "joined");
      assert.deepEqual(joined.json?.payload, { status: null, updated_at: null });
      for (const n of [1, 2, 3]) {
        await post(worker.url, { topic: "status:sse-edge", event: "status", payload: { n } });
      }
      const seen = [];
      for (let i = 0; i < 3; i++) seen.push(await first.next((e) => e.event === "status"));
      assert.deepEqual(seen.map((e) => e.json?.payload), [{ n: 1 }, { n: 2 }, { n: 3 }]);
      assert.ok(seen.every((e) => e.id !== undefined && e.id !== ""), "every event has an id");
      const resumeFrom = seen[2].lastEventId;
      await first.close();
      for (const n of [4, 5]) {
        await post(worker.url, { topic: "status:sse-edge", event: "status", payload: { n } });
      }
      const again = await openSse(url, { "last-event-id": resumeFrom });
      await again.next((e) => e.event === "joined");
      const missed = [
        await again.next((e) => e.event === "status"),
        await again.next((e) => e.event === "status"),
      ];
      assert.deepEqual(missed.map((e) => e.json?.payload), [{ n: 4 }, { n: 5 }]);
      await post(worker.url, { topic: "status:sse-edge", event: "status", payload: { n: 6 } });
      assert.deepEqual((await again.next((e) => e.event === "status")).json?.payload, { n: 6 });
      assert.equal(again.events.filter((e) => e.event === "status").length, 3, "no duplicates");
      await again.close();
      const noTopic = await fetch(`${worker.url}/events`);
      assert.equal(noTopic.status, 400);
      assert.match((await noTopic.json()).error, /missing topic/);
    });

    await t.step("long-poll: the phoenix LongPoll transport joins, pushes, receives", async () => {
      const socket = await connectSocket(worker.socketUrl, {}, {
        transport: LongPoll,
        authToken: bob,
      });
      assert.equal(socket.transport, LongPoll);
      const channel = socket.channel("record:lp-edge", { name: "Bob" });
      const view = withPresence(channel);
      const patches: unknown[] = [];
      channel.on("patch", (p: unknown) => patches.push(p));
      await join(channel);
      await waitFor(() => view.keys().join() === "bob×1", "presence over long-poll");
      assert.deepEqual(await push(channel, "state", { state: "editing" }), {
        status: "ok",
        response: {},
      });
      assert.equal(
        await post(worker.url, { topic: "record:lp-edge", event: "patch", payload: { n: 1 } }),
        202,
      );
      await waitFor(() => patches.length === 1, "a broadcast over long-poll");
      assert.deepEqual(patches, [{ n: 1 }]);
      await disconnect(socket);
    });

    await t.step("API: bearer token, ETag polling with 304, presence list", async () => {
      assert.equal(
        await post(worker.url, { topic: "status:api-edge", event: "status" }, "wrong"),
        401,
      );
      const bad = await fetch(`${worker.url}/api/broadcast`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_TOKEN}` },
        body: "{not json",
      });
      assert.equal(bad.status, 400);
      await bad.body?.cancel();
      assert.equal(
        await post(worker.url, {
          topic: "status:api-edge",
          event: "status",
          payload: { state: "outage" },
        }),
        202,
      );
      const first = await fetch(`${worker.url}/api/topics/status:api-edge`);
      assert.equal(first.status, 200);
      const etag = first.headers.get("etag");
      assert.ok(etag);
      assert.deepEqual((await first.json()).payload, { state: "outage" });
      const same = await fetch(`${worker.url}/api/topics/status:api-edge`, {
        headers: { "if-none-match": etag },
      });
      assert.equal(same.status, 304);
      await same.body?.cancel();
      await post(worker.url, {
        topic: "status:api-edge",
        event: "status",
        payload: { state: "operational" },
      });
      const changed = await fetch(`${worker.url}/api/topics/status:api-edge`, {
        headers: { "if-none-match": etag },
      });
      assert.equal(changed.status, 200);
      assert.notEqual(changed.headers.get("etag"), etag);
      await changed.body?.cancel();
      const socket = await connectSocket(worker.socketUrl, { token: ann });
      await join(socket.channel("record:api-edge", { name: "Ann" }));
      const list = await (await fetch(`${worker.url}/api/presence/record:api-edge?token=${ann}`))
        .json();
      assert.deepEqual(Object.keys(list.presences), ["ann"]);
      await disconnect(socket);
    });

    await t.step(
      "pages: index, a status page with the status in its HTML, a record page",
      async () => {
        const index = await fetch(`${worker.url}/`);
        assert.equal(index.status, 200);
        assert.match(await index.text(), /Switchboard/);
        const page = await fetch(`${worker.url}/status/api-edge`);
        assert.equal(page.status, 200);
        assert.match(await page.text(), /operational/i);
        const record = await fetch(`${worker.url}/records/loan-7?token=${ann}`);
        assert.equal(record.status, 200);
        await record.body?.cancel();
        const asset = await fetch(`${worker.url}/assets/switchboard-client.js`);
        assert.equal(asset.status, 200);
        await asset.body?.cancel();
      },
    );

    await t.step("a client's close frame is answered (the compatibility date)", async () => {
      const ws = new WebSocket(`${worker.socketUrl}/websocket?vsn=2.0.0&token=${ann}`);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = reject;
      });
      const closed = new Promise<CloseEvent>((resolve) => ws.onclose = resolve);
      ws.close(1000, "bye");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const event = await Promise.race([
        closed,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error("no close frame back within 5 s (compatibility_date?)")),
            5_000,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      assert.equal(event.wasClean, true, "the server answered the close frame");
      assert.equal(event.code, 1000);
    });

    await t.step("dead connections are released: nothing stays half-open in workerd", async () => {
      const tree = () => processTree(worker.process.pid);
      const before = halfClosedSockets(tree());
      for (let i = 0; i < 20; i++) {
        // Dropped: the TCP connection ends without a close frame.
        const dropped = await stuckClient(
          worker.port,
          `GET /socket/websocket?vsn=2.0.0&token=${ann} HTTP/1.1\r\nHost: 127.0.0.1\r\n${_UPGRADE}\r\n`,
          "101",
        );
        dropped.close();
        // Closed cleanly.
        const ws = new WebSocket(`${worker.socketUrl}/websocket?vsn=2.0.0&token=${ann}`);
        await new Promise((resolve) => ws.onopen = resolve);
        const closed = new Promise((resolve) => ws.onclose = resolve);
        ws.close(1000);
        await closed;
      }
      await waitFor(
        () => halfClosedSockets(tree()) <= before,
        "workerd closes its side of 40 finished connections",
        10_000,
      ).catch((err) => {
        throw new Error(
          `${err.message}: ${halfClosedSockets(tree())} half-closed, ${before} before`,
        );
      });
      assert.equal(
        await metric(worker.url, /switchboard_connections\{transport="websocket"\} (\d+)/),
        0,
      );
    });

    await t.step(
      "a refused WebSocket says why on workerd too: the join's reply, then a 4001 close",
      async () => {
        const expired = await signToken(SECRET, { sub: "ann", exp: nowSeconds() - 120 });
        const raw = await openRaw(`${worker.socketUrl}/websocket?vsn=2.0.0&token=${expired}`);
        raw.push("1", "1", "record:refused", "phx_join", { name: "Ann" });
        const reply = replyOf(await raw.next(isReply("1")));
        assert.deepEqual(reply, {
          status: "error",
          response: {
            reason: "token_expired",
            detail: "token expired: reconnect with a fresh token",
          },
        });
        assert.deepEqual(await raw.closed, {
          code: 4001,
          reason: "token expired: reconnect with a fresh token",
        });
      },
    );

    await t.step("without Redis, node=<other> is refused with what to do", async () => {
      const res = await fetch(`${worker.url}/healthz?node=node-2`);
      assert.equal(res.status, 400);
      assert.match((await res.json()).error, /needs the Redis broker/);
    });

    await t.step(
      "no bufferedAmount on workerd: a WebSocket that never reads is cut off, one that " +
        "heartbeats (proving what it got) is not",
      async () => {
        const reader = await openRaw(`${worker.socketUrl}/websocket?vsn=2.0.0&token=${bob}`);
        reader.push("1", "1", "status:firehose", "phx_join", {});
        await reader.next(isReply("1"));
        const stuck = await stuckClient(
          worker.port,
          `GET /socket/websocket?vsn=2.0.0&token=${ann} HTTP/1.1\r\nHost: 127.0.0.1\r\n${_UPGRADE}\r\n`,
          "phx_reply",
          [textFrame('["1","1","status:firehose","phx_join",{}]')],
        );
        const chunk = "z".repeat(16 * 1024);
        let ref = 10;
        let got = 0;
        // 48 batches of 4 × 16 KiB = 3 MiB, six times the limit. After each batch the reader
        // sends two heartbeats, each after the reply to the one before, as the phoenix client
        // does: that proves it received the batch.
        for (let b = 0; b < 48; b++) {
          const batch = Array.from({ length: 4 }, (_, i) => ({
            topic: "status:firehose",
            event: "status",
            payload: { n: b * 4 + i, chunk },
          }));
          assert.equal(await post(worker.url, batch), 202);
          for (let i = 0; i < 4; i++) {
            const frame = await reader.next((f) => f.event === "status", 10_000);
            assert.equal((frame.payload as { n: number }).n, got++);
          }
          for (let h = 0; h < 2; h++) {
            const r = String(ref++);
            reader.push(null, r, "phoenix", "heartbeat", {});
            assert.equal(replyOf(await reader.next(isReply(r))).status, "ok");
          }
        }
        assert.equal(got, 192, "the reading client got every message and is still connected");
        assert.equal(
          await metric(
            worker.url,
            /switchboard_slow_consumers_total\{transport="websocket"\} (\d+)/,
          ),
          1,
          "the WebSocket that never read is cut off, and only it",
        );
        stuck.close();
        await reader.close();
      },
    );

    await t.step(
      "an SSE stream that never reads is dropped; a reading one gets everything",
      async () => {
        const reading = await openSse(`${worker.url}/events?topic=status:sse-hose&token=${bob}`);
        await reading.next((e) => e.event === "joined");
        const stuck = await stuckClient(
          worker.port,
          `GET /events?topic=status:sse-hose&token=${ann} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
          "event: joined",
        );
        const chunk = "z".repeat(60 * 1024);
        const slow = () =>
          metric(worker.url, /switchboard_slow_consumers_total\{transport="sse"\} (\d+)/);
        // Batches of 6 × 60 KiB (under the limit, so a reader that keeps up never passes it)
        // until the stream is dropped: past the socket buffers (a few MiB on loopback), the
        // response stream's queue grows, and past the limit it goes.
        let sent = 0;
        for (let b = 0; b < 120 && await slow() === 0; b++) {
          const batch = Array.from({ length: 6 }, () => ({
            topic: "status:sse-hose",
            event: "status",
            payload: { n: sent++, chunk },
          }));
          assert.equal(await post(worker.url, batch), 202);
        }
        assert.equal(await slow(), 1, `dropped within ${sent} messages of 60 KiB`);
        await waitFor(
          () => reading.events.filter((e) => e.event === "status").length === sent,
          `all ${sent} messages at the reading stream`,
          30_000,
        );
        stuck.close();
        await reading.close();
      },
    );

    await t.step("wrangler deploy --dry-run takes the bundle (no network)", async () => {
      const out = await Deno.makeTempDir();
      try {
        const build = await new Deno.Command(Deno.execPath(), {
          args: ["task", "build:worker"],
          cwd: _root,
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.ok(build.success, new TextDecoder().decode(build.stderr));
        const dry = await new Deno.Command(
          WRANGLER,
          {
            args: ["deploy", "--dry-run", "--outdir", out],
            cwd: new URL("deploy/cloudflare/", _root),
            env: {
              WRANGLER_SEND_METRICS: "false",
              WRANGLER_HIDE_BANNER: "true",
              CLOUDFLARE_CF_FETCH_ENABLED: "false",
              NO_COLOR: "1",
            },
            stdout: "piped",
            stderr: "piped",
          },
        ).output();
        const text = new TextDecoder().decode(dry.stdout) + new TextDecoder().decode(dry.stderr);
        assert.ok(dry.success, text);
        assert.match(text, /env\.SWITCHBOARD_NODE \(SwitchboardNode\)\s+Durable Object/);
        assert.match(text, /--dry-run: exiting now/);
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    });
  } finally {
    await worker.stop();
  }
});
