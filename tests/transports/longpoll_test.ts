/**
 * The official phoenix client over `LongPoll`: join, push with reply, broadcasts, presence
 * with WebSocket users, the automatic fallback when WebSocket cannot connect, and abandoned
 * sessions ending.
 */
import assert from "node:assert/strict";
import { LongPoll } from "phoenix";
import { connectSocket, disconnect, join, push, withPresence } from "../support/phoenix.ts";
import { startServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

/** A WebSocket that never connects, as behind a proxy that drops upgrades. */
class BlockedWebSocket {
  static readonly CONNECTING = 0;
  readyState = 0;
  binaryType = "arraybuffer";
  onopen = () => {};
  onclose = (_e: unknown) => {};
  onerror = (_e: unknown) => {};
  onmessage = (_e: unknown) => {};
  constructor(_url: string) {}
  send() {}
  close() {
    this.readyState = 3;
  }
}

async function post(url: string, body: unknown): Promise<void> {
  const res = await fetch(`${url}/api/broadcast`, { method: "POST", body: JSON.stringify(body) });
  await res.body?.cancel();
}

Deno.test("long-poll transport", async (t) => {
  const server = await startServer({ LONGPOLL_TIMEOUT_MS: "1500" });
  try {
    await t.step("join, push with reply, broadcasts and presence over LongPoll", async () => {
      const lp = await connectSocket(server.socketUrl, { user_id: "lp-ann" }, {
        transport: LongPoll,
      });
      assert.equal(lp.transport, LongPoll);
      const ws = await connectSocket(server.socketUrl, { user_id: "ws-bob" });
      const lpChannel = lp.channel("record:lp", { name: "Ann" });
      const lpView = withPresence(lpChannel);
      const patches: unknown[] = [];
      lpChannel.on("patch", (p: unknown) => patches.push(p));
      await join(lpChannel);
      const wsChannel = ws.channel("record:lp", { name: "Bob" });
      const wsView = withPresence(wsChannel);
      await join(wsChannel);
      await waitFor(
        () =>
          lpView.keys().join() === "lp-ann×1,ws-bob×1" &&
          wsView.keys().join() === lpView.keys().join(),
        "presence over both transports",
      );
      assert.deepEqual(await push(lpChannel, "state", { state: "editing" }), {
        status: "ok",
        response: {},
      });
      assert.equal((await push(lpChannel, "state", { state: "x" })).status, "error");
      await push(wsChannel, "patch", { line: 1 });
      await post(server.url, { topic: "record:lp", event: "patch", payload: { line: 2 } });
      await waitFor(() => patches.length === 2, "broadcasts over long-poll");
      assert.deepEqual(patches, [{ line: 1 }, { line: 2 }]);
      await disconnect(lp);
      await waitFor(() => wsView.keys().join() === "ws-bob×1", "the long-poll user leaves").catch(
        async (e) => {
          const api = await (await fetch(`${server.url}/api/presence/record:lp`)).json();
          throw new Error(
            `${e.message} view=${wsView.keys()} api=${JSON.stringify(api).slice(0, 300)} out=${
              server.output().slice(-2000)
            }`,
          );
        },
      );
      await disconnect(ws);
    });

    await t.step("falls back to long-poll when WebSocket cannot connect", async () => {
      const socket = await connectSocket(server.socketUrl, { user_id: "fallback" }, {
        transport: BlockedWebSocket,
        longPollFallbackMs: 200,
      });
      assert.equal(socket.transport, LongPoll);
      const reply = await join(socket.channel("status:fallback"));
      assert.deepEqual(reply, { status: null, updated_at: null });
      await disconnect(socket);
    });

    await t.step("raw protocol: 410 with a token, frames as strings, 204 when idle", async () => {
      const base = `${server.url}/socket/longpoll?vsn=2.0.0&user_id=raw`;
      const first = await (await fetch(`${base}&`)).json();
      assert.equal(first.status, 410);
      assert.equal(typeof first.token, "string");
      const posted = await fetch(`${base}&token=${first.token}`, {
        method: "POST",
        headers: { "content-type": "application/x-ndjson" },
        body: '["1","1","status:raw","phx_join",{}]\n[null,"2","phoenix","heartbeat",{}]',
      });
      assert.deepEqual(await posted.json(), { status: 200 });
      const poll = await fetch(`${base}&token=${first.token}`);
      assert.equal(poll.headers.get("cache-control"), "no-store");
      const body = await poll.json();
      assert.equal(body.status, 200);
      assert.deepEqual(body.messages.map((m: string) => JSON.parse(m)), [
        ["1", "1", "status:raw", "phx_reply", {
          status: "ok",
          response: { status: null, updated_at: null },
        }],
        [null, "2", "phoenix", "phx_reply", { status: "ok", response: {} }],
      ]);
      const unknown = await (await fetch(`${base}&token=nope`, { method: "POST", body: "" }))
        .json();
      assert.equal(unknown.status, 410);
      const tooMany = Array.from(
        { length: 101 },
        (_, i) => `[null,"${i}","phoenix","heartbeat",{}]`,
      );
      const refused = await fetch(`${base}&token=${first.token}`, {
        method: "POST",
        body: tooMany.join("\n"),
      });
      assert.equal((await refused.json()).status, 400);
    });

    await t.step("an abandoned session ends and its presence leaves", async () => {
      const base = `${server.url}/socket/longpoll?vsn=2.0.0&user_id=ghost`;
      const { token } = await (await fetch(base)).json();
      const joined = await fetch(`${base}&token=${token}`, {
        method: "POST",
        body: '["1","1","record:abandon","phx_join",{"name":"Ghost"}]',
      });
      await joined.body?.cancel();
      const presences = async () =>
        Object.keys(
          (await (await fetch(`${server.url}/api/presence/record:abandon`)).json()).presences,
        );
      await waitFor(async () => (await presences()).join() === "ghost", "ghost present");
      // No more polls: LONGPOLL_TIMEOUT_MS is 1500 for this server.
      await waitFor(async () => (await presences()).length === 0, "ghost gone", 10_000);
      const after = await (await fetch(`${base}&token=${token}`)).json();
      assert.equal(after.status, 410, "the old token is gone: a new session starts");
      assert.notEqual(after.token, token);
    });
  } finally {
    await server.stop();
  }
});
