/**
 * The core verifies no token itself: identity comes through the injected authenticate hook,
 * and without one the `user_id` param is trusted (dev). Driven over raw WebSocket frames
 * against a real server whose node was built with the core's own options only (no env config
 * for the core), and a hook that is not a JWT verifier.
 */
import assert from "node:assert/strict";
import { defineChannel } from "../../lib/mod.ts";
import type { Authenticate } from "../../lib/core/identity.ts";
import { NODE_DEFAULTS } from "../../lib/core/options.ts";
import { Switchboard } from "../../lib/core/switchboard.ts";
import { loadConfig } from "../../lib/config.ts";
import { denoRuntime } from "../../lib/runtime/deno.ts";
import { createApp } from "../../routes/app.ts";
import { isReply, openRaw, replyOf, upgradeOutcome } from "../support/raw_ws.ts";

const channels = [
  defineChannel({
    topic: "team:*",
    authorize: (identity, topic) => topic === `team:${identity.userId}`,
    join: (ctx) => ({ user: ctx.userId }),
  }),
];

/** Tokens `badge:<user>` name their holder; anything else is refused as an unknown badge. */
const badges: Authenticate = (token) =>
  Promise.resolve(
    token.startsWith("badge:")
      ? { ok: true, identity: { userId: token.slice("badge:".length) } }
      : { ok: false, reason: "unknown_badge" },
  );

function serve(authenticate?: Authenticate) {
  // The whole env config for the routes; the core reads only its NodeOptions of it.
  const switchboard = new Switchboard({ config: loadConfig({}), channels, authenticate });
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    createApp(switchboard, { upgrade: denoRuntime.upgrade }).fetch,
  );
  const socket = `ws://127.0.0.1:${server.addr.port}/socket/websocket?vsn=2.0.0`;
  return {
    switchboard,
    socket,
    async [Symbol.asyncDispose]() {
      await switchboard.close();
      await server.shutdown();
    },
  };
}

Deno.test("an injected authenticate hook decides who connects; no hook trusts user_id", async (t) => {
  await t.step("with the hook: no token is refused, its token joins as its user", async () => {
    await using app = serve(badges);
    assert.equal(await upgradeOutcome(app.socket), "token_missing");
    const raw = await openRaw(`${app.socket}&token=badge:ann`);
    raw.push("1", "1", "team:ann", "phx_join", {});
    const reply = replyOf(await raw.next(isReply("1")));
    assert.deepEqual([reply.status, reply.response.user], ["ok", "ann"]);
    // user_id is not trusted while a hook is set: the join is refused for bob's team.
    raw.push("2", "2", "team:bob", "phx_join", { user_id: "bob" });
    assert.equal(replyOf(await raw.next(isReply("2"))).response.reason, "unauthorized");
    await raw.close();
  });

  await t.step(
    "with the hook: a token it refuses is refused (token_refused), counted with its reason",
    async () => {
      await using app = serve(badges);
      assert.equal(await upgradeOutcome(`${app.socket}&token=forged`), "token_refused");
      const refused = app.switchboard.metrics.value("switchboard_refused_total", {
        reason: "unknown_badge",
      });
      assert.equal(refused, 1);
      // In the hook's words on SSE too (its reasons are not the JWT verifier's).
      const http = app.socket.replace("ws:", "http:").split("/socket")[0];
      const sse = await fetch(`${http}/events?topic=team:x&token=forged`);
      assert.deepEqual(await sse.json(), {
        error: "token refused: unknown_badge",
        reason: "token_refused",
      });
    },
  );

  await t.step("without a hook: user_id is trusted (dev), tokens are not looked at", async () => {
    await using app = serve();
    const raw = await openRaw(`${app.socket}&user_id=bob&token=anything`);
    raw.push("1", "1", "team:bob", "phx_join", {});
    const reply = replyOf(await raw.next(isReply("1")));
    assert.deepEqual([reply.status, reply.response.user], ["ok", "bob"]);
    await raw.close();
  });
});

Deno.test("the core fills its own defaults from a partial options object", async () => {
  const switchboard = new Switchboard({ config: { nodeId: "core-only" }, channels });
  try {
    assert.equal(switchboard.options.nodeId, "core-only");
    assert.equal(switchboard.options.maxTopicsPerSession, NODE_DEFAULTS.maxTopicsPerSession);
    assert.equal(switchboard.options.heartbeatTimeoutMs, NODE_DEFAULTS.heartbeatTimeoutMs);
    assert.deepEqual(switchboard.options.history, NODE_DEFAULTS.history);
    // And the environment's defaults are the core's, not a second copy of the numbers.
    const config = loadConfig({});
    assert.equal(config.maxTopicsPerSession, NODE_DEFAULTS.maxTopicsPerSession);
    assert.deepEqual(config.pushRate, NODE_DEFAULTS.pushRate);
  } finally {
    await switchboard.close();
  }
});
