/**
 * Refusals a client can read, against the real server: a browser-style WebSocket (Deno's, which
 * cannot read a refused upgrade's body either) is accepted, its join gets the refusal as an
 * error reply, and it is closed with the refusal's 4xxx code and wording; the official phoenix
 * client sees the same code in `onClose` without reconnecting in a loop; SSE, long-poll and the
 * API answer with the same word and wording. Token errors name the problem.
 */
import assert from "node:assert/strict";
import WebSocketNode from "ws";
import { Socket } from "phoenix";
import { nowSeconds, signToken } from "../../lib/auth.ts";
import { REFUSAL_LINGER_MS } from "../../lib/core/protocol.ts";
import { isReply, openRaw, replyOf } from "../support/raw_ws.ts";
import { startServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

const SECRET = "test-secret-0123456789";

interface Case {
  name: string;
  token: string;
  code: number;
  reason: string;
  error: RegExp;
}

async function cases(): Promise<Case[]> {
  const exp = nowSeconds() + 60;
  return [
    {
      name: "expired",
      token: await signToken(SECRET, { sub: "ann", exp: nowSeconds() - 120 }),
      code: 4001,
      reason: "token_expired",
      error: /^token expired: reconnect with a fresh token$/,
    },
    {
      name: "forged",
      token: await signToken("another-secret-0123456789", { sub: "ann", exp }),
      code: 4002,
      reason: "bad_signature",
      error: /^bad signature: /,
    },
    {
      name: "no exp",
      // A JWT library would happily mint it: the claim the server needs is what is named.
      token: await signToken(SECRET, { sub: "ann" } as never),
      code: 4003,
      reason: "token_malformed",
      error: /^token malformed: exp missing/,
    },
    {
      name: "not a JWT",
      token: "garbage",
      code: 4003,
      reason: "token_malformed",
      error: /^token malformed: not a JWT/,
    },
  ];
}

Deno.test("refusals say why, with one wording on every transport", async (t) => {
  const server = await startServer({
    SOCKET_SECRET: SECRET,
    ALLOWED_ORIGINS: "https://app.example",
  });
  const ws = (token: string) =>
    `${server.socketUrl}/websocket?vsn=2.0.0&token=${encodeURIComponent(token)}`;
  try {
    const all = await cases();

    await t.step(
      "a browser-style WebSocket: the join is refused with the reason, then a 4xxx close",
      async () => {
        // Concurrently: each socket is held open for the linger before its close.
        await Promise.all(all.map(async (c) => {
          const socket = await openRaw(ws(c.token));
          socket.push("1", "1", "record:1", "phx_join", { name: "Ann" });
          const reply = replyOf(await socket.next(isReply("1")));
          assert.equal(reply.status, "error", c.name);
          assert.equal(reply.response.reason, c.reason, c.name);
          assert.match(String(reply.response.detail), c.error, c.name);
          socket.push(null, "2", "phoenix", "heartbeat", {});
          assert.equal(replyOf(await socket.next(isReply("2"))).status, "ok", c.name);
          const closed = await socket.closed;
          assert.equal(closed.code, c.code, c.name);
          assert.match(closed.reason, c.error, c.name);
          assert.equal(closed.reason, String(reply.response.detail), `${c.name}: one wording`);
        }));
      },
    );

    await t.step(
      "an origin not allowed: 4007 naming it (the ws package sends Origin)",
      async () => {
        const socket = new WebSocketNode(`${server.socketUrl}/websocket?vsn=2.0.0`, {
          origin: "https://evil.example",
        });
        const closed = await new Promise<{ code: number; reason: string }>((resolve, reject) => {
          socket.on(
            "close",
            (code: number, reason: Uint8Array) =>
              resolve({ code, reason: new TextDecoder().decode(reason) }),
          );
          socket.on("error", reject);
        });
        assert.deepEqual(closed, {
          code: 4007,
          reason: "origin https://evil.example is not allowed",
        });
      },
    );

    await t.step("SSE, long-poll and the API answer with the same word and wording", async () => {
      for (const c of all) {
        const token = encodeURIComponent(c.token);
        const sse = await fetch(`${server.url}/events?topic=record:1&token=${token}`);
        const sseBody = await sse.json();
        assert.equal(sse.status, 403, c.name);
        assert.equal(sseBody.reason, c.reason, c.name);
        assert.match(sseBody.error, c.error, c.name);
        const poll = await (await fetch(`${server.url}/socket/longpoll?vsn=2.0.0&token=${token}`))
          .json();
        assert.deepEqual(poll, { status: 403, reason: c.reason, error: sseBody.error }, c.name);
        const api = await fetch(`${server.url}/api/topics/record:1?token=${token}`);
        assert.deepEqual(await api.json(), { reason: c.reason, error: sseBody.error }, c.name);
      }
    });

    await t.step(
      "an unknown topic: 'unmatched topic' over WebSocket, SSE and the API",
      async () => {
        const valid = await signToken(SECRET, { sub: "ann", exp: nowSeconds() + 60 });
        const socket = await openRaw(ws(valid));
        socket.push("1", "1", "nope:1", "phx_join", {});
        assert.equal(replyOf(await socket.next(isReply("1"))).response.reason, "unmatched topic");
        await socket.close();
        const expected = {
          error: 'unmatched topic: no channel matches "nope:1"',
          reason: "unmatched topic",
        };
        const sse = await fetch(`${server.url}/events?topic=nope:1&token=${valid}`);
        assert.equal(sse.status, 404);
        assert.deepEqual(await sse.json(), expected);
        const api = await fetch(`${server.url}/api/topics/nope:1?token=${valid}`);
        assert.equal(api.status, 404);
        assert.deepEqual(await api.json(), expected);
      },
    );

    await t.step(
      "the official phoenix client reads the code in onClose and does not reconnect in a loop",
      async () => {
        const expired = all[0].token;
        const socket = new Socket(server.socketUrl, { params: { token: expired } });
        const opens: number[] = [];
        const closes: { code: number; reason: string }[] = [];
        socket.onOpen(() => opens.push(Date.now()));
        socket.onClose((e: CloseEvent) => closes.push({ code: e.code, reason: e.reason }));
        const refusals: unknown[] = [];
        socket.channel("record:1", { name: "Ann" }).join().receive(
          "error",
          (r: unknown) => refusals.push(r),
        );
        socket.connect();
        try {
          await waitFor(() => closes.length > 0, "the refused socket's close", 15_000);
          assert.deepEqual(closes[0], {
            code: 4001,
            reason: "token expired: reconnect with a fresh token",
          });
          assert.deepEqual(refusals[0], {
            reason: "token_expired",
            detail: "token expired: reconnect with a fresh token",
          });
          // The client reconnects 10 ms after any close of a socket that had opened; held for
          // the linger, the refused socket lets it come back only that much later (a lower
          // bound: a slow machine only makes the gap longer). Closed at once: ~10 ms.
          await waitFor(() => opens.length >= 2, "the client's reconnect", 15_000);
          const gap = opens[1] - opens[0];
          assert.ok(gap >= REFUSAL_LINGER_MS - 50, `reconnected after ${gap} ms`);
        } finally {
          socket.disconnect();
        }
      },
    );
  } finally {
    await server.stop();
  }
});
