/**
 * Fair admission and the small refusals of issue 21, against the real server: a flood of
 * anonymous long-poll sessions from one address cannot lock WebSocket, SSE and `/healthz` out,
 * nor can one spread over several addresses (the node's own long-poll budget); unused sessions
 * are reaped; SSE streams cut while their reader stopped reading keep counting
 * until their socket is gone; an ended long-poll session answers 410; failed API
 * authentication is throttled per address; a short API_TOKEN is reported loudly.
 */
import assert from "node:assert/strict";
import { openRaw } from "../support/raw_ws.ts";
import { startServer } from "../support/server.ts";
import { openSse } from "../support/sse.ts";
import { metricValue, uncaughtErrors } from "../support/metrics.ts";
import { establishedTo, sendAndStopReading } from "../support/tcp.ts";
import { waitFor } from "../support/wait.ts";

Deno.test("a long-poll flood from one address locks nobody out", async (t) => {
  const server = await startServer({
    MAX_CONNECTIONS: "150",
    MAX_LONGPOLL_SESSIONS_PER_ADDRESS: "20",
    LONGPOLL_FIRST_POLL_MS: "1000",
  });
  try {
    await t.step("1,000 anonymous sessions over one keep-alive connection", async () => {
      let refused = 0;
      for (let i = 0; i < 1_000; i++) {
        const res = await fetch(`${server.url}/socket/longpoll?vsn=2.0.0`);
        const body = await res.json();
        if (res.status === 429) {
          refused++;
          assert.match(body.error, /long-poll sessions from this address/);
          assert.ok(res.headers.get("retry-after"));
        } else assert.equal(body.status, 410);
      }
      assert.equal(refused, 980, "20 sessions per address (MAX_LONGPOLL_SESSIONS_PER_ADDRESS)");
    });

    await t.step("meanwhile WebSocket, SSE and /healthz are served", async () => {
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
      const streams = [];
      for (let i = 0; i < 10; i++) {
        const sse = await openSse(`${server.url}/events?topic=status:fair`);
        assert.equal(sse.response.status, 200);
        streams.push(sse);
        const ws = await openRaw(`${server.socketUrl}/websocket?vsn=2.0.0`);
        await ws.close();
      }
      await Promise.all(streams.map((s) => s.close()));
    });

    await t.step("sessions that never poll are reaped within LONGPOLL_FIRST_POLL_MS", async () => {
      await waitFor(
        async () =>
          await metricValue(server.url, "switchboard_admission", 'kind="longpoll_sessions"') === 0,
        "the flood's sessions reaped",
        10_000,
      );
      const res = await fetch(`${server.url}/socket/longpoll?vsn=2.0.0`);
      assert.equal((await res.json()).status, 410, "the address may open sessions again");
    });

    await t.step("an ended session's token answers 410, as Phoenix does", async () => {
      const first = await (await fetch(`${server.url}/socket/longpoll?vsn=2.0.0`)).json();
      // Never polled with its token: reaped after LONGPOLL_FIRST_POLL_MS.
      await waitFor(
        async () =>
          await metricValue(server.url, "switchboard_admission", 'kind="longpoll_sessions"') === 0,
        "the session reaped",
        10_000,
      );
      const res = await fetch(`${server.url}/socket/longpoll?vsn=2.0.0&token=${first.token}`);
      assert.deepEqual(await res.json(), { status: 410 });
      assert.equal(await uncaughtErrors(server.url), 0);
    });
  } finally {
    await server.stop();
  }
});

Deno.test("a long-poll flood spread over addresses meets the node's own budget", async () => {
  const server = await startServer({
    MAX_CONNECTIONS: "150",
    MAX_LONGPOLL_SESSIONS: "30",
    MAX_LONGPOLL_SESSIONS_PER_ADDRESS: "10",
    LONGPOLL_FIRST_POLL_MS: "60000",
  });
  // Five source addresses on loopback (127.0.0.2 …): each within its own cap of 10.
  const clients = [2, 3, 4, 5, 6].map((n) =>
    Deno.createHttpClient({ localAddress: `127.0.0.${n}` })
  );
  try {
    const refusals: string[] = [];
    let opened = 0;
    for (const client of clients) {
      for (let i = 0; i < 10; i++) {
        const res = await fetch(`${server.url}/socket/longpoll?vsn=2.0.0`, { client });
        const body = await res.json();
        if (res.status === 429) refusals.push(body.error);
        else if (body.status === 410 && body.token) opened++;
      }
    }
    assert.equal(opened, 30, "MAX_LONGPOLL_SESSIONS");
    assert.equal(refusals.length, 20);
    for (const error of refusals) {
      assert.match(error, /long-poll sessions on this node \(at most 30\)/);
    }
    // The rest of the node's connections are not theirs: SSE and WebSocket are served.
    const sse = await openSse(`${server.url}/events?topic=status:fair`);
    assert.equal(sse.response.status, 200);
    await sse.close();
    const ws = await openRaw(`${server.socketUrl}/websocket?vsn=2.0.0`);
    await ws.close();
  } finally {
    for (const client of clients) client.close();
    await server.stop();
  }
});

Deno.test("SSE streams cut while their reader stopped reading count until the socket is gone", async (t) => {
  const server = await startServer({ MAX_CONNECTIONS: "6" });
  const stuck: Deno.TcpConn[] = [];
  try {
    const topic = "status:unread";
    await t.step("five readers that never read are cut as slow consumers", async () => {
      for (let i = 0; i < 5; i++) {
        stuck.push(
          await sendAndStopReading(
            server.port,
            `GET /events?topic=${topic} HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n`,
          ),
        );
      }
      await waitFor(
        async () =>
          await metricValue(server.url, "switchboard_connections", 'transport="sse"') === 5,
        "five SSE sessions",
      );
      const pad = "u".repeat(50_000);
      for (let batch = 0; batch < 40; batch++) {
        const body = Array.from({ length: 10 }, (_, n) => ({
          topic,
          event: "status",
          payload: { n: batch * 10 + n, pad },
        }));
        const res = await fetch(`${server.url}/api/broadcast`, {
          method: "POST",
          body: JSON.stringify(body),
        });
        await res.body?.cancel();
        if (
          await metricValue(server.url, "switchboard_slow_consumers_total", 'transport="sse"') === 5
        ) break;
      }
      assert.equal(
        await metricValue(server.url, "switchboard_slow_consumers_total", 'transport="sse"'),
        5,
      );
    });

    await t.step("their sockets are still ESTABLISHED, and still count", async () => {
      const held = await establishedTo(server.port);
      const queued = held.filter((s) => s.sendQueue > 0);
      assert.equal(queued.length, 5, `sockets with unsent data: ${JSON.stringify(held)}`);
      assert.equal(
        await metricValue(server.url, "switchboard_admission", 'kind="sse_responses"'),
        5,
      );
      // MAX_CONNECTIONS is 6: one more stream fits, the next one is refused.
      const one = await openSse(`${server.url}/events?topic=status:other`);
      assert.equal(one.response.status, 200);
      const two = await openSse(`${server.url}/events?topic=status:other`);
      assert.equal(two.response.status, 503);
      await one.close();
      await waitFor(
        async () => (await fetch(`${server.url}/healthz`)).status === 200,
        "room again once the sixth stream is closed",
      );
    });

    await t.step("once the readers go, their responses end and stop counting", async () => {
      for (const conn of stuck.splice(0)) conn.close();
      await waitFor(
        async () =>
          await metricValue(server.url, "switchboard_admission", 'kind="sse_responses"') === 0,
        "no SSE response held",
      );
      await waitFor(
        async () => (await establishedTo(server.port)).every((s) => s.sendQueue === 0),
        "no socket holding unsent data",
      );
      assert.equal(await uncaughtErrors(server.url), 0);
    });
  } finally {
    for (const conn of stuck) conn.close();
    await server.stop();
  }
});

Deno.test("API authentication: failures throttled per address, a short token reported", async () => {
  const server = await startServer({ API_TOKEN: "short", API_AUTH_FAILURES_PER_MINUTE: "20" });
  try {
    assert.match(server.output(), /API_TOKEN is only 5 characters/);
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) {
      const res = await fetch(`${server.url}/api/broadcast`, {
        method: "POST",
        headers: { authorization: `Bearer guess-${i}` },
        body: JSON.stringify({ topic: "status:x", event: "status", payload: {} }),
      });
      await res.body?.cancel();
      statuses.push(res.status);
    }
    assert.deepEqual(statuses.slice(0, 20), Array(20).fill(401));
    assert.deepEqual(statuses.slice(20), Array(40).fill(429));
    // Even the right token waits out the minute from that address.
    const right = await fetch(`${server.url}/api/broadcast`, {
      method: "POST",
      headers: { authorization: "Bearer short" },
      body: JSON.stringify({ topic: "status:x", event: "status", payload: {} }),
    });
    await right.body?.cancel();
    assert.equal(right.status, 429);
    assert.ok(
      await metricValue(server.url, "switchboard_refused_total", "api_auth_throttled") >= 40,
    );
  } finally {
    await server.stop();
  }
});
