/**
 * The unmodified official `phoenix` client against the real server: join, push/reply,
 * broadcasts, broadcast-from, presence across users and connections, leave, drops, heartbeat.
 */
import assert from "node:assert/strict";
import type { Channel } from "phoenix";
import { connectSocket, disconnect, join, push, withPresence } from "../support/phoenix.ts";
import { startServer } from "../support/server.ts";
import { delay, waitFor } from "../support/wait.ts";

const _root = new URL("../../", import.meta.url);

async function post(url: string, body: unknown): Promise<Response> {
  const res = await fetch(`${url}/api/broadcast`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  await res.body?.cancel();
  return res;
}

Deno.test("official phoenix client", async (t) => {
  // These steps check the leaves themselves, so without the leave grace (which would add 2 s to
  // each); the grace has its own test below, against a server with the default.
  const server = await startServer({ HEARTBEAT_TIMEOUT_MS: "1500", PRESENCE_LEAVE_GRACE_MS: "0" });
  try {
    await t.step("joins a status page, gets the last status, and is refused pushes", async () => {
      const before = await post(server.url, {
        topic: "status:acme",
        event: "status",
        payload: { state: "degraded", message: "Slow", extra: [1] },
      });
      assert.equal(before.status, 202);
      const socket = await connectSocket(server.socketUrl);
      const channel = socket.channel("status:acme");
      const reply = await join(channel);
      assert.deepEqual(reply.status, { state: "degraded", message: "Slow", extra: [1] });
      assert.match(String(reply.updated_at), /^\d{4}-\d\d-\d\dT/);
      const refused = await push(channel, "status", { state: "outage" });
      assert.deepEqual(refused, { status: "error", response: { reason: "read_only" } });
      assert.equal(channel.state, "joined");
      const got: unknown[] = [];
      channel.on("status", (p: unknown) => got.push(p));
      await post(server.url, {
        topic: "status:acme",
        event: "status",
        payload: { state: "operational" },
      });
      await waitFor(() => got.length === 1, "the live status update");
      assert.deepEqual(got[0], { state: "operational" });
      await disconnect(socket);
    });

    await t.step("a broadcast reaches every subscriber once", async () => {
      const sockets = await Promise.all([1, 2, 3].map(() => connectSocket(server.socketUrl)));
      const received: unknown[][] = sockets.map(() => []);
      for (const [i, socket] of sockets.entries()) {
        const channel = socket.channel("status:fanout");
        channel.on("status", (p: unknown) => received[i].push(p));
        await join(channel);
      }
      for (let n = 1; n <= 5; n++) {
        await post(server.url, { topic: "status:fanout", event: "status", payload: { n } });
      }
      await waitFor(() => received.every((r) => r.length === 5), "5 messages on each socket");
      for (const r of received) assert.deepEqual(r, [1, 2, 3, 4, 5].map((n) => ({ n })));
      await Promise.all(sockets.map(disconnect));
    });

    await t.step(
      "patch is broadcast to others, not echoed; the sender's other tab gets it",
      async () => {
        const annTab1 = await connectSocket(server.socketUrl, { user_id: "ann" });
        const annTab2 = await connectSocket(server.socketUrl, { user_id: "ann" });
        const bob = await connectSocket(server.socketUrl, { user_id: "bob" });
        const inbox = new Map<string, unknown[]>();
        const channels = [["ann1", annTab1], ["ann2", annTab2], ["bob", bob]] as const;
        for (const [name, socket] of channels) {
          const channel = socket.channel("record:patch", { name });
          inbox.set(name, []);
          channel.on("patch", (p: unknown) => inbox.get(name)!.push(p));
          await join(channel);
        }
        const sender = annTab1.channels.find((c: { topic: string }) => c.topic === "record:patch");
        const reply = await push(sender, "patch", { field: "title", value: "Q3" });
        assert.equal(reply.status, "ok");
        await waitFor(
          () => inbox.get("bob")!.length === 1 && inbox.get("ann2")!.length === 1,
          "patch",
        );
        assert.deepEqual(inbox.get("bob"), [{ field: "title", value: "Q3" }]);
        assert.deepEqual(inbox.get("ann1"), []);
        await Promise.all([annTab1, annTab2, bob].map(disconnect));
      },
    );

    await t.step("presence across three users, updates, leave and disconnect", async () => {
      const users = ["ann", "bob", "cat"];
      const sockets = await Promise.all(
        users.map((u) => connectSocket(server.socketUrl, { user_id: u })),
      );
      const views: ReturnType<typeof withPresence>[] = [];
      const channels: Channel[] = [];
      for (const [i, socket] of sockets.entries()) {
        const channel = socket.channel("record:42", { name: users[i].toUpperCase() });
        views.push(withPresence(channel));
        channels.push(channel);
        await join(channel);
      }
      const all = ["ann×1", "bob×1", "cat×1"];
      await waitFor(
        () => views.every((v) => v.keys().join() === all.join()),
        "three users everywhere",
      );
      const meta = views[2].presence.list((_k: string, p: { metas: Record<string, unknown>[] }) =>
        p.metas[0]
      );
      assert.deepEqual(meta.map((m: Record<string, unknown>) => m.name).sort(), [
        "ANN",
        "BOB",
        "CAT",
      ]);
      assert.ok(meta.every((m: Record<string, unknown>) => m.state === "viewing"));

      const updated = await push(channels[1], "state", { state: "editing" });
      assert.equal(updated.status, "ok");
      const bobState = () =>
        views[0].presence.list((k: string, p: { metas: Record<string, unknown>[] }) =>
          k === "bob" ? p.metas : null
        ).filter(Boolean)[0];
      await waitFor(() => bobState()?.[0]?.state === "editing", "bob editing seen by ann");
      assert.equal(bobState().length, 1);
      assert.ok(typeof bobState()[0].phx_ref_prev === "string");

      await new Promise<void>((resolve) => channels[2].leave().receive("ok", () => resolve()));
      await waitFor(() => views[0].keys().join() === "ann×1,bob×1", "cat gone after leave");
      await disconnect(sockets[1]);
      await waitFor(() => views[0].keys().join() === "ann×1", "bob gone after disconnect");
      await Promise.all([sockets[0], sockets[2]].map(disconnect));
      await waitFor(async () => {
        const res = await fetch(`${server.url}/api/presence/record:42`);
        return Object.keys((await res.json()).presences).length === 0;
      }, "empty presence");
    });

    await t.step("two connections of one user: two metas, one key, until both go", async () => {
      const tab1 = await connectSocket(server.socketUrl, { user_id: "dan" });
      const tab2 = await connectSocket(server.socketUrl, { user_id: "dan" });
      const watcher = await connectSocket(server.socketUrl, { user_id: "eve" });
      const view = withPresence(watcher.channel("record:tabs", {}));
      await join(view.presence.channel);
      await join(tab1.channel("record:tabs", { name: "Dan" }));
      await join(tab2.channel("record:tabs", { name: "Dan" }));
      await waitFor(() => view.keys().join() === "dan×2,eve×1", "dan with two metas");
      await disconnect(tab1);
      await waitFor(() => view.keys().join() === "dan×1,eve×1", "dan with one meta");
      await disconnect(tab2);
      await waitFor(() => view.keys().join() === "eve×1", "dan gone");
      await disconnect(watcher);
    });

    await t.step("an abrupt drop (killed client process) removes its presence", async () => {
      const watcher = await connectSocket(server.socketUrl, { user_id: "watcher" });
      const view = withPresence(watcher.channel("record:drop", {}));
      await join(view.presence.channel);
      const script = `import { Socket } from "phoenix";
        const s = new Socket(${JSON.stringify(server.socketUrl)}, { params: { user_id: "zed" } });
        s.connect();
        s.channel("record:drop", { name: "Zed" }).join().receive("ok", () => console.log("JOINED"));
        setTimeout(() => {}, 60000);`;
      const child = new Deno.Command(Deno.execPath(), {
        args: ["eval", script],
        cwd: _root,
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      while (!out.includes("JOINED")) {
        const { value, done } = await reader.read();
        if (done) break;
        out += value;
      }
      await waitFor(() => view.keys().includes("zed×1"), "zed joined");
      child.kill("SIGKILL");
      await child.status;
      await reader.cancel();
      await waitFor(() => !view.keys().some((k) => k.startsWith("zed")), "zed gone after kill");
      await disconnect(watcher);
    });

    await t.step("heartbeats keep a socket alive; a silent one is closed", async () => {
      const socket = await connectSocket(server.socketUrl, {}, { heartbeatIntervalMs: 200 });
      const latency = await new Promise<number>((resolve) => socket.ping(resolve));
      assert.ok(latency >= 0);
      const silent = new WebSocket(`${server.socketUrl}/websocket?vsn=2.0.0`);
      const closed = new Promise<number>((resolve) => silent.onclose = (e) => resolve(e.code));
      // HEARTBEAT_TIMEOUT_MS is 1500 for this server: the silent socket goes, the beating one stays.
      assert.equal(await closed, 1001);
      assert.equal(socket.isConnected(), true);
      await disconnect(socket);
    });

    await t.step("authToken is accepted through the phoenix subprotocol", async () => {
      const socket = await connectSocket(server.socketUrl, { user_id: "tok" }, {
        authToken: "secret-token-123",
      });
      assert.equal(socket.conn.protocol, "phoenix");
      await join(socket.channel("status:token"));
      await disconnect(socket);
    });

    await t.step("the v1 serializer (no vsn) works for join and broadcasts", async () => {
      const ws = new WebSocket(`${server.socketUrl}/websocket?user_id=v1`);
      const frames: Record<string, unknown>[] = [];
      ws.onmessage = (e) => frames.push(JSON.parse(e.data));
      await new Promise((resolve) => ws.onopen = resolve);
      ws.send(JSON.stringify({ topic: "status:v1", event: "phx_join", payload: {}, ref: "1" }));
      await waitFor(() => frames.length === 1, "v1 join reply");
      assert.deepEqual(frames[0], {
        topic: "status:v1",
        event: "phx_reply",
        payload: { status: "ok", response: { status: null, updated_at: null } },
        ref: "1",
      });
      await post(server.url, { topic: "status:v1", event: "status", payload: { state: "outage" } });
      await waitFor(() => frames.length === 2, "v1 broadcast");
      assert.deepEqual(frames[1], {
        topic: "status:v1",
        event: "status",
        payload: { state: "outage" },
        ref: null,
      });
      const closed = new Promise((resolve) => ws.onclose = resolve);
      ws.close();
      await closed;
    });
  } finally {
    await server.stop();
  }
});

Deno.test("official phoenix client: a handover (old connection gone, a new one for the user joins) never shows a leave", async () => {
  const server = await startServer();
  try {
    const watcher = await connectSocket(server.socketUrl, { user_id: "obs" });
    const view = withPresence(watcher.channel("record:handover", {}));
    // What the official client tells its app: every sync's keys, and each leave with what is
    // left of the key (none: the key is gone for the app).
    const syncs: string[][] = [];
    const leaves: { key: string; left: number }[] = [];
    view.presence.onSync(() => syncs.push(view.keys()));
    view.presence.onLeave((key: string, current: { metas: unknown[] } | undefined) =>
      leaves.push({ key, left: current?.metas.length ?? 0 })
    );
    await join(view.presence.channel);
    const old = await connectSocket(server.socketUrl, { user_id: "ann" });
    await join(old.channel("record:handover", { name: "Ann" }));
    await waitFor(() => view.keys().join() === "ann×1,obs×1", "ann joined");
    const annRef = () =>
      view.presence.list((k: string, p: { metas: { phx_ref: string }[] }) =>
        k === "ann" ? p.metas[0].phx_ref : undefined
      ).find(Boolean);
    const firstRef = annRef();
    const seenBefore = syncs.length;
    await disconnect(old);
    // The tab that takes over connects 50-300 ms later (issue #16); PRESENCE_LEAVE_GRACE_MS is
    // 2000 here (the default), so this gap stays well inside it.
    await delay(300);
    const successor = await connectSocket(server.socketUrl, { user_id: "ann" });
    await join(successor.channel("record:handover", { name: "Ann" }));
    await waitFor(() => annRef() && annRef() !== firstRef, "ann's new meta replaced the old");
    assert.ok(syncs.length > seenBefore, "the handover reached the observer as a sync");
    assert.deepEqual(
      syncs.slice(seenBefore).filter((keys) => !keys.includes("ann×1")),
      [],
      "every sync during the handover lists Ann",
    );
    const gone = () => leaves.filter((l) => l.key === "ann" && l.left === 0);
    assert.deepEqual(gone(), [], "no onLeave left Ann without a meta");
    // A real leave (nobody takes over) reaches the observer once the grace has passed.
    await disconnect(successor);
    await waitFor(() => view.keys().join() === "obs×1", "ann gone after the grace");
    assert.equal(gone().length, 1);
    await disconnect(watcher);
  } finally {
    await server.stop();
  }
});
