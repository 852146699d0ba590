/**
 * Hardening, against the real server: signed tokens (JWTs) over every transport, allowed
 * origins, oversized frames, a flooding client, a client that never reads, and SIGTERM.
 * `access_test.ts` covers the JWT format, read authorization, public channels and expiry.
 */
import assert from "node:assert/strict";
import { nowSeconds, signToken } from "../../lib/auth.ts";
import { connectSocket, disconnect, join, push } from "../support/phoenix.ts";
import { type ServerProcess, startServer } from "../support/server.ts";
import { openSse } from "../support/sse.ts";
import { upgradeOutcome } from "../support/raw_ws.ts";
import { delay, waitFor } from "../support/wait.ts";

const SECRET = "test-secret-0123456789";

function rssKiB(server: ServerProcess): number {
  const status = Deno.readTextFileSync(`/proc/${server.process.pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+)/)![1]);
}

async function post(url: string, body: unknown): Promise<void> {
  const res = await fetch(`${url}/api/broadcast`, { method: "POST", body: JSON.stringify(body) });
  await res.body?.cancel();
  assert.equal(res.status, 202);
}

Deno.test("signed tokens and origins", async (t) => {
  const server = await startServer({
    SOCKET_SECRET: SECRET,
    ALLOWED_ORIGINS: "https://app.example",
  });
  const ws = `${server.socketUrl}/websocket?vsn=2.0.0`;
  try {
    const valid = await signToken(SECRET, { sub: "ann", exp: nowSeconds() + 60 });
    // Past the 30 s leeway for clock skew.
    const expired = await signToken(SECRET, { sub: "ann", exp: nowSeconds() - 120 });
    const forged = await signToken("another-secret-0123456789", {
      sub: "ann",
      exp: nowSeconds() + 60,
    });
    const [header, payload, signature] = valid.split(".");
    const tampered = `${header}.${
      btoa(JSON.stringify({ sub: "root", exp: nowSeconds() + 60 })).replace(/=+$/, "")
    }.${signature}`;

    await t.step(
      "WebSocket: none anonymous, forged/tampered/expired refused saying why, valid accepted",
      async () => {
        // Without a token the socket connects anonymously (status:* is public); record joins
        // are refused then (access_test.ts).
        assert.equal(await upgradeOutcome(ws), "accepted");
        const refused: [string, string][] = [
          [forged, "bad_signature"],
          [tampered, "bad_signature"],
          [expired, "token_expired"],
          [`${header}.${payload}.`, "bad_signature"],
          ["garbage", "token_malformed"],
        ];
        for (const [token, reason] of refused) {
          assert.equal(await upgradeOutcome(`${ws}&token=${encodeURIComponent(token)}`), reason);
        }
        assert.equal(await upgradeOutcome(`${ws}&token=${valid}`), "accepted");
      },
    );

    await t.step("the verified subject is the user: user_id cannot impersonate", async () => {
      const socket = await connectSocket(server.socketUrl, { token: valid, user_id: "mallory" });
      const channel = socket.channel("record:auth", { name: "Ann" });
      await join(channel);
      const list = await (await fetch(`${server.url}/api/presence/record:auth?token=${valid}`))
        .json();
      assert.deepEqual(Object.keys(list.presences), ["ann"]);
      await disconnect(socket);
    });

    await t.step("authToken (subprotocol) works like the token param", async () => {
      const socket = await connectSocket(server.socketUrl, {}, { authToken: valid });
      await join(socket.channel("status:auth"));
      await disconnect(socket);
    });

    await t.step("a token's scope limits which records it may join", async () => {
      const scoped = await signToken(SECRET, {
        sub: "bob",
        exp: nowSeconds() + 60,
        scope: ["record:7"],
      });
      const socket = await connectSocket(server.socketUrl, { token: scoped });
      await join(socket.channel("record:7", {}));
      const other = socket.channel("record:8", {});
      await assert.rejects(join(other), /unauthorized/);
      other.leave();
      await disconnect(socket);
    });

    await t.step("SSE: none 401, forged 403, expired 403, valid 200", async () => {
      const url = `${server.url}/events?topic=record:auth`;
      for (
        const [suffix, status] of [["", 401], [`&token=${forged}`, 403], [
          `&token=${expired}`,
          403,
        ]] as const
      ) {
        const res = await fetch(url + suffix);
        assert.equal(res.status, status, suffix);
        assert.match((await res.json()).error, /token/);
      }
      const sse = await openSse(`${url}&token=${valid}`);
      assert.equal(sse.response.status, 200);
      await sse.close();
    });

    await t.step("long-poll: refused with a bad token, via param or header", async () => {
      const base = `${server.url}/socket/longpoll?vsn=2.0.0`;
      assert.equal((await (await fetch(`${base}&token=${forged}`)).json()).status, 403);
      const ok = await (await fetch(base, { headers: { "x-phoenix-authtoken": valid } })).json();
      assert.equal(ok.status, 410);
    });

    await t.step("origins: others refused on WebSocket and SSE; the API answers CORS", async () => {
      const good = { origin: "https://app.example" };
      const evil = { origin: "https://evil.example" };
      assert.equal(await upgradeOutcome(`${ws}&token=${valid}`, evil), "origin_not_allowed");
      assert.equal(await upgradeOutcome(`${ws}&token=${valid}`, good), "accepted");
      const refused = await fetch(`${server.url}/events?topic=status:o&token=${valid}`, {
        headers: evil,
      });
      assert.equal(refused.status, 403);
      assert.match((await refused.json()).error, /origin/);
      const preflight = await fetch(`${server.url}/api/broadcast`, {
        method: "OPTIONS",
        headers: { ...good, "access-control-request-method": "POST" },
      });
      await preflight.body?.cancel();
      assert.equal(preflight.headers.get("access-control-allow-origin"), "https://app.example");
      const other = await fetch(`${server.url}/api/topics/status:o`, { headers: evil });
      await other.body?.cancel();
      assert.equal(other.headers.get("access-control-allow-origin"), null);
    });
  } finally {
    await server.stop();
  }
});

Deno.test("limits and slow consumers", async (t) => {
  // A small history window, so what the server keeps on purpose does not hide what it buffers.
  const server = await startServer({ MAX_TOPICS_PER_SESSION: "3", HISTORY_SIZE: "8" });
  try {
    await t.step("a 1 MiB frame closes that socket with 1009; the server stays up", async () => {
      const socket = new WebSocket(`${server.socketUrl}/websocket?vsn=2.0.0`);
      const closed = new Promise<number>((resolve) => socket.onclose = (e) => resolve(e.code));
      await new Promise((resolve) => socket.onopen = resolve);
      socket.send(`["1","1","status:big","phx_join",{"x":"${"y".repeat(1024 * 1024)}"}]`);
      assert.equal(await closed, 1009);
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    });

    await t.step("max topics per session", async () => {
      const socket = await connectSocket(server.socketUrl);
      for (const n of [1, 2, 3]) await join(socket.channel(`status:t${n}`));
      const fourth = socket.channel("status:t4");
      await assert.rejects(join(fourth), /too_many_topics/);
      fourth.leave();
      await disconnect(socket);
    });

    await t.step("5,000 pushes at once are throttled; another user is still answered", async () => {
      const flooder = new WebSocket(`${server.socketUrl}/websocket?vsn=2.0.0`);
      const replies: unknown[][] = [];
      flooder.onmessage = (e) => replies.push(JSON.parse(e.data));
      const closed = new Promise<number>((resolve) => flooder.onclose = (e) => resolve(e.code));
      await new Promise((resolve) => flooder.onopen = resolve);
      flooder.send('["1","1","record:flood","phx_join",{}]');
      await waitFor(() => replies.length > 0, "flooder joined");
      const other = await connectSocket(server.socketUrl, { user_id: "calm" });
      const calm = other.channel("record:flood", {});
      await join(calm);
      for (let i = 0; i < 5000; i++) {
        flooder.send(`["1","${i + 2}","record:flood","patch",{"i":${i}}]`);
      }
      // Answered while the flood is being refused (push() gives up after its own timeout).
      const answer = await push(calm, "state", { state: "editing" });
      assert.equal(answer.status, "ok");
      // The server closes with 1008; a client still writing may see the close as abnormal.
      assert.ok([1008, 1006, 0].includes(await closed), "a sustained flood closes the socket");
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, /switchboard_flood_closed_total 1/);
      const limited = Number(
        metrics.match(/rejected_total\{reason="rate_limited"\} (\d+)/)?.[1] ?? 0,
      );
      assert.ok(limited > 100, `excess pushes refused with rate_limited replies (${limited})`);
      await disconnect(other);
    });

    await t.step(
      "a client that never reads is cut off; RSS stays bounded; others get everything",
      async () => {
        const reader = await connectSocket(server.socketUrl, { user_id: "reader" });
        const got: number[] = [];
        const channel = reader.channel("status:firehose");
        channel.on("status", (p: { n: number }) => got.push(p.n));
        await join(channel);
        // A raw TCP client: handshake, join, and then it never reads a byte.
        const stuck = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        const join1 = new TextEncoder().encode('["1","1","status:firehose","phx_join",{}]');
        const frame = new Uint8Array(2 + 4 + join1.length);
        frame.set([0x81, 0x80 | join1.length, 0, 0, 0, 0]); // masked text frame, zero mask
        frame.set(join1, 6);
        await stuck.write(new TextEncoder().encode(
          `GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
            `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        ));
        await delay(200);
        await stuck.write(frame);
        await delay(200);
        const before = rssKiB(server);
        const chunk = "z".repeat(32 * 1024);
        const batches = 60; // 60 batches of 16 messages of 32 KiB: 30 MiB
        for (let b = 0; b < batches; b++) {
          await post(
            server.url,
            Array.from({ length: 16 }, (_, i) => ({
              topic: "status:firehose",
              event: "status",
              payload: { n: b * 16 + i, chunk },
            })),
          );
        }
        await waitFor(
          () => got.length === batches * 16,
          "every message at the reading client",
          30_000,
        );
        assert.deepEqual(got, Array.from({ length: batches * 16 }, (_, i) => i));
        const grown = (rssKiB(server) - before) / 1024;
        assert.ok(grown < 40, `server RSS grew ${grown.toFixed(1)} MiB for 30 MiB broadcast`);
        const metrics = await (await fetch(`${server.url}/metrics`)).text();
        assert.match(metrics, /switchboard_slow_consumers_total\{transport="websocket"\} 1/);
        stuck.close();
        await disconnect(reader);
      },
    );
  } finally {
    await server.stop();
  }
});

Deno.test("SIGTERM: clients are told to come back, and the process exits 0", async () => {
  const server = await startServer();
  const socket = new WebSocket(`${server.socketUrl}/websocket?vsn=2.0.0&user_id=leaver`);
  const closed = new Promise<number>((resolve) => socket.onclose = (e) => resolve(e.code));
  await new Promise((resolve) => socket.onopen = resolve);
  socket.send('["1","1","record:bye","phx_join",{}]');
  const sse = await openSse(`${server.url}/events?topic=status:bye`);
  await sse.next((e) => e.event === "joined");
  // Killed (not exit 0) if it has not drained within 10 s.
  const status = await server.stop(10_000);
  assert.equal(status.code, 0);
  assert.equal(await closed, 1012, "WebSocket: service restart, reconnect");
  await sse.ended;
  assert.equal(sse.retries.length, 2, "a second retry: hint comes with the shutdown");
  assert.ok(sse.retries[1] >= 2000, "spread over seconds");
});
