/**
 * Switchboard embedded in someone else's Hono app, as an adopter writes it: only the package's
 * exports (`@switchboard/switchboard`, `…/deno`), `createSwitchboard({ channels })` with no
 * configuration and no environment, mounted at `/rt` beside the host's own `/` and `/status/x`,
 * served with `Deno.serve`, driven with the official phoenix client (WebSocket and long-poll),
 * an SSE reader and the HTTP API.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { LongPoll } from "phoenix";
import { z } from "zod";
import { createApp, createSwitchboard, defineChannel, event } from "@switchboard/switchboard";
import { denoRuntime } from "@switchboard/switchboard/deno";
import { connectSocket, disconnect, join, push, withPresence } from "../support/phoenix.ts";
import { openSse } from "../support/sse.ts";
import { waitFor } from "../support/wait.ts";

const room = defineChannel({
  topic: "room:*",
  presence: true,
  join: (ctx) => {
    ctx.track(ctx.userId, { online: true });
    return { welcome: ctx.subtopic };
  },
  events: {
    shout: event(z.object({ body: z.string().max(500) }), (ctx, msg) => {
      ctx.broadcast("shout", msg);
      return {};
    }),
  },
  messages: { shout: z.object({ body: z.string() }) },
});

/** The host's app: its own pages, and Switchboard under `/rt`. */
function hostApp(): { app: Hono; close(): Promise<void> } {
  const switchboard = createSwitchboard({ channels: [room] });
  const app = new Hono();
  app.get("/", (c) => c.text("the host's home page"));
  app.get("/status/:name", (c) => c.text(`the host's status of ${c.req.param("name")}`));
  app.route("/rt", createApp(switchboard, { upgrade: denoRuntime.upgrade }));
  return { app, close: () => switchboard.close() };
}

async function text(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

Deno.test("embedded at /rt in a host Hono app: the host keeps its routes, every endpoint works under the prefix", async (t) => {
  const host = hostApp();
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, host.app.fetch);
  const base = `http://127.0.0.1:${server.addr.port}`;
  const socketUrl = `ws://127.0.0.1:${server.addr.port}/rt/socket`;
  try {
    await t.step(
      "the host's own / and /status/x are the host's; no demo pages or assets",
      async () => {
        assert.deepEqual(await text(`${base}/`), { status: 200, body: "the host's home page" });
        assert.deepEqual(await text(`${base}/status/x`), {
          status: 200,
          body: "the host's status of x",
        });
        assert.equal((await text(`${base}/rt/assets/phoenix.js`)).status, 404);
        assert.equal((await text(`${base}/rt/status/acme`)).status, 404);
        assert.equal((await text(`${base}/rt/healthz`)).status, 200);
      },
    );

    await t.step(
      "phoenix over /rt/socket/websocket, SSE at /rt/events and the API at /rt/api",
      async () => {
        const sse = await openSse(`${base}/rt/events?topic=room:lobby&user_id=carol`);
        assert.equal(sse.response.status, 200);
        const joined = await sse.next((e) => e.event === "joined");
        assert.deepEqual(JSON.parse(joined.data).payload, { welcome: "lobby" });

        const ann = await connectSocket(socketUrl, { user_id: "ann" });
        const channel = ann.channel("room:lobby");
        const shouts: unknown[] = [];
        channel.on("shout", (p: unknown) => shouts.push(p));
        assert.deepEqual(await join(channel), { welcome: "lobby" });
        assert.deepEqual(await push(channel, "shout", { body: "hi" }), {
          status: "ok",
          response: {},
        });
        const viaSse = await sse.next((e) => e.event === "shout");
        assert.deepEqual(viaSse.json?.payload, { body: "hi" });

        const res = await fetch(`${base}/rt/api/broadcast`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ topic: "room:lobby", event: "shout", payload: { body: "api" } }),
        });
        assert.equal(res.status, 202);
        await res.body?.cancel();
        await waitFor(
          () => shouts.some((s) => (s as { body: string }).body === "api"),
          "API shout",
        );
        assert.deepEqual((await sse.next((e) => e.event === "shout")).json?.payload, {
          body: "api",
        });

        const presence = await (await fetch(`${base}/rt/api/presence/room:lobby`)).json();
        assert.deepEqual(Object.keys(presence.presences).sort(), ["ann", "carol"]);
        const last = await (await fetch(`${base}/rt/api/topics/room:lobby`)).json();
        assert.deepEqual(last.payload, { body: "api" });
        await sse.close();
        await disconnect(ann);
      },
    );

    await t.step("the phoenix LongPoll transport at /rt/socket/longpoll", async () => {
      const bob = await connectSocket(socketUrl, { user_id: "bob" }, { transport: LongPoll });
      const channel = bob.channel("room:poll");
      const shouts: unknown[] = [];
      channel.on("shout", (p: unknown) => shouts.push(p));
      const seen = withPresence(channel);
      assert.deepEqual(await join(channel), { welcome: "poll" });
      await waitFor(() => seen.keys().includes("bob×1"), "bob's own presence over long-poll");
      assert.deepEqual(await push(channel, "shout", { body: "polled" }), {
        status: "ok",
        response: {},
      });
      await waitFor(() => shouts.length === 1, "the shout back over long-poll");
      assert.deepEqual(shouts, [{ body: "polled" }]);
      await disconnect(bob);
    });
  } finally {
    await host.close();
    await server.shutdown();
  }
});
