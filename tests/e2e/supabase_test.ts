/**
 * The unmodified `@supabase/realtime-js` (2.119, default options: vsn 2.0.0, binary user
 * broadcast pushes) against the real server: `realtime:*` channels with broadcast (`self`,
 * `ack`, JSON and binary payloads), presence keyed by the client's key (and none for clients that
 * did not enable it), a refused `postgres_changes` join, the REST shapes (`send()` fallback and
 * `httpSend()`, JSON and bytes), and with `SOCKET_SECRET`/`API_TOKEN`: tokens in the join,
 * `access_token` refreshes, and who may broadcast over REST; and two nodes through Redis.
 */
import assert from "node:assert/strict";
import { type RealtimeChannel, RealtimeClient } from "@supabase/realtime-js";
import { nowSeconds, signToken } from "../../lib/auth.ts";
import { waitForCluster } from "../support/cluster.ts";
import { startBridge, startRedis } from "../support/redis.ts";
import { type ServerProcess, startServer } from "../support/server.ts";
import { delay, waitFor } from "../support/wait.ts";

type Status = "SUBSCRIBED" | "TIMED_OUT" | "CLOSED" | "CHANNEL_ERROR";

/** A client as a Supabase user makes one: the socket URL and an `apikey` param. */
function client(server: ServerProcess, params: Record<string, string> = {}): RealtimeClient {
  return new RealtimeClient(server.socketUrl, {
    params: { apikey: "public-anon-key", ...params },
    timeout: 3000,
    logger: () => {},
  });
}

/** Subscribes and resolves with the first status (and error message) the callback gets. */
function subscribe(channel: RealtimeChannel): Promise<{ status: Status; error?: string }> {
  return new Promise((resolve) => {
    channel.subscribe((status: Status, err?: Error) => resolve({ status, error: err?.message }));
  });
}

async function subscribed(channel: RealtimeChannel): Promise<void> {
  const result = await subscribe(channel);
  assert.equal(result.status, "SUBSCRIBED", `subscribe: ${JSON.stringify(result)}`);
}

Deno.test("@supabase/realtime-js against Switchboard", async (t) => {
  const server = await startServer({});
  const clients: RealtimeClient[] = [];
  const open = (params: Record<string, string> = {}) => {
    const c = client(server, params);
    clients.push(c);
    return c;
  };
  try {
    await t.step("broadcast reaches the others, not the sender; ack replies", async () => {
      const ann = open({ user_id: "ann" }).channel("room:1", {
        config: { broadcast: { ack: true } },
      });
      const bob = open({ user_id: "bob" }).channel("room:1");
      const annGot: unknown[] = [];
      const bobGot: unknown[] = [];
      ann.on("broadcast", { event: "cursor" }, (m) => annGot.push(m));
      bob.on("broadcast", { event: "cursor" }, (m) => bobGot.push(m));
      bob.on("broadcast", { event: "other" }, (m) => bobGot.push(m));
      await subscribed(ann);
      await subscribed(bob);
      // With ack, send() resolves "ok" only on the server's reply ("timed out" otherwise).
      assert.equal(
        await ann.send({ type: "broadcast", event: "cursor", payload: { x: 1 } }, {
          timeout: 2000,
        }),
        "ok",
      );
      await waitFor(() => bobGot.length === 1, "bob's broadcast");
      assert.deepEqual(bobGot[0], { type: "broadcast", event: "cursor", payload: { x: 1 } });
      await delay(100);
      assert.equal(annGot.length, 0, "self is false by default: no echo");
    });

    await t.step("self: true echoes to the sender", async () => {
      const me = open({ user_id: "cy" }).channel("room:self", {
        config: { broadcast: { self: true, ack: true } },
      });
      const got: unknown[] = [];
      me.on("broadcast", { event: "ping" }, (m) => got.push(m));
      await subscribed(me);
      assert.equal(await me.send({ type: "broadcast", event: "ping", payload: { n: 1 } }), "ok");
      await waitFor(() => got.length === 1, "the echo");
      assert.deepEqual(got[0], { type: "broadcast", event: "ping", payload: { n: 1 } });
    });

    await t.step("a binary payload travels as bytes both ways", async () => {
      const sender = open({ user_id: "dee" }).channel("room:bin", {
        config: { broadcast: { ack: true } },
      });
      const receiver = open({ user_id: "eve" }).channel("room:bin");
      const got: { payload: unknown }[] = [];
      receiver.on(
        "broadcast",
        { event: "blob" },
        (m) => got.push(m as unknown as { payload: unknown }),
      );
      await subscribed(sender);
      await subscribed(receiver);
      const bytes = new Uint8Array([0, 1, 2, 254, 255]).buffer;
      assert.equal(await sender.send({ type: "broadcast", event: "blob", payload: bytes }), "ok");
      await waitFor(() => got.length === 1, "the binary broadcast");
      assert.ok(got[0].payload instanceof ArrayBuffer, "the payload arrives as an ArrayBuffer");
      assert.deepEqual([...new Uint8Array(got[0].payload as ArrayBuffer)], [0, 1, 2, 254, 255]);
    });

    await t.step("presence is keyed by the client's key; untrack leaves", async () => {
      const watcher = open({ user_id: "w" }).channel("room:presence");
      const tracker = open({ user_id: "t" }).channel("room:presence", {
        config: { presence: { key: "tracker-key" } },
      });
      const passive = open({ user_id: "p" }).channel("room:presence");
      const joins: string[] = [];
      const leaves: string[] = [];
      watcher.on("presence", { event: "join" }, ({ key }) => joins.push(key));
      watcher.on("presence", { event: "leave" }, ({ key }) => leaves.push(key));
      await subscribed(watcher);
      await subscribed(tracker);
      await subscribed(passive);
      assert.equal(await tracker.track({ status: "online" }), "ok");
      await waitFor(() => joins.includes("tracker-key"), "the join of tracker-key");
      const state = watcher.presenceState() as Record<string, Record<string, unknown>[]>;
      assert.deepEqual(Object.keys(state), ["tracker-key"]);
      assert.equal(state["tracker-key"][0].status, "online");
      assert.equal(typeof state["tracker-key"][0].presence_ref, "string");
      // Tracking again updates the meta in place (no leave of the key).
      assert.equal(await tracker.track({ status: "away" }), "ok");
      await waitFor(
        () =>
          (watcher.presenceState() as Record<string, { status: string }[]>)["tracker-key"]
            ?.[0]?.status === "away",
        "the updated meta",
      );
      // A client with an empty key is tracked under a key of its own.
      assert.equal(await watcher.track({ status: "watching" }), "ok");
      await waitFor(() => joins.length === 2, "the watcher's own join");
      assert.notEqual(joins[1], "");
      assert.equal(await tracker.untrack(), "ok");
      await waitFor(() => leaves.includes("tracker-key"), "the leave of tracker-key");
      // No presence listener and presence not enabled: no presence events reach it.
      assert.deepEqual(passive.presenceState(), {});
    });

    await t.step("a join asking for postgres_changes is refused saying so", async () => {
      const channel = open({ user_id: "pg" }).channel("room:pg").on(
        "postgres_changes",
        { event: "*", schema: "public" },
        () => {},
      );
      const result = await subscribe(channel);
      assert.equal(result.status, "CHANNEL_ERROR");
      assert.match(result.error ?? "", /postgres_changes are not served/);
      await channel.unsubscribe();
    });

    await t.step("REST: send() before subscribing and httpSend() (JSON and bytes)", async () => {
      const rest = open({ user_id: "rest" });
      const receiver = open({ user_id: "rcv" }).channel("room:rest");
      const got: { event: string; payload: unknown }[] = [];
      receiver.on("broadcast", { event: "*" }, (m) => got.push(m as unknown as typeof got[number]));
      await subscribed(receiver);
      const sender = rest.channel("room:rest");
      // Not subscribed: send() falls back to POST /api/broadcast {messages: [...]}.
      const warn = console.warn;
      console.warn = () => {};
      try {
        assert.equal(
          await sender.send({ type: "broadcast", event: "fallback", payload: { a: 1 } }),
          "ok",
        );
      } finally {
        console.warn = warn;
      }
      assert.deepEqual(await sender.httpSend("http", { b: 2 }), { success: true });
      assert.deepEqual(
        await sender.httpSend("bytes", new Uint8Array([7, 8, 9])),
        { success: true },
      );
      await waitFor(() => got.length === 3, "three REST broadcasts");
      assert.deepEqual(got.slice(0, 2), [
        { type: "broadcast", event: "fallback", payload: { a: 1 } },
        { type: "broadcast", event: "http", payload: { b: 2 } },
      ]);
      assert.equal(got[2].event, "bytes");
      assert.deepEqual([...new Uint8Array(got[2].payload as ArrayBuffer)], [7, 8, 9]);
      await rest.removeChannel(sender);
    });
  } finally {
    await Promise.all(clients.map((c) => c.disconnect()));
    await server.stop();
  }
});

Deno.test("@supabase/realtime-js with SOCKET_SECRET and API_TOKEN", async (t) => {
  const secret = "a-test-secret-that-is-long-enough-0123456789";
  const server = await startServer({ SOCKET_SECRET: secret, API_TOKEN: "api-token-xyz" });
  const clients: RealtimeClient[] = [];
  const token = (sub: string, scope?: string[]) =>
    signToken(secret, { sub, exp: nowSeconds() + 600, ...(scope ? { scope } : {}) });
  const open = (params: Record<string, string>) => {
    const c = client(server, params);
    clients.push(c);
    return c;
  };
  try {
    await t.step("the join's access_token must verify and be the same user's", async () => {
      const ok = open({ token: await token("ann") });
      await ok.setAuth(await token("ann"));
      await subscribed(ok.channel("room:auth"));
      const forged = open({ token: await token("bob") });
      await forged.setAuth(`${await token("bob")}x`);
      const refused = await subscribe(forged.channel("room:auth"));
      assert.equal(refused.status, "CHANNEL_ERROR");
      assert.match(refused.error ?? "", /bad signature/);
      const other = open({ token: await token("cy") });
      await other.setAuth(await token("dee"));
      const otherUser = await subscribe(other.channel("room:auth"));
      assert.equal(otherUser.status, "CHANNEL_ERROR");
      assert.match(otherUser.error ?? "", /another user/);
    });

    await t.step("without a connect token, the join's access_token proves the user", async () => {
      const anonymous = open({});
      const refused = await subscribe(anonymous.channel("room:anon"));
      assert.equal(refused.status, "CHANNEL_ERROR");
      assert.match(refused.error ?? "", /unauthorized/);
      const user = open({});
      await user.setAuth(await token("fay"));
      await subscribed(user.channel("room:anon"));
      const scoped = open({});
      await scoped.setAuth(await token("gus", ["realtime:room:a"]));
      const outside = await subscribe(scoped.channel("room:anon"));
      assert.equal(outside.status, "CHANNEL_ERROR");
      assert.match(outside.error ?? "", /may not use/);
    });

    await t.step("an access_token push refreshes; a bad one closes the channel", async () => {
      const c = open({ token: await token("eve") });
      const channel = c.channel("room:refresh");
      const statuses: Status[] = [];
      const system: unknown[] = [];
      channel.on("system", {}, (m) => system.push(m));
      channel.subscribe((status: Status) => void statuses.push(status));
      await waitFor(() => statuses.includes("SUBSCRIBED"), "the subscription");
      await c.setAuth(await token("eve"));
      await delay(150);
      assert.equal(channel.state, "joined", "a valid refresh keeps the channel");
      await c.setAuth("not-a-token");
      await waitFor(() => statuses.includes("CLOSED"), "the channel closed by the server");
      assert.equal((system[0] as { status: string }).status, "error");
      assert.match((system[0] as { message: string }).message, /token malformed: not a JWT/);
    });

    await t.step("REST needs API_TOKEN or a user token for realtime topics", async () => {
      const anon = open({ token: await token("rest") });
      const noToken = anon.channel("room:rest");
      await assert.rejects(noToken.httpSend("e", { a: 1 }), /missing or wrong token/);
      await anon.setAuth(await token("rest"));
      assert.deepEqual(await anon.channel("room:rest").httpSend("e", { a: 1 }), {
        success: true,
      });
      const scoped = open({ token: await token("scoped", ["realtime:room:a"]) });
      await scoped.setAuth(await token("scoped", ["realtime:room:a"]));
      assert.deepEqual(await scoped.channel("room:a").httpSend("e", {}), { success: true });
      await assert.rejects(scoped.channel("room:b").httpSend("e", {}), /may not broadcast/);
      // The API token as the apikey (a server's client) may broadcast anywhere.
      const admin = open({ apikey: "api-token-xyz", token: await token("server") });
      assert.deepEqual(await admin.channel("room:b").httpSend("e", {}), { success: true });
      // A user token does not open the generic API.
      const res = await fetch(`${server.url}/api/broadcast`, {
        method: "POST",
        headers: { authorization: `Bearer ${await token("rest")}` },
        body: JSON.stringify({ topic: "status:x", event: "status", payload: {} }),
      });
      assert.equal(res.status, 401);
      await res.body?.cancel();
    });
  } finally {
    await Promise.all(clients.map((c) => c.disconnect()));
    await server.stop();
  }
});

Deno.test("@supabase/realtime-js: a refreshed access_token outlives the first one", async () => {
  // No leeway and a fast sweep (a quarter of the heartbeat timeout), so expiry shows in seconds;
  // the clients heartbeat often enough not to count as idle.
  const secret = "a-test-secret-that-is-long-enough-0123456789";
  const server = await startServer({
    SOCKET_SECRET: secret,
    TOKEN_LEEWAY_SECONDS: "0",
    HEARTBEAT_TIMEOUT_MS: "2000",
  });
  const clients: RealtimeClient[] = [];
  try {
    const shortLived = () => signToken(secret, { sub: "ann", exp: nowSeconds() + 2 });
    const open = () => {
      const c = new RealtimeClient(server.socketUrl, {
        params: { apikey: "public-anon-key" },
        heartbeatIntervalMs: 500,
        logger: () => {},
      });
      clients.push(c);
      return c;
    };
    const stale = open();
    const fresh = open();
    await stale.setAuth(await shortLived());
    await fresh.setAuth(await shortLived());
    const staleChannel = stale.channel("room:exp");
    const freshChannel = fresh.channel("room:exp", { config: { broadcast: { ack: true } } });
    await subscribed(staleChannel);
    await subscribed(freshChannel);
    // An access_token push with a later expiry: the session's expiry moves with it.
    await fresh.setAuth(await signToken(secret, { sub: "ann", exp: nowSeconds() + 300 }));
    await waitFor(() => staleChannel.state !== "joined", "the stale session ended", 8_000);
    assert.equal(freshChannel.state, "joined");
    assert.equal(
      await freshChannel.send({ type: "broadcast", event: "still", payload: {} }, {
        timeout: 2000,
      }),
      "ok",
    );
  } finally {
    await Promise.all(clients.map((c) => c.disconnect()));
    await server.stop();
  }
});

Deno.test("@supabase/realtime-js across two nodes through Redis", async (t) => {
  const redis = await startRedis();
  const bridge = await startBridge({ redisUrl: redis.url, token: "rt-token" });
  const env = (id: string) => ({
    UPSTASH_REDIS_REST_URL: bridge.url,
    UPSTASH_REDIS_REST_TOKEN: "rt-token",
    NODE_ID: id,
  });
  const [a, b] = await Promise.all([startServer(env("rt-a")), startServer(env("rt-b"))]);
  const clients: RealtimeClient[] = [];
  try {
    // A node listens before its bus subscription is up: what A publishes before then never
    // reaches B's clients.
    await waitForCluster([a, b]);
    await t.step("JSON and binary broadcasts and presence reach the other node", async () => {
      const onA = client(a, { user_id: "ann" });
      const onB = client(b, { user_id: "bob" });
      clients.push(onA, onB);
      const sender = onA.channel("room:x", { config: { broadcast: { ack: true } } });
      const receiver = onB.channel("room:x");
      const got: { event: string; payload: unknown }[] = [];
      const joins: string[] = [];
      receiver.on("broadcast", { event: "*" }, (m) => got.push(m as unknown as typeof got[0]));
      receiver.on("presence", { event: "join" }, ({ key }) => joins.push(key));
      await subscribed(sender);
      await subscribed(receiver);
      assert.equal(await sender.send({ type: "broadcast", event: "j", payload: { n: 1 } }), "ok");
      const bytes = new Uint8Array([5, 4, 3]).buffer;
      assert.equal(await sender.send({ type: "broadcast", event: "b", payload: bytes }), "ok");
      await waitFor(() => got.length === 2, "both broadcasts on the other node", 10_000);
      assert.deepEqual(got[0], { type: "broadcast", event: "j", payload: { n: 1 } });
      assert.equal(got[1].event, "b");
      assert.deepEqual([...new Uint8Array(got[1].payload as ArrayBuffer)], [5, 4, 3]);
      assert.equal(await sender.track({ here: true }), "ok");
      await waitFor(() => joins.length === 1, "the presence join on the other node", 10_000);
    });
  } finally {
    await Promise.all(clients.map((c) => c.disconnect()));
    await Promise.all([a.stop(), b.stop()]);
    await bridge.stop();
    await redis.stop();
  }
});
