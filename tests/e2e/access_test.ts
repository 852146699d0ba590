/**
 * Access, against the real server with `SOCKET_SECRET` and `API_TOKEN` set: standard JWTs
 * (minted here with Hono's JWT helper, as a backend would with any JWT library, and with
 * `deno task token`), every read path asking the channel like a join does, public status
 * pages without a token, sessions ended when their token expires (the official client
 * reconnecting with fresh params), reserved and CR/LF event names, the bearer scheme's case,
 * the payload depth cap, presence keys named like `Object.prototype` members, and the rate
 * limit of `heartbeat` frames on channel topics.
 */
import assert from "node:assert/strict";
import { sign, verify } from "hono/jwt";
import { connectSocket, disconnect, join, Socket } from "../support/phoenix.ts";
import { isReply, openRaw, replyOf, upgradeOutcome } from "../support/raw_ws.ts";
import { startServer } from "../support/server.ts";
import { openSse } from "../support/sse.ts";
import { delay, waitFor } from "../support/wait.ts";

const SECRET = "access-secret-0123456789";
const API_TOKEN = "api-token-for-tests";
const now = () => Math.floor(Date.now() / 1000);

/** A JWT as any backend mints it: HS256 over the claims with the shared secret. */
function jwt(claims: Record<string, unknown>, secret = SECRET): Promise<string> {
  return sign({ exp: now() + 300, ...claims }, secret, "HS256");
}

function b64url(value: unknown): string {
  return btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

async function publish(url: string, body: unknown, auth = `Bearer ${API_TOKEN}`) {
  const res = await fetch(`${url}/api/broadcast`, {
    method: "POST",
    headers: { authorization: auth, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function getJson(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

/** One long-poll request with the Phoenix client's envelope. */
async function longPoll(url: string, init: RequestInit = {}) {
  const res = await fetch(url, init);
  return await res.json() as { status: number; token?: string; messages?: string[] };
}

Deno.test("standard JWTs: HS256 minted by any library; alg none, other algorithms, old format refused", async (t) => {
  const server = await startServer({ SOCKET_SECRET: SECRET, API_TOKEN });
  const ws = `${server.socketUrl}/websocket?vsn=2.0.0`;
  const status = (token: string) => upgradeOutcome(`${ws}&token=${encodeURIComponent(token)}`);
  try {
    await t.step("a HS256 JWT connects; its sub is the user", async () => {
      const token = await jwt({ sub: "ann", iat: now() });
      assert.equal(await status(token), "accepted");
      const socket = await connectSocket(server.socketUrl, { token, user_id: "mallory" });
      await join(socket.channel("record:jwt", { name: "Ann" }));
      const list = await getJson(`${server.url}/api/presence/record:jwt`, {
        authorization: `Bearer ${API_TOKEN}`,
      });
      assert.deepEqual(Object.keys(list.body.presences), ["ann"]);
      await disconnect(socket);
    });

    await t.step(
      "alg none, HS512, wrong secret, expired, not yet valid: refused, saying why",
      async () => {
        const [, payload] = (await jwt({ sub: "root" })).split(".");
        const none = `${b64url({ alg: "none", typ: "JWT" })}.${payload}.`;
        const hs512 = await sign({ sub: "root", exp: now() + 60 }, SECRET, "HS512");
        const forged = await jwt({ sub: "root" }, "another-secret-0123456789");
        const expired = await jwt({ sub: "ann", exp: now() - 120 });
        const early = await jwt({ sub: "ann", nbf: now() + 600 });
        const noExp = await sign({ sub: "ann" }, SECRET, "HS256");
        const expected: [string, string][] = [
          [none, "algorithm_not_allowed"],
          [hs512, "algorithm_not_allowed"],
          [forged, "bad_signature"],
          [expired, "token_expired"],
          [early, "token_not_yet_valid"],
          [noExp, "token_malformed"],
          ["garbage", "token_malformed"],
        ];
        for (const [token, reason] of expected) assert.equal(await status(token), reason, token);
        const refused = await fetch(`${server.url}/events?topic=status:a&token=${none}`);
        assert.equal(refused.status, 403);
        assert.deepEqual(await refused.json(), {
          error: 'token algorithm "none" not allowed: sign with HS256',
          reason: "algorithm_not_allowed",
        });
      },
    );

    await t.step("the old <payload>.<signature> format is refused", async () => {
      const body = b64url({ sub: "ann", exp: now() + 60 });
      const key = await crypto.subtle.importKey(
        "raw",
        new TextEncoder().encode(SECRET),
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign"],
      );
      const mac = new Uint8Array(
        await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)),
      );
      const signature = btoa(String.fromCharCode(...mac)).replace(/=+$/, "")
        .replace(/\+/g, "-").replace(/\//g, "_");
      const old = `${body}.${signature}`;
      assert.equal(await status(old), "token_malformed");
    });

    await t.step("scope as a claim: array or space-separated string", async () => {
      for (const scope of [["record:7"], "record:7 status:*"]) {
        const token = await jwt({ sub: "bob", scope });
        const socket = await connectSocket(server.socketUrl, { token });
        await join(socket.channel("record:7", {}));
        const other = socket.channel("record:8", {});
        await assert.rejects(join(other), /unauthorized/);
        other.leave();
        await disconnect(socket);
      }
    });

    await t.step("deno task token prints a HS256 JWT that any library verifies", async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["task", "-q", "token", "carol", "--ttl", "120", "--scope", "record:1"],
        cwd: new URL("../../", import.meta.url),
        env: { SOCKET_SECRET: SECRET },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const token = new TextDecoder().decode(out.stdout).trim();
      const header = JSON.parse(atob(token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/")));
      assert.equal(header.alg, "HS256");
      const claims = await verify(token, SECRET, "HS256");
      assert.equal(claims.sub, "carol");
      assert.deepEqual(claims.scope, ["record:1"]);
      assert.ok(Number(claims.exp) > now() + 100);
      assert.equal(await status(token), "accepted");
    });
  } finally {
    await server.stop();
  }
});

Deno.test("every read asks the channel: polling, presence API, pages, SSE, long-poll, joins", async (t) => {
  const server = await startServer({ SOCKET_SECRET: SECRET, API_TOKEN });
  const api = { authorization: `Bearer ${API_TOKEN}` };
  try {
    const ann = await jwt({ sub: "ann", scope: ["record:99"] });
    const other = await jwt({ sub: "eve", scope: ["record:1"] });
    const socket = await connectSocket(server.socketUrl, { token: ann });
    const channel = socket.channel("record:99", { name: "Ann Secret" });
    await join(channel);
    channel.push("patch", { text: "the confidential patch" });
    await waitFor(
      async () => (await getJson(`${server.url}/api/topics/record:99`, api)).body.event,
      "the patch is the topic's last message",
    );

    await t.step(
      "GET /api/topics: no token 401, other scope 403, API token and own 200",
      async () => {
        const url = `${server.url}/api/topics/record:99`;
        const none = await getJson(url);
        assert.equal(none.status, 401);
        assert.match(none.body.error, /needs a token/);
        assert.equal(none.body.payload, undefined);
        assert.equal((await getJson(url, { authorization: `Bearer ${other}` })).status, 403);
        const byApi = await getJson(url, api);
        assert.equal(byApi.status, 200);
        assert.deepEqual(byApi.body.payload, { text: "the confidential patch" });
        assert.equal(byApi.headers.get("cache-control")?.startsWith("private"), true);
        assert.equal((await getJson(`${url}?token=${ann}`)).status, 200);
        assert.equal((await getJson(url, { authorization: `bearer ${ann}` })).status, 200);
      },
    );

    await t.step("GET /api/presence: no token 401, other scope 403, API token 200", async () => {
      const url = `${server.url}/api/presence/record:99`;
      assert.equal((await getJson(url)).status, 401);
      assert.equal((await getJson(`${url}?token=${other}`)).status, 403);
      const byApi = await getJson(url, api);
      assert.equal(byApi.status, 200);
      assert.deepEqual(Object.keys(byApi.body.presences), ["ann"]);
    });

    await t.step(
      "the record page: no token 401 without the names; own token renders them",
      async () => {
        const none = await fetch(`${server.url}/records/99`);
        const html = await none.text();
        assert.equal(none.status, 401);
        assert.ok(!html.includes("Ann Secret"), "no names on a refused page");
        const wrong = await fetch(`${server.url}/records/99?token=${other}`);
        await wrong.body?.cancel();
        assert.equal(wrong.status, 403);
        const own = await fetch(`${server.url}/records/99?token=${ann}`);
        assert.equal(own.status, 200);
        assert.ok((await own.text()).includes("Ann Secret"));
      },
    );

    await t.step("SSE: no token 401, other scope 403, own token streams", async () => {
      const url = `${server.url}/events?topic=record:99`;
      const none = await fetch(url);
      assert.equal(none.status, 401);
      assert.match((await none.json()).error, /needs a token/);
      const wrong = await fetch(`${url}&token=${other}`);
      assert.equal(wrong.status, 403);
      await wrong.body?.cancel();
      const sse = await openSse(`${url}&token=${ann}`);
      assert.equal(sse.response.status, 200);
      await sse.next((e) => e.event === "presence_state");
      await sse.close();
    });

    await t.step("WebSocket and long-poll without a token: record joins refused", async () => {
      const raw = await openRaw(`${server.socketUrl}/websocket?vsn=2.0.0`);
      raw.push("1", "1", "record:99", "phx_join", {});
      const reply = replyOf(await raw.next(isReply("1")));
      assert.equal(reply.status, "error");
      assert.equal(reply.response.reason, "unauthorized");
      assert.ok(!raw.log.some((f) => f.event === "presence_state"));
      await raw.close();

      const base = `${server.url}/socket/longpoll?vsn=2.0.0`;
      const opened = await longPoll(base);
      assert.equal(opened.status, 410);
      const sent = await longPoll(`${base}&token=${opened.token}`, {
        method: "POST",
        headers: { "content-type": "application/x-ndjson" },
        body: '["1","1","record:99","phx_join",{}]',
      });
      assert.equal(sent.status, 200);
      const polled = await longPoll(`${base}&token=${opened.token}`);
      const frames = (polled.messages ?? []).map((m) => JSON.parse(m));
      const joinReply = frames.find((f) => f[1] === "1");
      assert.equal(joinReply?.[4].status, "error");
      assert.equal(joinReply?.[4].response.reason, "unauthorized");
    });
    await disconnect(socket);
  } finally {
    await server.stop();
  }
});

Deno.test("a public status page needs no token while SOCKET_SECRET is set", async (t) => {
  const server = await startServer({ SOCKET_SECRET: SECRET, API_TOKEN });
  try {
    assert.equal(
      (await publish(server.url, {
        topic: "status:acme",
        event: "status",
        payload: { state: "degraded", message: "Slow EU API" },
      })).status,
      202,
    );

    await t.step(
      "SSE streams, polling answers (publicly cacheable), the page renders",
      async () => {
        const sse = await openSse(`${server.url}/events?topic=status:acme`);
        assert.equal(sse.response.status, 200);
        const joined = await sse.next((e) => e.event === "joined");
        assert.equal(joined.json?.payload.status && "ok", "ok");
        await sse.close();
        const polled = await getJson(`${server.url}/api/topics/status:acme`);
        assert.equal(polled.status, 200);
        assert.equal(polled.body.payload.message, "Slow EU API");
        assert.equal(polled.headers.get("cache-control")?.startsWith("public"), true);
        const page = await fetch(`${server.url}/status/acme`);
        assert.equal(page.status, 200);
        assert.ok((await page.text()).includes("Slow EU API"));
      },
    );

    await t.step("WebSocket and long-poll join it anonymously", async () => {
      const socket = await connectSocket(server.socketUrl);
      const reply = await join(socket.channel("status:acme"));
      assert.equal((reply.status as Record<string, unknown>).message, "Slow EU API");
      await disconnect(socket);

      const base = `${server.url}/socket/longpoll?vsn=2.0.0`;
      const opened = await longPoll(base);
      assert.equal(opened.status, 410);
      await longPoll(`${base}&token=${opened.token}`, {
        method: "POST",
        body: '["1","1","status:acme","phx_join",{}]',
      });
      const polled = await longPoll(`${base}&token=${opened.token}`);
      const reply2 = (polled.messages ?? []).map((m) => JSON.parse(m)).find((f) => f[1] === "1");
      assert.equal(reply2?.[4].status, "ok");
    });
  } finally {
    await server.stop();
  }
});

Deno.test("sessions end when their token expires, and the Phoenix client reconnects with fresh params", async (t) => {
  // No leeway and a fast sweep (a quarter of the heartbeat timeout), so expiry shows in seconds.
  const server = await startServer({
    SOCKET_SECRET: SECRET,
    TOKEN_LEEWAY_SECONDS: "0",
    HEARTBEAT_TIMEOUT_MS: "2000",
  });
  try {
    await t.step("WebSocket: closed with 4001; params() gives the new token", async () => {
      let token = await jwt({ sub: "ann", exp: now() + 2 });
      const closes: { code: number; reason: string }[] = [];
      const socket = new Socket(server.socketUrl, {
        params: () => ({ token }),
        // Silent between the join and the expiry: Deno drops a server socket at once when a
        // frame arrives after close(), and its close frame (4001) may not have left yet; the
        // client then sees a bare EOF. Not idle either: the token (≤ 2 s) expires no later
        // than HEARTBEAT_TIMEOUT_MS after the join, and the sweep checks expiry first.
        heartbeatIntervalMs: 30_000,
        reconnectAfterMs: () => 50,
        rejoinAfterMs: () => 50,
      });
      socket.onClose((e: { code: number; reason: string }) => closes.push(e));
      socket.connect();
      const channel = socket.channel("record:exp", { name: "Ann" });
      let joins = 0;
      channel.join().receive("ok", () => joins++);
      await waitFor(() => joins === 1, "first join");
      token = await jwt({ sub: "ann", exp: now() + 300 });
      await waitFor(() => closes.length > 0, "closed when the token expired", 8_000);
      assert.equal(closes[0].code, 4001);
      assert.match(closes[0].reason, /token expired/);
      await waitFor(() => joins === 2, "rejoined after reconnecting with the fresh token", 8_000);
      await new Promise<void>((resolve) => socket.disconnect(() => resolve(), 1000, "done"));
    });

    await t.step("SSE: the stream ends", async () => {
      const token = await jwt({ sub: "ann", exp: now() + 2 });
      const sse = await openSse(`${server.url}/events?topic=record:exp-sse&token=${token}`);
      assert.equal(sse.response.status, 200);
      let ended = false;
      sse.ended.then(() => ended = true);
      await waitFor(() => ended, "the SSE stream ended", 8_000);
      const again = await fetch(`${server.url}/events?topic=record:exp-sse&token=${token}`);
      assert.equal(again.status, 403, "and the expired token cannot reconnect");
      await again.body?.cancel();
    });

    await t.step("long-poll: the session ends (410), its presence leaves", async () => {
      const token = await jwt({ sub: "lp-user", exp: now() + 2 });
      const base = `${server.url}/socket/longpoll?vsn=2.0.0`;
      const opened = await longPoll(base, { headers: { "x-phoenix-authtoken": token } });
      assert.equal(opened.status, 410);
      await longPoll(`${base}&token=${opened.token}`, {
        method: "POST",
        body: '["1","1","record:exp-lp","phx_join",{}]',
      });
      const deadline = Date.now() + 8_000;
      let last = 0;
      while (Date.now() < deadline) {
        last = (await longPoll(`${base}&token=${opened.token}`)).status;
        if (last === 410) break;
      }
      assert.equal(last, 410, "the session is gone");
      // Its leave is held for PRESENCE_LEAVE_GRACE_MS (a client back with a fresh token within
      // it would stay present for the others), then goes out.
      const reader = await jwt({ sub: "x" });
      await waitFor(async () => {
        const presence = await getJson(`${server.url}/api/presence/record:exp-lp?token=${reader}`);
        return Object.keys(presence.body.presences).length === 0;
      }, "the presence to leave after the grace");
    });
  } finally {
    await server.stop();
  }
});

Deno.test("smaller holes: reserved and CR/LF events, bearer case, payload depth, heartbeat floods", async (t) => {
  const server = await startServer({ API_TOKEN });
  try {
    await t.step("the API refuses control events and CR/LF in event names", async () => {
      for (const event of ["reset", "joined", "phx_reply", "presence_diff", "heartbeat"]) {
        const res = await publish(server.url, { topic: "status:x", event, payload: {} });
        assert.equal(res.status, 400, event);
        assert.match(res.body.error, /event: is reserved/);
      }
      const forged = "status\nid: 999\nevent: reset";
      const res = await publish(server.url, { topic: "status:x", event: forged, payload: {} });
      assert.equal(res.status, 400);
      assert.match(res.body.error, /event: must not contain control characters/);
    });

    await t.step("Authorization schemes are case-insensitive", async () => {
      for (const scheme of ["bearer", "BEARER", "Bearer"]) {
        const res = await publish(server.url, {
          topic: "status:x",
          event: "status",
          payload: {},
        }, `${scheme} ${API_TOKEN}`);
        assert.equal(res.status, 202, scheme);
      }
      const wrong = await publish(server.url, { topic: "status:x", event: "status" }, "bearer x");
      assert.equal(wrong.status, 401);
    });

    await t.step("a payload nested 520k deep is refused; the topic stays readable", async () => {
      const depth = 520_000;
      const body = `{"topic":"status:deep","event":"status","payload":{"a":${"[".repeat(depth)}${
        "]".repeat(depth)
      }}}`;
      const res = await fetch(`${server.url}/api/broadcast`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_TOKEN}` },
        body,
      });
      assert.equal(res.status, 400);
      assert.match((await res.json()).error, /payload: nests deeper than 32 levels/);
      const nested = { a: [[[[[[[[[[{ b: [[[[[[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]]]]]] }]]]]]]]]]] };
      const ok = await publish(server.url, {
        topic: "status:deep",
        event: "status",
        payload: nested,
      });
      assert.equal(ok.status, 202, "32 levels are fine");
      const read = await getJson(`${server.url}/api/topics/status:deep`);
      assert.equal(read.status, 200);
      assert.deepEqual(read.body.payload, nested);
    });

    await t.step(
      "5,000 heartbeat frames on a channel topic hit the rate limit and close",
      async () => {
        const raw = await openRaw(`${server.socketUrl}/websocket?vsn=2.0.0&user_id=hb`);
        raw.push("1", "1", "record:hb", "phx_join", {});
        await raw.next(isReply("1"));
        for (let i = 0; i < 5000; i++) raw.push("1", String(i + 2), "record:hb", "heartbeat", {});
        // Bounded: without the limit the socket would only close at the idle timeout (1001).
        const closed = await Promise.race([
          raw.closed,
          delay(10_000).then(() => ({ code: -1, reason: "still open after 10 s" })),
        ]);
        // The server closes with 1008; a client still writing may see the close as abnormal.
        assert.ok([1008, 1006, 0].includes(closed.code), `closed as a flood (${closed.code})`);
        const metrics = await (await fetch(`${server.url}/metrics`)).text();
        assert.match(metrics, /switchboard_flood_closed_total 1/);
      },
    );

    await t.step("the phoenix heartbeat stays free of the limit", async () => {
      const raw = await openRaw(`${server.socketUrl}/websocket?vsn=2.0.0&user_id=hb2`);
      for (let i = 0; i < 300; i++) raw.push(null, String(i), "phoenix", "heartbeat", {});
      const last = await raw.next(isReply("299"));
      assert.equal(replyOf(last).status, "ok");
      assert.ok(!raw.log.some((f) => JSON.stringify(f.payload).includes("rate_limited")));
      await raw.close();
    });
  } finally {
    await server.stop();
  }
});

Deno.test("presence keys named like Object.prototype members behave like any key", async () => {
  const server = await startServer();
  const keys = ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"];
  try {
    const observer = await openRaw(`${server.socketUrl}/websocket?vsn=2.0.0&user_id=observer`);
    observer.push("1", "1", "record:proto", "phx_join", {});
    await observer.next(isReply("1"));
    const sockets = [];
    for (const key of keys) {
      const raw = await openRaw(
        `${server.socketUrl}/websocket?vsn=2.0.0&user_id=${encodeURIComponent(key)}`,
      );
      raw.push("1", "1", "record:proto", "phx_join", { name: `N-${key}` });
      assert.equal(replyOf(await raw.next(isReply("1"))).status, "ok", key);
      await raw.next((f) => f.event === "presence_state");
      // The state is a snapshot of the batch window; the joiner's own join comes in its diff.
      await raw.next((f) =>
        f.event === "presence_diff" &&
        Object.hasOwn((f.payload as { joins: object }).joins, key)
      );
      sockets.push(raw);
    }
    const listed = await getJson(`${server.url}/api/presence/record:proto`);
    assert.equal(listed.status, 200);
    assert.deepEqual(Object.keys(listed.body.presences).sort(), [...keys, "observer"].sort());
    for (const key of keys) {
      assert.equal(listed.body.presences[key].metas[0].name, `N-${key}`);
    }
    const page = await fetch(`${server.url}/records/proto`);
    assert.equal(page.status, 200);
    assert.ok((await page.text()).includes("N-constructor"));
    for (const raw of sockets) await raw.close();
    await waitFor(async () => {
      const now = await getJson(`${server.url}/api/presence/record:proto`);
      return now.status === 200 && Object.keys(now.body.presences).join() === "observer";
    }, "every key left: no ghost");
    const leftKeys = () => {
      const left = new Set<string>();
      for (const f of observer.log) {
        if (f.event !== "presence_diff") continue;
        for (const key of Object.keys((f.payload as { leaves: object }).leaves)) left.add(key);
      }
      return [...left].sort().join();
    };
    await waitFor(() => leftKeys() === [...keys].sort().join(), "a leave for each key");
    await observer.close();
  } finally {
    await server.stop();
  }
});
