/**
 * The HTTP API and operations endpoints, driven with fetch against the real server:
 * `POST /api/broadcast` (auth, validation, size limit, fan-out to WebSocket subscribers),
 * `GET /api/topics/:topic` (ETag / 304), `GET /api/presence/:topic`, `/healthz`, `/metrics`.
 */
import assert from "node:assert/strict";
import { isReply, openRaw, type RawSocket, replyOf } from "../support/raw_ws.ts";
import { type ServerProcess, startServer } from "../support/server.ts";

interface Answer {
  status: number;
  headers: Headers;
  /** Parsed JSON body, or the text when it is not JSON (undefined when empty). */
  body: unknown;
}

/** Fetches and always consumes the body. */
async function request(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = text === "" ? undefined : text;
  try {
    body = JSON.parse(text);
  } catch { /* keep the text */ }
  return { status: res.status, headers: res.headers, body };
}

function post(server: ServerProcess, body: unknown, headers: Record<string, string> = {}) {
  return request(`${server.url}/api/broadcast`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

function errorOf(answer: Answer): string {
  const error = (answer.body as { error?: unknown } | undefined)?.error;
  assert.equal(typeof error, "string", `expected a JSON {error}: ${JSON.stringify(answer.body)}`);
  return error as string;
}

async function subscribe(server: ServerProcess, userId: string, topic: string): Promise<RawSocket> {
  const ws = await openRaw(`${server.socketUrl}/websocket?vsn=2.0.0&user_id=${userId}`);
  ws.push("1", "1", topic, "phx_join", userId.startsWith("ann") ? { name: "Ann" } : {});
  const reply = await ws.next(isReply("1"));
  assert.equal(replyOf(reply).status, "ok", String(reply.raw));
  return ws;
}

/** Steps against a second server, started with the API token and a small body limit. */
async function tokenAndLimitSteps(t: Deno.TestContext): Promise<void> {
  const server = await startServer({ API_TOKEN: "secret", MAX_API_BODY_BYTES: "1000" });
  const message = { topic: "status:x", event: "status", payload: { state: "outage" } };
  try {
    await t.step("a missing token is a 401", async () => {
      const answer = await post(server, message);
      assert.equal(answer.status, 401);
      errorOf(answer);
      assert.match(answer.headers.get("www-authenticate") ?? "", /^Bearer/);
    });

    await t.step("a wrong token is a 401", async () => {
      for (const authorization of ["Bearer wrong", "Bearer secret2", "Basic secret", "secret"]) {
        const answer = await post(server, message, { authorization });
        assert.equal(answer.status, 401, authorization);
      }
    });

    await t.step("the right token is a 202", async () => {
      const answer = await post(server, message, { authorization: "Bearer secret" });
      assert.equal(answer.status, 202);
      assert.deepEqual(answer.body, { accepted: 1 });
    });

    await t.step("the read endpoints stay open", async () => {
      const answer = await request(`${server.url}/api/topics/status:x`);
      assert.equal(answer.status, 200);
      assert.deepEqual((answer.body as Record<string, unknown>).payload, { state: "outage" });
    });

    await t.step("a body over MAX_API_BODY_BYTES is a 413", async () => {
      const big = { ...message, payload: { pad: "x".repeat(1200) } };
      const answer = await post(server, big, { authorization: "Bearer secret" });
      assert.equal(answer.status, 413);
      errorOf(answer);
      // Without a content-length (a streamed body), the limit still holds.
      const bytes = new TextEncoder().encode(JSON.stringify(big));
      const streamed = await request(`${server.url}/api/broadcast`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer secret" },
        body: new ReadableStream({
          start(controller) {
            controller.enqueue(bytes);
            controller.close();
          },
        }),
      });
      assert.equal(streamed.status, 413);
      // Just under the limit is fine.
      const fits = { ...message, payload: { pad: "" } };
      const size = JSON.stringify(fits).length;
      fits.payload.pad = "y".repeat(1000 - size);
      assert.equal(JSON.stringify(fits).length, 1000);
      const ok = await post(server, fits, { authorization: "Bearer secret" });
      assert.equal(ok.status, 202);
    });
  } finally {
    await server.stop();
  }
}

Deno.test("HTTP API and operations endpoints", async (t) => {
  const server = await startServer();
  const sockets: RawSocket[] = [];
  try {
    await t.step("POST /api/broadcast is open when API_TOKEN is unset", async () => {
      const answer = await post(server, { topic: "status:open", event: "status", payload: {} });
      assert.equal(answer.status, 202);
      assert.deepEqual(answer.body, { accepted: 1 });
    });

    await t.step("an array of 3 is accepted and delivered in order to a subscriber", async () => {
      const ws = await subscribe(server, "viewer", "status:x");
      sockets.push(ws);
      const messages = [
        { topic: "status:x", event: "status", payload: { state: "degraded", n: 1 } },
        { topic: "status:x", event: "note", payload: { n: 2, extra: { nested: true } } },
        { topic: "status:x", event: "status", payload: { state: "operational", n: 3 } },
      ];
      const answer = await post(server, messages);
      assert.equal(answer.status, 202);
      assert.deepEqual(answer.body, { accepted: 3 });
      for (const m of messages) {
        const frame = await ws.next((f) => f.topic === "status:x" && f.ref === null);
        assert.deepEqual(frame.json, [null, null, m.topic, m.event, m.payload]);
      }
    });

    await t.step("bad JSON is a 400 mentioning JSON", async () => {
      const answer = await post(server, '{"topic": "status:x", ');
      assert.equal(answer.status, 400);
      assert.match(errorOf(answer), /JSON/);
    });

    await t.step("an empty body is a 400", async () => {
      const answer = await post(server, "");
      assert.equal(answer.status, 400);
      errorOf(answer);
    });

    await t.step("a missing topic is a 400 naming topic", async () => {
      const answer = await post(server, { event: "status", payload: {} });
      assert.equal(answer.status, 400);
      assert.match(errorOf(answer), /\btopic\b/);
    });

    await t.step("a bad element of an array is a 400 naming [1].event", async () => {
      const answer = await post(server, [
        { topic: "status:x", event: "status", payload: {} },
        { topic: "status:x", payload: {} },
      ]);
      assert.equal(answer.status, 400);
      assert.ok(errorOf(answer).includes("[1].event"), errorOf(answer));
    });

    await t.step("a payload that is not an object is a 400 naming payload", async () => {
      for (const payload of ["text", [1, 2], 3]) {
        const answer = await post(server, { topic: "status:x", event: "status", payload });
        assert.equal(answer.status, 400, JSON.stringify(payload));
        assert.match(errorOf(answer), /\bpayload\b/, JSON.stringify(payload));
      }
    });

    await t.step("a topic no channel matches is a 400 naming topic", async () => {
      const answer = await post(server, { topic: "nope:1", event: "status", payload: {} });
      assert.equal(answer.status, 400);
      assert.match(errorOf(answer), /\btopic\b/);
      assert.match(errorOf(answer), /nope:1/);
      const inArray = await post(server, [
        { topic: "status:x", event: "status", payload: {} },
        { topic: "nope:1", event: "status", payload: {} },
      ]);
      assert.equal(inArray.status, 400);
      assert.ok(errorOf(inArray).includes("[1].topic"), errorOf(inArray));
    });

    await t.step("a reserved event is a 400 naming event", async () => {
      for (const event of ["phx_close", "phx_reply", "presence_diff", "heartbeat"]) {
        const answer = await post(server, { topic: "status:x", event, payload: {} });
        assert.equal(answer.status, 400, event);
        assert.match(errorOf(answer), /\bevent\b/, event);
      }
    });

    await t.step("a rejected body broadcasts nothing (all or nothing)", async () => {
      const before = await request(`${server.url}/api/topics/status:x`);
      const answer = await post(server, [
        { topic: "status:x", event: "status", payload: { n: 99 } },
        { topic: "status:x", event: "phx_close", payload: {} },
      ]);
      assert.equal(answer.status, 400);
      const after = await request(`${server.url}/api/topics/status:x`);
      // The snapshot's cursor starts "now", so only its positions are compared.
      const positions = (b: unknown) => {
        const { cursor, ...rest } = b as { cursor: string };
        return { ...rest, cursor: cursor.replace(/=\d+/, "=") };
      };
      assert.deepEqual(positions(after.body), positions(before.body));
      assert.equal(after.headers.get("etag"), before.headers.get("etag"));
    });

    await t.step("GET /api/topics/:topic has an ETag; If-None-Match gives 304", async () => {
      const first = await request(`${server.url}/api/topics/status:x`);
      assert.equal(first.status, 200);
      const body = first.body as Record<string, unknown>;
      assert.equal(body.topic, "status:x");
      assert.equal(body.event, "status");
      assert.deepEqual(body.payload, { state: "operational", n: 3 });
      const etag = first.headers.get("etag");
      assert.ok(etag, "an ETag header");

      const again = await request(`${server.url}/api/topics/status:x`, {
        headers: { "if-none-match": etag },
      });
      assert.equal(again.status, 304);
      assert.equal(again.body, undefined);
      assert.equal(again.headers.get("etag"), etag);

      assert.equal(
        (await post(server, { topic: "status:x", event: "status", payload: {} })).status,
        202,
      );
      const changed = await request(`${server.url}/api/topics/status:x`, {
        headers: { "if-none-match": etag },
      });
      assert.equal(changed.status, 200);
      assert.notEqual(changed.headers.get("etag"), etag);
      assert.deepEqual((changed.body as Record<string, unknown>).payload, {});
      // The subscriber got it too (drain it so the frame is accounted for).
      await sockets[0].next((f) => f.topic === "status:x" && f.ref === null);
    });

    await t.step("GET /api/topics/:topic of a topic with no messages yet", async () => {
      const answer = await request(`${server.url}/api/topics/status:never`);
      assert.equal(answer.status, 200);
      assert.equal((answer.body as Record<string, unknown>).payload, null);
      assert.ok(answer.headers.get("etag"));
    });

    await t.step("GET of an unknown topic is a 404 JSON error", async () => {
      for (const path of ["/api/topics/nope:1", "/api/presence/nope:1"]) {
        const answer = await request(`${server.url}${path}`);
        assert.equal(answer.status, 404, path);
        assert.match(errorOf(answer), /nope:1/);
      }
    });

    await t.step("GET /api/presence/record:1 lists the joined user's metas", async () => {
      const empty = await request(`${server.url}/api/presence/record:1`);
      assert.equal(empty.status, 200);
      assert.deepEqual(empty.body, { topic: "record:1", presences: {} });

      const ws = await subscribe(server, "ann", "record:1");
      sockets.push(ws);
      await ws.next((f) => f.event === "presence_state");
      const answer = await request(`${server.url}/api/presence/record:1`);
      assert.equal(answer.status, 200);
      const { topic, presences } = answer.body as {
        topic: string;
        presences: Record<string, { metas: Record<string, unknown>[] }>;
      };
      assert.equal(topic, "record:1");
      assert.deepEqual(Object.keys(presences), ["ann"]);
      assert.equal(presences.ann.metas.length, 1);
      const meta = presences.ann.metas[0];
      assert.equal(meta.name, "Ann");
      assert.equal(meta.state, "viewing");
      assert.equal(typeof meta.online_at, "number");
      assert.equal(typeof meta.phx_ref, "string");
    });

    await t.step("GET /healthz is 200 with the memory broker", async () => {
      const answer = await request(`${server.url}/healthz`);
      assert.equal(answer.status, 200);
      const body = answer.body as { status: string; broker: { kind: string; connected: boolean } };
      assert.equal(body.status, "ok");
      assert.equal(body.broker.kind, "memory");
      assert.equal(body.broker.connected, true);
    });

    await t.step("GET /metrics has connections by transport and counters", async () => {
      const answer = await request(`${server.url}/metrics`);
      assert.equal(answer.status, 200);
      assert.match(answer.headers.get("content-type") ?? "", /^text\/plain/);
      const text = String(answer.body);
      const open = sockets.filter((s) => s.ws.readyState === WebSocket.OPEN).length;
      assert.match(
        text,
        new RegExp(`^switchboard_connections\\{transport="websocket"\\} ${open}$`, "m"),
      );
      assert.match(text, /^# TYPE switchboard_connections gauge$/m);
      assert.match(text, /^# TYPE switchboard_joins_total counter$/m);
      assert.match(text, /^switchboard_joins_total\{transport="websocket"\} 2$/m);
      assert.match(text, /^switchboard_messages_in_total\{transport="websocket"\} \d+$/m);
      assert.match(text, /^switchboard_messages_out_total\{transport="websocket"\} \d+$/m);
      assert.match(text, /^switchboard_api_messages_total \d+$/m);
      const deliveries = Number(text.match(/^switchboard_deliveries_total (\d+)$/m)?.[1]);
      const broadcasts = Number(text.match(/^switchboard_broadcasts_total (\d+)$/m)?.[1]);
      assert.ok(broadcasts > 0 && deliveries > 0, "fan-out is counted");
    });

    await t.step("with API_TOKEN=secret and MAX_API_BODY_BYTES=1000", tokenAndLimitSteps);

    await t.step("an unknown route is a 404 JSON error", async () => {
      const answer = await request(`${server.url}/no/such/route`);
      assert.equal(answer.status, 404);
      assert.match(answer.headers.get("content-type") ?? "", /application\/json/);
      errorOf(answer);
    });
  } finally {
    for (const ws of sockets) await ws.close();
    await server.stop();
  }
});
