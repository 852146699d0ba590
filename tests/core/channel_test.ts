/**
 * The channel runtime with channels written for the test: crashes, handleOut, terminate,
 * refused and async joins, and the idle sweep with an injected clock. The app is served
 * in-process on a free port and driven by the official client and raw frames.
 */
import { serveInProcess } from "../support/in_process.ts";
import assert from "node:assert/strict";
import { z } from "zod";
import { defineChannel, error, event } from "../../lib/mod.ts";
import type { Clock } from "../../lib/core/switchboard.ts";
import { connectSocket, disconnect, join, push } from "../support/phoenix.ts";
import { delay, waitFor } from "../support/wait.ts";

const terminated: string[] = [];
const testChannels = [
  defineChannel({
    topic: "crashy:*",
    events: {
      boom: event(z.object({}), () => {
        throw new Error("intentional crash");
      }),
      echo: event(z.object({ text: z.string() }), (_ctx, p) => p),
    },
    terminate: (ctx, reason) => void terminated.push(`${ctx.topic}:${reason}`),
  }),
  defineChannel({
    topic: "private:*",
    async join(ctx) {
      await delay(20);
      return ctx.subtopic === ctx.userId
        ? { welcome: ctx.userId }
        : error({ reason: "unauthorized" });
    },
  }),
  defineChannel({
    topic: "redacted:*",
    handleOut: {
      secret: (ctx, payload) =>
        ctx.userId === "admin" ? payload : payload.public ? { public: payload.public } : null,
    },
  }),
];

function serve(clock: Clock = Date) {
  const env = { HEARTBEAT_TIMEOUT_MS: "1000", PRESENCE_BATCH_MS: "5" };
  return serveInProcess({ channels: testChannels, env, clock });
}

Deno.test("a crash in a callback sends phx_error, terminates, and the client rejoins", async () => {
  const app = serve();
  try {
    const socket = await connectSocket(app.socketUrl, {}, { rejoinAfterMs: () => 50 });
    const channel = socket.channel("crashy:1");
    await join(channel);
    let errors = 0;
    channel.onError(() => errors++);
    channel.push("boom", {});
    await waitFor(() => errors === 1, "phx_error");
    assert.ok(terminated.includes("crashy:1:crash"));
    await waitFor(() => channel.state === "joined", "automatic rejoin");
    assert.deepEqual(await push(channel, "echo", { text: "hi" }), {
      status: "ok",
      response: { text: "hi" },
    });
    assert.deepEqual(await push(channel, "nope", {}), {
      status: "error",
      response: { reason: "unknown_event", event: "nope" },
    });
    // The client drops the channel at once on leave; the server's terminate follows the frame.
    channel.leave();
    await waitFor(() => terminated.includes("crashy:1:leave"), "terminate on leave");
    await disconnect(socket);
  } finally {
    await app.close();
  }
});

Deno.test("async joins authorize per topic and see the user", async () => {
  const app = serve();
  try {
    const socket = await connectSocket(app.socketUrl, { user_id: "ann" });
    assert.deepEqual(await join(socket.channel("private:ann")), { welcome: "ann" });
    await assert.rejects(join(socket.channel("private:bob")), /unauthorized/);
    await disconnect(socket);
  } finally {
    await app.close();
  }
});

Deno.test("handleOut rewrites or drops a broadcast per subscriber", async () => {
  const app = serve();
  try {
    const admin = await connectSocket(app.socketUrl, { user_id: "admin" });
    const guest = await connectSocket(app.socketUrl, { user_id: "guest" });
    const got: Record<string, unknown[]> = { admin: [], guest: [] };
    for (const [name, socket] of [["admin", admin], ["guest", guest]] as const) {
      const channel = socket.channel("redacted:1");
      channel.on("secret", (p: unknown) => got[name].push(p));
      await join(channel);
    }
    app.switchboard.hub.broadcast("redacted:1", "secret", { public: "a", private: "b" });
    app.switchboard.hub.broadcast("redacted:1", "secret", { private: "only" });
    await waitFor(() => got.admin.length === 2 && got.guest.length === 1, "intercepted pushes");
    assert.deepEqual(got.guest, [{ public: "a" }]);
    assert.deepEqual(got.admin[1], { private: "only" });
    await Promise.all([disconnect(admin), disconnect(guest)]);
  } finally {
    await app.close();
  }
});

Deno.test("the idle sweep closes sessions silent past the timeout, by the injected clock", async () => {
  let now = 1_000_000;
  const app = serve({ now: () => now });
  try {
    const ws = new WebSocket(`${app.socketUrl}/websocket?vsn=2.0.0`);
    const closed = new Promise<number>((resolve) => ws.onclose = (e) => resolve(e.code));
    await new Promise((resolve) => ws.onopen = resolve);
    await waitFor(() => app.switchboard.sessionCount === 1, "session open");
    now += 999;
    assert.equal(app.switchboard.sweepIdle(), 0);
    now += 2;
    assert.equal(app.switchboard.sweepIdle(), 1);
    assert.equal(await closed, 1001);
  } finally {
    await app.close();
  }
});
