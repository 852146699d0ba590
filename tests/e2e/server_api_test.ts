/**
 * The server API on one node, with signed tokens: `POST /api/disconnect` ends exactly Ann's
 * sessions (the official phoenix client, a raw WebSocket, SSE, long-poll), tells her clients
 * why, and refuses her old token; `POST /api/unsubscribe` takes Bob off one topic; both are
 * safe to repeat; `GET /api/occupancy` follows the topic's read rules.
 */
import assert from "node:assert/strict";
import { LongPoll } from "phoenix";
import { signToken } from "../../lib/auth.ts";
import { postApi, publishStatus } from "../support/api.ts";
import { connectSocket, disconnect, join } from "../support/phoenix.ts";
import { isReply, openRaw, replyOf, upgradeStatus } from "../support/raw_ws.ts";
import { startServer } from "../support/server.ts";
import { openSse } from "../support/sse.ts";
import { waitFor } from "../support/wait.ts";

const SECRET = "server-api-socket-secret";
const API = "server-api-token";

function token(sub: string, iat = Math.floor(Date.now() / 1000)): Promise<string> {
  return signToken(SECRET, { sub, exp: iat + 3600, iat });
}

Deno.test("server API: disconnect and unsubscribe", async (t) => {
  const server = await startServer({
    SOCKET_SECRET: SECRET,
    API_TOKEN: API,
    LONGPOLL_TIMEOUT_MS: "1500",
  });
  try {
    const annToken = await token("ann");
    const bobToken = await token("bob");

    await t.step("only the API token may call it; bad bodies are refused", async () => {
      assert.equal((await postApi(server.url, "/api/disconnect", { user_id: "ann" })).status, 401);
      const wrong = await postApi(server.url, "/api/disconnect", { user_id: "ann" }, annToken);
      assert.equal(wrong.status, 401);
      const missing = await postApi(server.url, "/api/disconnect", {}, API);
      assert.equal(missing.status, 400);
      assert.match(String(missing.body.error), /user_id/);
      const topic = await postApi(server.url, "/api/unsubscribe", {
        user_id: "ann",
        topic: "x".repeat(5000),
      }, API);
      assert.equal(topic.status, 400);
      assert.match(String(topic.body.error), /topic/);
    });

    await t.step(
      "the cluster's own topics (its commands) cannot be joined or published to",
      async () => {
        const ws = await openRaw(`${server.socketUrl}/websocket?vsn=2.0.0&token=${annToken}`);
        ws.push("1", "1", "$switchboard:control", "phx_join", {});
        const reply = replyOf(await ws.next(isReply("1")));
        assert.equal(reply.status, "error");
        assert.equal(reply.response.reason, "invalid_topic");
        await ws.close();
        const res = await fetch(`${server.url}/api/broadcast`, {
          method: "POST",
          headers: { authorization: `Bearer ${API}` },
          body: JSON.stringify({
            topic: "$switchboard:control",
            event: "command",
            payload: { disconnect: "ann" },
          }),
        });
        assert.equal(res.status, 400);
        assert.match((await res.json()).error, /cluster's own/);
      },
    );

    await t.step("occupancy reads follow the topic's access rules", async () => {
      assert.equal((await fetch(`${server.url}/api/occupancy/status:api`)).status, 200);
      const refused = await fetch(`${server.url}/api/occupancy/record:api-1`);
      await refused.body?.cancel();
      assert.equal(refused.status, 401);
      const asApi = await fetch(`${server.url}/api/occupancy/record:api-1`, {
        headers: { authorization: `Bearer ${API}` },
      });
      assert.deepEqual(await asApi.json(), { topic: "record:api-1", subscribers: 0, users: 0 });
    });

    await t.step("disconnect ends exactly Ann's sessions and refuses her old token", async () => {
      const annPhoenix = await connectSocket(server.socketUrl, { token: annToken });
      const annChannel = annPhoenix.channel("record:api-1", { name: "Ann" });
      const closes: unknown[] = [];
      annChannel.on("phx_close", (payload: unknown) => closes.push(payload));
      await join(annChannel);
      const annRaw = await openRaw(`${server.socketUrl}/websocket?vsn=2.0.0&token=${annToken}`);
      annRaw.push("1", "1", "status:api", "phx_join", {});
      assert.equal(replyOf(await annRaw.next(isReply("1"))).status, "ok");
      const annSse = await openSse(`${server.url}/events?topic=status:api&token=${annToken}`);
      await annSse.next((e) => e.event === "joined");
      const annLp = await connectSocket(server.url + "/socket", { token: annToken }, {
        transport: LongPoll,
      });
      await join(annLp.channel("status:api"));
      const bob = await connectSocket(server.socketUrl, { token: bobToken });
      const bobStatus = bob.channel("status:api");
      const bobGot: unknown[] = [];
      bobStatus.on("status", (p: unknown) => bobGot.push(p));
      await join(bobStatus);
      await waitFor(async () => {
        const res = await fetch(`${server.url}/api/occupancy/status:api`);
        return (await res.json()).subscribers === 4;
      }, "four on status:api");

      const answer = await postApi(server.url, "/api/disconnect", { user_id: "ann" }, API);
      assert.deepEqual(answer, { status: 200, body: { sessions: 4 } });
      const closed = await annRaw.closed;
      assert.equal(closed.code, 4010);
      assert.match(closed.reason, /disconnected by the server/);
      const rawClose = annRaw.log.find((f) => f.event === "phx_close");
      assert.deepEqual(rawClose?.payload, { reason: "disconnected" });
      await waitFor(() => closes.length > 0, "phx_close on the phoenix client");
      assert.deepEqual(closes[0], { reason: "disconnected" });
      await annSse.ended;
      const sseClose = annSse.events.find((e) => e.event === "phx_close");
      assert.deepEqual(sseClose?.json?.payload, { reason: "disconnected" }, "SSE is told why");
      annPhoenix.disconnect();
      annLp.disconnect();
      // Safe to repeat: nothing more to end.
      const again = await postApi(server.url, "/api/disconnect", { user_id: "ann" }, API);
      assert.deepEqual(again, { status: 200, body: { sessions: 0 } });

      // Bob is untouched.
      await publishStatus(server.url, "status:api", { state: "after" }, API);
      await waitFor(() => bobGot.length === 1, "bob still gets the status");

      // The old token is refused everywhere; a token issued after the disconnect is not.
      // A refused WebSocket is accepted, says why, and is closed later (protocol-refusals.md).
      const ws = await upgradeStatus(`${server.socketUrl}/websocket?vsn=2.0.0&token=${annToken}`);
      assert.match(ws.head, /x-switchboard-refusal: token_revoked/i);
      const sse = await fetch(`${server.url}/events?topic=status:api&token=${annToken}`);
      assert.equal(sse.status, 403);
      assert.equal((await sse.json()).reason, "token_revoked");
      const fresh = await token("ann", Math.floor(Date.now() / 1000) + 1);
      const back = await upgradeStatus(`${server.socketUrl}/websocket?vsn=2.0.0&token=${fresh}`);
      assert.equal(back.status, 101);
      assert.doesNotMatch(back.head, /x-switchboard-refusal/i);

      await disconnect(bob);
    });

    await t.step("unsubscribe takes Bob off one topic only", async () => {
      const bob = await connectSocket(server.socketUrl, { token: bobToken });
      const status = bob.channel("status:unsub");
      const closes: unknown[] = [];
      status.on("phx_close", (payload: unknown) => closes.push(payload));
      await join(status);
      const record = bob.channel("record:unsub", { name: "Bob" });
      await join(record);
      const answer = await postApi(server.url, "/api/unsubscribe", {
        user_id: "bob",
        topic: "status:unsub",
      }, API);
      assert.deepEqual(answer, { status: 200, body: { sessions: 1 } });
      await waitFor(() => closes.length === 1, "phx_close on status:unsub");
      assert.deepEqual(closes[0], { reason: "unsubscribed" });
      assert.equal(record.state, "joined");
      const again = await postApi(server.url, "/api/unsubscribe", {
        user_id: "bob",
        topic: "status:unsub",
      }, API);
      assert.deepEqual(again.body, { sessions: 0 });
      await disconnect(bob);
    });
  } finally {
    await server.stop();
  }
});
