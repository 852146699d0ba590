/**
 * Access rules with channels written for the test, served in-process: a node whose channels
 * are all private refuses token-less connects; `authorize` is asked for joins and reads;
 * `ctx.push`/`ctx.broadcast`/`publish` refuse reserved and CR/LF event names; the sweep ends
 * sessions whose token expired (by the injected clock); token leeway on `exp` and `nbf`.
 */
import { serveInProcess } from "../support/in_process.ts";
import assert from "node:assert/strict";
import { nowSeconds, signToken, verifyToken } from "../../lib/auth.ts";
import { defineChannel } from "../../lib/mod.ts";
import type { Clock } from "../../lib/core/switchboard.ts";
import { sseEvent, SseFieldError } from "../../lib/transports/sse_framing.ts";
import { isReply, openRaw, replyOf, upgradeStatus } from "../support/raw_ws.ts";
import { openSse } from "../support/sse.ts";

const SECRET = "core-access-secret-0123";

const testChannels = [
  defineChannel({
    topic: "echo:*",
    // The client names the event: the channel passes it on, as a careless channel would.
    handleIn(ctx, event, payload) {
      if (payload.via === "push") ctx.push(event, payload);
      else ctx.broadcast(event, payload);
      return {};
    },
  }),
  defineChannel({
    topic: "team:*",
    authorize: (identity, topic) => topic === `team:${identity.userId}`,
  }),
];

function serve(env: Record<string, string> = {}, clock: Clock = Date) {
  return serveInProcess({ channels: testChannels, env: { PRESENCE_BATCH_MS: "5", ...env }, clock });
}

Deno.test("no public channel: a connect without a token is 401; authorize guards joins and reads", async () => {
  const app = serve({ SOCKET_SECRET: SECRET });
  try {
    const ws = `${app.socketUrl}/websocket?vsn=2.0.0`;
    // Accepted so that a browser can read why; the 101 names the refusal, the close says it.
    const refused = await upgradeStatus(ws);
    assert.equal(refused.status, 101);
    assert.match(refused.head, /x-switchboard-refusal: token_missing/i);
    const none = await fetch(`${app.url}/events?topic=team:ann`);
    assert.equal(none.status, 401);
    await none.body?.cancel();
    const ann = await signToken(SECRET, { sub: "ann", exp: nowSeconds() + 60 });
    const raw = await openRaw(`${ws}&token=${ann}`);
    raw.push("1", "1", "team:ann", "phx_join", {});
    assert.equal(replyOf(await raw.next(isReply("1"))).status, "ok");
    raw.push("2", "2", "team:bob", "phx_join", {});
    assert.equal(replyOf(await raw.next(isReply("2"))).response.reason, "unauthorized");
    await raw.close();
    const read = await fetch(`${app.url}/api/presence/team:bob?token=${ann}`);
    assert.equal(read.status, 403);
    await read.body?.cancel();
    const own = await fetch(`${app.url}/api/presence/team:ann`, {
      headers: { authorization: `Bearer ${ann}` },
    });
    assert.equal(own.status, 200);
    await own.body?.cancel();
  } finally {
    await app.close();
  }
});

Deno.test("ctx.broadcast, ctx.push and publish refuse reserved and CR/LF event names", async () => {
  const app = serve();
  try {
    const sse = await openSse(`${app.url}/events?topic=echo:1`);
    await sse.next((e) => e.event === "joined");
    const raw = await openRaw(`${app.socketUrl}/websocket?vsn=2.0.0`);
    raw.push("1", "1", "echo:1", "phx_join", {});
    await raw.next(isReply("1"));
    const forged = "note\nid: 999\nevent: reset";
    let joinRef = "1";
    const attempts = [["reset", "broadcast"], [forged, "broadcast"], ["joined", "push"]];
    for (const [event, via] of attempts) {
      raw.push(joinRef, `${joinRef}.push`, "echo:1", event, { via });
      const error = await raw.next((f) => f.event === "phx_error");
      assert.deepEqual(error.payload, { reason: "channel_crash" }, event);
      joinRef = String(Number(joinRef) + 1);
      raw.push(joinRef, joinRef, "echo:1", "phx_join", {});
      await raw.next(isReply(joinRef));
    }
    raw.push(joinRef, "99", "echo:1", "fine", { via: "broadcast" });
    await raw.next(isReply("99"));
    const fine = await sse.next((e) => e.event !== "joined");
    assert.equal(fine.event, "fine", "nothing forged reached the SSE stream before it");
    assert.ok(!sse.events.some((e) => e.event === "reset" || e.id === "999"));
    assert.throws(() => app.switchboard.publish("echo:1", "reset", {}), /reserved/);
    assert.throws(() => app.switchboard.publish("echo:1", "a\r\nb", {}), /control characters/);
    assert.throws(() => sseEvent("echo:1", "a\nb", "{}"), SseFieldError);
    await raw.close();
    await sse.close();
  } finally {
    await app.close();
  }
});

Deno.test("the sweep ends a session whose token expired, by the injected clock (4001)", async () => {
  let now = Date.now();
  const app = serve({
    SOCKET_SECRET: SECRET,
    TOKEN_LEEWAY_SECONDS: "5",
    HEARTBEAT_TIMEOUT_MS: "3600000",
  }, { now: () => now });
  try {
    const exp = Math.floor(now / 1000) + 60;
    const token = await signToken(SECRET, { sub: "ann", exp });
    const raw = await openRaw(`${app.socketUrl}/websocket?vsn=2.0.0&token=${token}`);
    raw.push("1", "1", "team:ann", "phx_join", {});
    await raw.next(isReply("1"));
    now = exp * 1000 + 4_000;
    assert.deepEqual(app.switchboard.sweep(), { idle: 0, expired: 0 }, "within the leeway");
    now = exp * 1000 + 5_000;
    assert.deepEqual(app.switchboard.sweep(), { idle: 0, expired: 1 });
    const closed = await raw.closed;
    assert.equal(closed.code, 4001);
    assert.equal(closed.reason, "token expired: reconnect with a fresh token");
  } finally {
    await app.close();
  }
});

Deno.test("token leeway: exp and nbf tolerate the configured skew, not more", async () => {
  const t = 1_800_000_000;
  const check = async (
    claims: { exp: number; nbf?: number },
  ) => (await verifyToken(SECRET, await signToken(SECRET, { sub: "a", ...claims }), {
    now: t,
    leewaySeconds: 30,
  }));
  assert.equal((await check({ exp: t - 29 })).ok, true);
  assert.deepEqual(await check({ exp: t - 30 }), {
    ok: false,
    reason: "expired",
    problem: "token expired: reconnect with a fresh token",
  });
  assert.equal((await check({ exp: t + 60, nbf: t + 30 })).ok, true);
  assert.deepEqual(await check({ exp: t + 60, nbf: t + 31 }), {
    ok: false,
    reason: "not_yet_valid",
    problem: "token not yet valid (nbf is in the future): check the clocks",
  });
});
