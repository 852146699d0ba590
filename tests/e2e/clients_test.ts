/**
 * Clients nobody here wrote, pinned in deno.json, against the real server (issue #15): the
 * official phoenix client over the npm `ws` package with `authToken`, ETag revalidation the
 * way proxies rewrite it, the phoenix `LongPoll` transport without Deno's `request.signal`
 * warning, and the npm `eventsource` client resuming with bounded cursors. Cross-origin use
 * from Chromium is in `cross_origin_test.ts`.
 */
import { publishStatus } from "../support/api.ts";
import assert from "node:assert/strict";
import { EventSource } from "eventsource";
import EventSource2 from "eventsource-2";
import { EventSource as EventSource5 } from "eventsource-5";
import { WebSocket as NodeWebSocket } from "ws";
import { LongPoll, Socket } from "phoenix";
import { nowSeconds, signToken } from "../../lib/auth.ts";
import { disconnect, join } from "../support/phoenix.ts";
import { upgradeStatus } from "../support/raw_ws.ts";
import { startServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

const SECRET = "clients-secret-0123456789";

/** Opens a phoenix socket with `options`; resolves once open, rejects on the first error. */
function openSocket(url: string, options: Record<string, unknown>): Promise<Socket> {
  const socket = new Socket(url, { heartbeatIntervalMs: 1000, ...options });
  return new Promise((resolve, reject) => {
    socket.onOpen(() => resolve(socket));
    socket.onError((e: unknown) => {
      socket.disconnect();
      reject(new Error(`socket error: ${String((e as { message?: string })?.message ?? e)}`));
    });
    socket.connect();
  });
}

/** The phoenix client's `authToken` subprotocol for `token`. */
function bearerProtocol(token: string): string {
  return `base64url.bearer.phx.${btoa(token).replace(/=+$/, "")}`;
}

Deno.test("phoenix over the npm ws package with authToken (ws 8)", async (t) => {
  const server = await startServer({ SOCKET_SECRET: SECRET });
  try {
    const token = await signToken(SECRET, { sub: "ann", exp: nowSeconds() + 60 });

    await t.step("connects, joins as the token's subject", async () => {
      const socket = await openSocket(server.socketUrl, {
        transport: NodeWebSocket,
        authToken: token,
        reconnectAfterMs: () => 60_000,
      });
      await join(socket.channel("record:ws-auth", { name: "Ann" }));
      const list = await (await fetch(`${server.url}/api/presence/record:ws-auth`, {
        headers: { authorization: `Bearer ${token}` },
      })).json();
      assert.deepEqual(Object.keys(list.presences), ["ann"]);
      await disconnect(socket);
    });

    await t.step("any spacing around the comma in Sec-WebSocket-Protocol", async () => {
      const bearer = bearerProtocol(token);
      const url = `${server.socketUrl}/websocket?vsn=2.0.0`;
      for (
        const offered of [
          `phoenix,${bearer}`,
          `phoenix , ${bearer}`,
          `${bearer},phoenix`,
          `  phoenix,\t${bearer}  `,
          `phoenix, ${bearer}`,
        ]
      ) {
        const { status, head } = await upgradeStatus(url, { "Sec-WebSocket-Protocol": offered });
        assert.equal(status, 101, `${JSON.stringify(offered)}: ${head}`);
        assert.match(head, /^sec-websocket-protocol: phoenix$/im, JSON.stringify(offered));
      }
      // Without `phoenix` on offer no protocol is answered, and the token still counts.
      const { status, head } = await upgradeStatus(url, { "Sec-WebSocket-Protocol": bearer });
      assert.equal(status, 101);
      assert.doesNotMatch(head, /sec-websocket-protocol/i);
    });

    await t.step("no request failed on the server", () => {
      assert.doesNotMatch(server.output(), /a request failed|protocol list/);
    });
  } finally {
    await server.stop();
  }
});

Deno.test("ETags by weak comparison (RFC 9110), as proxies pass them on", async (t) => {
  const server = await startServer();
  try {
    const conditional = async (path: string, ifNoneMatch?: string) => {
      const headers: Record<string, string> = {};
      if (ifNoneMatch !== undefined) headers["if-none-match"] = ifNoneMatch;
      const res = await fetch(`${server.url}${path}`, { headers });
      await res.body?.cancel();
      return { status: res.status, etag: res.headers.get("etag") ?? "" };
    };
    for (const path of ["/api/topics/status:etag", "/assets/phoenix.js"]) {
      await t.step(`${path}: W/, lists and * get 304; other tags 200`, async () => {
        if (path.startsWith("/api")) {
          await publishStatus(server.url, "status:etag", { state: "ok" });
        }
        const { status, etag } = await conditional(path);
        assert.equal(status, 200);
        assert.match(etag, /^"[^"]+"$/);
        // nginx's gzip and Cloudflare turn "x" into W/"x"; clients send back what they got.
        for (const hit of [etag, `W/${etag}`, `"nope", W/${etag}`, `${etag},"other"`, "*"]) {
          const res = await conditional(path, hit);
          assert.equal(res.status, 304, `If-None-Match: ${hit}`);
          assert.equal(res.etag, etag, "a 304 carries the ETag");
        }
        for (const miss of ['"nope"', 'W/"nope"', `"${etag}"`, ""]) {
          assert.equal((await conditional(path, miss)).status, 200, `If-None-Match: ${miss}`);
        }
      });
    }
  } finally {
    await server.stop();
  }
});

Deno.test("phoenix LongPoll: held polls without the request.signal warning", async (t) => {
  const server = await startServer({ LONGPOLL_TIMEOUT_MS: "5000" });
  try {
    await t.step("the official client joins and receives over held polls", async () => {
      const socket = await openSocket(server.socketUrl, {
        transport: LongPoll,
        params: { user_id: "lp" },
      });
      const channel = socket.channel("status:lp");
      const got: unknown[] = [];
      channel.on("status", (p: unknown) => got.push(p));
      await join(channel);
      await publishStatus(server.url, "status:lp", { state: "held" });
      await waitFor(() => got.length === 1, "the status over a held poll");
      await disconnect(socket);
    });

    await t.step("a poll abandoned mid-hold: the next poll gets what follows", async () => {
      const first = await (await fetch(`${server.url}/socket/longpoll?vsn=2.0.0&user_id=raw&`))
        .json();
      assert.equal(first.status, 410);
      const poll = `${server.url}/socket/longpoll?vsn=2.0.0&user_id=raw&token=${first.token}`;
      const joined = await fetch(poll, {
        method: "POST",
        headers: { "content-type": "application/x-ndjson" },
        body: JSON.stringify(["1", "1", "status:lp-raw", "phx_join", {}]),
      });
      assert.equal((await joined.json()).status, 200);
      const reply = await (await fetch(poll)).json();
      assert.equal(reply.status, 200, "the join reply");
      const abandoned = new AbortController();
      // A held poll's headers arrive at once; its body waits for something to send.
      const held = await fetch(poll, { signal: abandoned.signal });
      abandoned.abort();
      await assert.rejects(held.text());
      // The next poll is held in its turn (its headers are here: it waits), then gets the status.
      const next = await fetch(poll);
      await publishStatus(server.url, "status:lp-raw", { state: "after-abort" });
      const answer = await next.json();
      assert.equal(answer.status, 200);
      assert.equal(answer.messages.length, 1);
      assert.deepEqual(JSON.parse(answer.messages[0]).slice(2), [
        "status:lp-raw",
        "status",
        { state: "after-abort" },
      ]);
    });

    await t.step("the server printed no request.signal deprecation", () => {
      assert.doesNotMatch(server.output(), /request\.signal/);
    });
  } finally {
    await server.stop();
  }
});

/** The streams named in a cursor, over all its topics. */
function streamsOf(cursor: string): string[] {
  return cursor.split("&").flatMap((part) =>
    part.slice(part.indexOf("=") + 1).split(",").slice(1).map((s) => s.split("*")[0])
  );
}

/**
 * A front for node runs that come and go (as on Deno Deploy or Workers): clients keep one URL,
 * the test points it at the current server.
 */
function front(): { url: string; target: string; close(): Promise<void> } {
  const state = { target: "" };
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    async (req) => {
      const url = new URL(req.url);
      try {
        return await fetch(`${state.target}${url.pathname}${url.search}`, {
          method: req.method,
          headers: req.headers,
          body: req.body,
        });
      } catch {
        return new Response("upstream down", { status: 502 });
      }
    },
  );
  return Object.assign(state, {
    url: `http://127.0.0.1:${server.addr.port}`,
    close: () => server.shutdown(),
  });
}

/** What the tests use of an EventSource, whichever package made it. */
interface EventSourceLike {
  readonly readyState: number;
  addEventListener(type: string, listener: (e: MessageEvent) => void): void;
  close(): void;
}

/** A fetch that sends `Last-Event-ID` from the first request on, as after a reconnect. */
function withLastEventId(lastEventId: string): typeof fetch {
  return (input, init) =>
    fetch(input, { ...init, headers: { ...init?.headers, "last-event-id": lastEventId } });
}

/** The npm `eventsource` majors the issue was found with, opened with a `Last-Event-ID`. */
const EVENTSOURCE_CLIENTS: Record<string, (url: string, lastEventId: string) => EventSourceLike> = {
  "eventsource 2.0.2": (url, id) => new EventSource2(url, { headers: { "Last-Event-ID": id } }),
  "eventsource 4.1.1": (url, id) => new EventSource(url, { fetch: withLastEventId(id) }),
  "eventsource 5.1.5": (url, id) => new EventSource5(url, { fetch: withLastEventId(id) }),
};

Deno.test("npm eventsource 2/4/5: bounded ids, unusable Last-Event-ID resets", async (t) => {
  await t.step("across node runs the id names only the streams still in the window", async () => {
    const proxy = front();
    let server = await startServer();
    proxy.target = server.url;
    const seen: { event: string; id: string; reason?: string; run?: number }[] = [];
    const es = new EventSource(`${proxy.url}/events?topic=status:runs`);
    for (const event of ["joined", "status", "reset"]) {
      es.addEventListener(event, (e: MessageEvent) => {
        const { payload } = JSON.parse(e.data);
        seen.push({ event, id: e.lastEventId, reason: payload?.reason, run: payload?.run });
      });
    }
    try {
      const runs = 3;
      await waitFor(() => seen.some((e) => e.event === "joined"), "the stream", 10_000);
      for (let run = 1; run <= runs; run++) {
        await publishStatus(server.url, "status:runs", { run });
        await waitFor(() => seen.at(-1)?.run === run, `run ${run}'s status`);
        const last = seen.at(-1)!;
        assert.equal(streamsOf(last.id).length, 1, `run ${run}: one stream in ${last.id}`);
        if (run === runs) break;
        // The next run takes over; the old one dies: EventSource reconnects with its id.
        const next = await startServer();
        proxy.target = next.url;
        const before = seen.length;
        await server.kill();
        server = next;
        await waitFor(() => seen.slice(before).some((e) => e.event === "reset"), "a reset", 10_000);
        const reset = seen.slice(before).find((e) => e.event === "reset")!;
        assert.equal(reset.reason, "history_window_exceeded", "the old run's stream is gone");
      }
    } finally {
      es.close();
      await server.kill();
      await proxy.close();
    }
  });

  const server = await startServer();
  try {
    await t.step("100 made-up streams never come back in an id", async () => {
      await publishStatus(server.url, "status:madeup", { state: "ok" });
      const fake = Array.from({ length: 100 }, (_, i) => `,fake${i}~abc*${i + 1}`).join("");
      const lastEventId = `status%3Amadeup=${Date.now() - 1000}${fake}`;
      const es = new EventSource(`${server.url}/events?topic=status:madeup`, {
        fetch: withLastEventId(lastEventId),
      });
      const ids: string[] = [];
      let reason = "";
      es.addEventListener("joined", (e: MessageEvent) => ids.push(e.lastEventId));
      es.addEventListener("reset", (e: MessageEvent) => {
        ids.push(e.lastEventId);
        reason = JSON.parse(e.data).payload.reason;
      });
      es.addEventListener("status", (e: MessageEvent) => ids.push(e.lastEventId));
      await waitFor(() => reason !== "", "the reset");
      await publishStatus(server.url, "status:madeup", { state: "later" });
      await waitFor(() => ids.length >= 3, "the live status after the reset");
      es.close();
      assert.equal(reason, "history_window_exceeded");
      for (const id of ids) assert.doesNotMatch(id, /fake/, id);
      assert.equal(streamsOf(ids.at(-1)!).length, 1);
    });

    const unusable = {
      "too long": `status%3Aunusable=1,${"n~a*1,".repeat(3000)}n~a*1`,
      "an older format": "42",
      "not a cursor at all": "%%%",
    };
    for (const [client, open] of Object.entries(EVENTSOURCE_CLIENTS)) {
      for (const [what, lastEventId] of Object.entries(unusable)) {
        await t.step(`${client}, a Last-Event-ID that is ${what}: open, reset, live`, async () => {
          const es = open(`${server.url}/events?topic=status:unusable`, lastEventId);
          const got: { event: string; reason?: string; id: string }[] = [];
          for (const event of ["joined", "reset", "status"]) {
            es.addEventListener(event, (e: MessageEvent) => {
              got.push({ event, reason: JSON.parse(e.data).payload?.reason, id: e.lastEventId });
            });
          }
          await waitFor(() => got.some((e) => e.event === "reset"), `the reset (${what})`);
          await publishStatus(server.url, "status:unusable", { state: what });
          await waitFor(() => got.some((e) => e.event === "status"), "the live status");
          assert.equal(es.readyState, 1, "open");
          es.close();
          assert.deepEqual(got.map((e) => e.event), ["joined", "reset", "status"]);
          assert.equal(got[1].reason, "cursor_unusable");
          for (const e of got) assert.ok(e.id.length < 200, `a fresh id, not ${what}`);
        });
      }
    }
  } finally {
    await server.stop();
  }
});
