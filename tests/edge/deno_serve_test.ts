/**
 * Deno Deploy's shape: `serve.ts` under `deno serve` with the permissions of `deno task serve`
 * (env read by name), no environment-variable trick, and none of the Deno APIs Deploy lacks on
 * the request path (tests/edge/deploy_shape_entry.ts makes them throw): WebSocket with the
 * official client, SSE, long-poll, the API.
 */
import assert from "node:assert/strict";
import { LongPoll } from "phoenix";
import { connectSocket, disconnect, join, push } from "../support/phoenix.ts";
import { isReply, openRaw, replyOf } from "../support/raw_ws.ts";
import { spawnListening } from "../support/server.ts";
import { openSse } from "../support/sse.ts";
import { waitFor } from "../support/wait.ts";

const _root = new URL("../../", import.meta.url);

/** `deno task serve`'s command, on a free loopback port, with `entry` for serve.ts. */
async function serveTaskArgs(entry: string): Promise<string[]> {
  const tasks = JSON.parse(await Deno.readTextFile(new URL("deno.json", _root))).tasks;
  const words = (tasks.serve as string).split(/\s+/);
  assert.deepEqual(words.slice(0, 2), ["deno", "serve"]);
  assert.equal(words.at(-1), "serve.ts");
  assert.ok(words.some((w) => w.startsWith("--allow-env=")), "env is read by name");
  return ["serve", "--port", "0", "--host", "127.0.0.1", ...words.slice(2, -1), entry];
}

Deno.test("deno serve serve.ts, as Deno Deploy runs it", async (t) => {
  const server = await spawnListening({
    args: await serveTaskArgs("tests/edge/deploy_shape_entry.ts"),
    env: { LOG_LEVEL: "warn", HEARTBEAT_TIMEOUT_MS: "2000" },
    timeoutMs: 20_000,
  });
  try {
    await t.step("WebSocket, push replies and broadcasts with the phoenix client", async () => {
      // Raw first: bounded waits, so a failing session start fails here instead of retrying.
      const raw = await openRaw(`${server.socketUrl}/websocket?vsn=2.0.0&user_id=raw`);
      raw.push("1", "1", "status:deploy", "phx_join", {});
      assert.equal(replyOf(await raw.next(isReply("1"))).status, "ok");
      await raw.close();
      const socket = await connectSocket(server.socketUrl, { user_id: "ann" });
      const channel = socket.channel("record:deploy", { name: "Ann" });
      const patches: unknown[] = [];
      channel.on("patch", (p: unknown) => patches.push(p));
      await join(channel);
      assert.equal((await push(channel, "state", { state: "editing" })).status, "ok");
      const res = await fetch(`${server.url}/api/broadcast`, {
        method: "POST",
        body: JSON.stringify({ topic: "record:deploy", event: "patch", payload: { n: 1 } }),
      });
      assert.equal(res.status, 202);
      await res.body?.cancel();
      await waitFor(() => patches.length === 1, "the broadcast");
      await disconnect(socket);
    });

    await t.step("SSE and long-poll", async () => {
      const sse = await openSse(`${server.url}/events?topic=status:deploy`);
      await sse.next((e) => e.event === "joined");
      await sse.close();
      const lp = await connectSocket(server.socketUrl, { user_id: "bob" }, { transport: LongPoll });
      await join(lp.channel("status:deploy"));
      await disconnect(lp);
    });

    await t.step("idle sessions are swept with plain timers (no Deno.unrefTimer)", async () => {
      const silent = new WebSocket(`${server.socketUrl}/websocket?vsn=2.0.0&user_id=quiet`);
      const closed = new Promise<number>((resolve) => silent.onclose = (e) => resolve(e.code));
      assert.equal(await closed, 1001, "closed for missing heartbeats");
      const health = await (await fetch(`${server.url}/healthz`)).json();
      assert.equal(health.status, "ok");
      assert.doesNotMatch(server.output(), /Deploy has no such API/);
    });
  } finally {
    await server.stop();
  }
});
