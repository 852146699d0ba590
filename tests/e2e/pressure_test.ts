/**
 * Trust under pressure, one node (issue 21): a status viewer on a bad link catches up after a
 * burst (SSE readers slow and at full speed, cut during it or away for it; WebSocket and
 * long-poll resumes); no client input kills or poisons the node; one user's presences and
 * topics are bounded over all its sockets.
 */
import assert from "node:assert/strict";
import { openRaw, type RawSocket, replyOf } from "../support/raw_ws.ts";
import { waitFor } from "../support/wait.ts";
import { startServer } from "../support/server.ts";
import {
  checkConverged,
  followBurst,
  frameEvents,
  missBurst,
  publishBurst,
  resumeAfterBurst,
  resumeLongPollAfterBurst,
  resumeWebSocketAfterBurst,
  sawLast,
} from "../support/burst.ts";
import { metricValue, uncaughtErrors } from "../support/metrics.ts";
import { joinRealtime, nested, pushTrack } from "../support/presence_attack.ts";

Deno.test("a viewer cut during a burst catches up (SSE, one node)", async (t) => {
  const server = await startServer();
  try {
    for (const [name, pauseMs] of [["slow", 4], ["full speed", 0]] as const) {
      await t.step(`${name} reader`, () =>
        followBurst({
          viewerUrl: server.url,
          publisherUrl: server.url,
          topic: `status:burst-${pauseMs}`,
          pauseMs,
        }));
      // Deterministic: the resume after the burst is ~11 MB, past MAX_OUTBOUND_BYTES.
      await t.step(`${name} reader away during the burst`, () =>
        resumeAfterBurst({
          viewerUrl: server.url,
          publisherUrl: server.url,
          topic: `status:away-${pauseMs}`,
          pauseMs,
        }));
    }
    await t.step("nothing escaped to the process' last line of defence", async () => {
      assert.equal(await uncaughtErrors(server.url), 0);
    });
  } finally {
    await server.stop();
  }
});

Deno.test("no client input kills or poisons a node (one node)", async (t) => {
  const server = await startServer();
  try {
    await t.step(
      "a presence meta nested 30,000 deep is refused; the topic still works",
      async () => {
        const topic = "realtime:deep";
        const mallory = await joinRealtime(server.socketUrl, topic, "mallory");
        const reply = await pushTrack(mallory, topic, "2", { deep: nested(30_000) });
        assert.equal(reply.status, "error");
        assert.equal(reply.response.reason, "invalid_payload");
        // Newcomers still get the topic's presence, and the API still lists it.
        const ann = await joinRealtime(server.socketUrl, topic, "ann");
        await ann.next((f) => f.event === "presence_state");
        const res = await fetch(`${server.url}/api/presence/${topic}`);
        assert.equal(res.status, 200, await res.text());
        await Promise.all([mallory.close(), ann.close()]);
      },
    );

    await t.step("a 62 KB presence meta is refused with its limit named", async () => {
      const topic = "realtime:big";
      const raw = await joinRealtime(server.socketUrl, topic, "bob");
      const reply = await pushTrack(raw, topic, "2", { pad: "x".repeat(62_000) });
      assert.equal(reply.status, "error");
      assert.equal(reply.response.reason, "presence_meta_too_large");
      assert.match(String(reply.response.detail), /MAX_PRESENCE_META_BYTES/);
      assert.equal((await pushTrack(raw, topic, "3", { name: "Bob" })).status, "ok");
      await raw.close();
    });

    await t.step("realtime REST: a payload nested 8,000 deep is 400, the topic reads", async () => {
      const deep = "[".repeat(8_000) + "]".repeat(8_000);
      const res = await fetch(`${server.url}/api/broadcast/deep-rest/events/x`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: `{"v":${deep}}`,
      });
      assert.equal(res.status, 400, await res.text());
      const read = await fetch(`${server.url}/api/topics/realtime:deep-rest`);
      assert.equal(read.status, 200, await read.text());
    });

    await t.step("the node served it all: nothing escaped, refusals counted", async () => {
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
      assert.equal(await uncaughtErrors(server.url), 0);
      assert.ok(await metricValue(server.url, "switchboard_refused_total", "invalid_payload") >= 2);
    });
  } finally {
    await server.stop();
  }
});

Deno.test("a resume after a burst converges (WebSocket, long-poll)", async (t) => {
  const server = await startServer();
  const node = { viewerUrl: server.url, publisherUrl: server.url };
  try {
    await t.step(
      "WebSocket: a join with the cursor from before the burst",
      () => resumeWebSocketAfterBurst({ ...node, topic: "status:ws-burst" }),
    );

    await t.step(
      "long-poll: a join with the cursor, paced by the polls",
      () => resumeLongPollAfterBurst({ ...node, topic: "status:lp-burst" }),
    );

    await t.step("long-poll: too far behind, a reset with the current state", async () => {
      const topic = "status:lp-behind";
      const cursor = await missBurst({ ...node, topic });
      const endpoint = `${server.url}/socket/longpoll?vsn=2.0.0`;
      const { token } = await (await fetch(endpoint)).json();
      const poll = async () => {
        const answer = await (await fetch(`${endpoint}&token=${token}`)).json();
        assert.ok([200, 204].includes(answer.status), JSON.stringify(answer).slice(0, 300));
        return (answer.messages ?? []).map((m: string) => JSON.parse(m)) as unknown[][];
      };
      const post = await fetch(`${endpoint}&token=${token}`, {
        method: "POST",
        body: JSON.stringify(["1", "1", topic, "phx_join", { cursor }]),
      });
      assert.equal((await post.json()).status, 200);
      // One poll takes the join reply and the replay's first part; the replay then waits for
      // the next poll, and a second burst (120 × 20 KB, past MAX_OUTBOUND_BYTES) piles up
      // meanwhile. (A larger one would go on piling up after the reset: a slow consumer.)
      const frames = await poll();
      await publishBurst(server.url, topic, { total: 120, from: 601 });
      for (let polls = 0; polls < 50 && !sawLast(720)(frameEvents(frames)); polls++) {
        frames.push(...await poll());
      }
      const { last, resets } = checkConverged(frameEvents(frames));
      assert.equal(last, 720);
      assert.equal(resets, 1);
      const reset = frames.find((f) => f[3] === "reset")!;
      assert.equal((reset[4] as { reason: string }).reason, "too_far_behind");
      assert.ok(
        await metricValue(server.url, "switchboard_refused_total", "replay_too_far_behind") >= 1,
      );
    });
  } finally {
    await server.stop();
  }
});

Deno.test("one user's presences and topics are bounded over all its sockets", async (t) => {
  const server = await startServer({
    MAX_TOPICS_PER_USER: "30",
    MAX_PRESENCES_PER_USER: "20",
    MAX_PRESENCE_BYTES_PER_USER: "200000",
  });
  const sockets: RawSocket[] = [];
  const join = async (user: string, topic: string, ref: string) => {
    const raw = sockets.at(-1)!;
    raw.push(ref, ref, topic, "phx_join", { config: { presence: { key: user, enabled: true } } });
    return replyOf(await raw.next((f) => f.ref === ref && f.event === "phx_reply"));
  };
  const track = async (topic: string, ref: string, meta: unknown) => {
    const raw = sockets.at(-1)!;
    raw.push(ref, `t${ref}`, topic, "presence", {
      type: "presence",
      event: "track",
      payload: meta,
    });
    return replyOf(await raw.next((f) => f.ref === `t${ref}` && f.event === "phx_reply"));
  };
  try {
    await t.step("5 sockets × 8 topics: 30 joins, then too_many_topics_for_user", async () => {
      const reasons: string[] = [];
      for (let s = 0; s < 5; s++) {
        sockets.push(await openRaw(`${server.socketUrl}/websocket?vsn=2.0.0&user_id=eve`));
        for (let i = 0; i < 8; i++) {
          const reply = await join("eve", `realtime:eve-${s}-${i}`, String(i + 1));
          reasons.push(reply.status === "ok" ? "ok" : String(reply.response.reason));
        }
      }
      assert.deepEqual(reasons, [
        ...Array(30).fill("ok"),
        ...Array(10).fill("too_many_topics_for_user"),
      ]);
    });

    await t.step("20 presences, then too_many_presences; other users unaffected", async () => {
      const statuses: string[] = [];
      // The last socket's 8 joins were refused: track on the first four sockets' topics.
      for (let s = 0; s < 4; s++) {
        const raw = sockets[s];
        for (let i = 0; i < 6; i++) {
          const topic = `realtime:eve-${s}-${i}`;
          raw.push(String(i + 1), `p${i}`, topic, "presence", {
            type: "presence",
            event: "track",
            payload: { s, i },
          });
          const reply = replyOf(await raw.next((f) => f.ref === `p${i}` && f.topic === topic));
          statuses.push(reply.status === "ok" ? "ok" : String(reply.response.reason));
        }
      }
      assert.deepEqual(statuses, [...Array(20).fill("ok"), ...Array(4).fill("too_many_presences")]);
      sockets.push(await openRaw(`${server.socketUrl}/websocket?vsn=2.0.0&user_id=ann`));
      assert.equal((await join("ann", "realtime:eve-0-0", "1")).status, "ok");
      assert.equal((await track("realtime:eve-0-0", "1", { name: "Ann" })).status, "ok");
    });

    await t.step("bytes per user: 30 KB metas fit six times in 200,000", async () => {
      sockets.push(await openRaw(`${server.socketUrl}/websocket?vsn=2.0.0&user_id=zed`));
      const statuses: string[] = [];
      for (let i = 0; i < 8; i++) {
        const topic = `realtime:zed-${i}`;
        assert.equal((await join("zed", topic, String(i + 1))).status, "ok");
        const reply = await track(topic, String(i + 1), { pad: "z".repeat(30_000) });
        statuses.push(reply.status === "ok" ? "ok" : String(reply.response.reason));
      }
      assert.deepEqual(statuses, [...Array(6).fill("ok"), ...Array(2).fill("too_many_presences")]);
    });

    await t.step("closing the sockets gives the room back", async () => {
      for (const raw of sockets.splice(0, 5)) await raw.close();
      await waitFor(async () => {
        sockets.unshift(await openRaw(`${server.socketUrl}/websocket?vsn=2.0.0&user_id=eve`));
        const raw = sockets[0];
        raw.push("1", "1", "realtime:eve-again", "phx_join", {});
        const reply = replyOf(await raw.next((f) => f.ref === "1" && f.event === "phx_reply"));
        if (reply.status !== "ok") await sockets.shift()!.close();
        return reply.status === "ok";
      }, "eve may join again");
      assert.ok(await metricValue(server.url, "switchboard_refused_total", "too_many") >= 16);
      assert.equal(await uncaughtErrors(server.url), 0);
    });
  } finally {
    await Promise.all(sockets.map((s) => s.close()));
    await server.stop();
  }
});
