/**
 * Trust under pressure across two nodes through Redis (issue 21): a viewer on node B catches
 * up with a burst published on node A, cut during it or away for it (SSE), or joining with
 * the cursor from before it (WebSocket, long-poll); presence that used to kill a node (a diff past the
 * bus line, a meta nested 30,000 deep, 62 KB metas in a row, everyone leaving at once) is
 * split or refused, and both nodes keep serving with nothing escaping.
 */
import assert from "node:assert/strict";
import { waitForCluster } from "../support/cluster.ts";
import { metricValue, uncaughtErrors } from "../support/metrics.ts";
import { joinRealtime, nested, pushTrack } from "../support/presence_attack.ts";
import type { RawSocket } from "../support/raw_ws.ts";
import { startBridge, startRedis } from "../support/redis.ts";
import { startServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";
import {
  followBurst,
  resumeAfterBurst,
  resumeLongPollAfterBurst,
  resumeWebSocketAfterBurst,
} from "../support/burst.ts";

/** The keys an observer's presence shows after applying every state and diff it received. */
function presenceKeys(raw: RawSocket, topic: string): Set<string> {
  const keys = new Set<string>();
  for (const f of raw.log) {
    if (f.topic !== topic) continue;
    const p = f.payload as Record<string, Record<string, unknown>>;
    if (f.event === "presence_state") {
      keys.clear();
      for (const k of Object.keys(p)) keys.add(k);
    } else if (f.event === "presence_diff") {
      for (const k of Object.keys(p.joins)) keys.add(k);
      for (const k of Object.keys(p.leaves)) {
        // A leave of one meta of a key that re-joined in the same diff keeps it.
        if (!(k in p.joins)) keys.delete(k);
      }
    }
  }
  return keys;
}

Deno.test("pressure across two nodes through Redis", async (t) => {
  const redis = await startRedis();
  const bridge = await startBridge({ redisUrl: redis.url, token: "pressure-token" });
  const env = (id: string) => ({
    UPSTASH_REDIS_REST_URL: bridge.url,
    UPSTASH_REDIS_REST_TOKEN: "pressure-token",
    NODE_ID: id,
    REDIS_HEARTBEAT_MS: "2000",
    PRESENCE_LEAVE_GRACE_MS: "300",
  });
  const [a, b] = await Promise.all([startServer(env("pa")), startServer(env("pb"))]);
  const sockets: RawSocket[] = [];
  try {
    await waitForCluster([a, b]);

    for (const [name, pauseMs] of [["slow", 4], ["full speed", 0]] as const) {
      // As the issue found it: the viewer on B is connected while A publishes, and is cut.
      await t.step(
        `a ${name} SSE viewer on B, cut during a burst on A, catches up`,
        () =>
          followBurst({
            viewerUrl: b.url,
            publisherUrl: a.url,
            topic: `status:xcut-${pauseMs}`,
            pauseMs,
          }),
      );
      await t.step(
        `a ${name} SSE viewer on B, away during a burst on A, catches up`,
        () =>
          resumeAfterBurst({
            viewerUrl: b.url,
            publisherUrl: a.url,
            topic: `status:xburst-${pauseMs}`,
            pauseMs,
          }),
      );
    }
    const acrossNodes = { viewerUrl: b.url, publisherUrl: a.url };
    await t.step(
      "WebSocket on B: a join with the cursor from before a burst on A",
      () => resumeWebSocketAfterBurst({ ...acrossNodes, topic: "status:xws-burst" }),
    );
    await t.step(
      "long-poll on B: a join with the cursor, paced by the polls",
      () => resumeLongPollAfterBurst({ ...acrossNodes, topic: "status:xlp-burst" }),
    );

    await t.step(
      "realtime REST past the bus line: 413, and a batch is all or nothing",
      async () => {
        const big = { pad: "b".repeat(600_000) };
        const one = await fetch(`${a.url}/api/broadcast/big/events/x`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(big),
        });
        assert.equal(one.status, 413, await one.text());
        const batch = await fetch(`${a.url}/api/broadcast`, {
          method: "POST",
          body: JSON.stringify({
            messages: [
              { topic: "batch", event: "x", payload: { n: 1 } },
              { topic: "batch", event: "x", payload: big },
            ],
          }),
        });
        assert.equal(batch.status, 413, await batch.text());
        const read = await (await fetch(`${a.url}/api/topics/realtime:batch`)).json();
        assert.equal(read.payload, null, "the small message was not published either");
      },
    );

    const topic = "realtime:crowd";
    const observer = await joinRealtime(b.socketUrl, topic, "observer");
    sockets.push(observer);
    const crowd: RawSocket[] = [];
    const accepted: string[] = [];

    await t.step("20 users tracking 30 KB metas at once: accepted up to the bus line", async () => {
      for (let i = 0; i < 20; i++) {
        const raw = await joinRealtime(a.socketUrl, topic, `u${i}`);
        crowd.push(raw);
        sockets.push(raw);
      }
      // All at once: one batch window holds every join (600 KB, past the 512 KiB bus line).
      crowd.forEach((raw, i) =>
        raw.push("1", "2", topic, "presence", {
          type: "presence",
          event: "track",
          payload: { i, pad: "y".repeat(30_000) },
        })
      );
      for (const [i, raw] of crowd.entries()) {
        const reply = await raw.next((f) => f.ref === "2" && f.event === "phx_reply");
        const { status, response } = reply.payload as {
          status: string;
          response: { reason?: string };
        };
        if (status === "ok") accepted.push(`u${i}`);
        else assert.equal(response.reason, "presence_topic_full");
      }
      assert.ok(accepted.length >= 10 && accepted.length < 20, `accepted ${accepted.length}`);
      await waitFor(
        () => accepted.every((k) => presenceKeys(observer, topic).has(k)),
        "the observer on B sees every accepted key",
      );
      // A newcomer on B gets them in its presence_state: the replicated state made it too.
      const late = await joinRealtime(b.socketUrl, topic, "late");
      sockets.push(late);
      await late.next((f) => f.event === "presence_state");
      assert.deepEqual(
        [...presenceKeys(late, topic)].filter((k) => k.startsWith("u")).sort(),
        [...accepted].sort(),
      );
    });

    await t.step("every accepted user updates at once: the diff is split per key", async () => {
      const updating = crowd.filter((_, i) => accepted.includes(`u${i}`));
      updating.forEach((raw, i) =>
        raw.push("1", "3", topic, "presence", {
          type: "presence",
          event: "track",
          payload: { i, pad: "z".repeat(30_000) },
        })
      );
      for (const raw of updating) {
        const reply = await raw.next((f) => f.ref === "3" && f.event === "phx_reply");
        assert.equal((reply.payload as { status: string }).status, "ok");
      }
      await waitFor(
        () =>
          observer.log.filter((f) =>
            f.event === "presence_diff" &&
            Object.values(
              (f.payload as { joins: Record<string, { metas: { pad: string }[] }> }).joins,
            )
              .some((j) => j.metas[0].pad.startsWith("z"))
          ).length >= updating.length,
        "the observer on B sees every update",
      );
      // Joins and leaves of every key, past the bus line: the diff went out per key.
      assert.ok(await metricValue(a.url, "switchboard_presence_diffs_split_total") >= 1);
    });

    await t.step(
      "one user's five 62 KB tracks within 20 ms and a meta nested 30,000 deep are refused",
      async () => {
        const mallory = await joinRealtime(a.socketUrl, topic, "mallory");
        sockets.push(mallory);
        for (let i = 0; i < 5; i++) {
          mallory.push("1", `m${i}`, topic, "presence", {
            type: "presence",
            event: "track",
            payload: { i, pad: "m".repeat(62_000) },
          });
        }
        for (let i = 0; i < 5; i++) {
          const reply = await mallory.next((f) => f.ref === `m${i}` && f.event === "phx_reply");
          assert.equal((reply.payload as { status: string }).status, "error");
        }
        const deep = await pushTrack(mallory, topic, "d", { deep: nested(30_000) });
        assert.equal(deep.status, "error");
        assert.equal(deep.response.reason, "invalid_payload");
      },
    );

    await t.step(
      "everyone leaves at once when the grace ends: both nodes keep serving",
      async () => {
        await Promise.all(crowd.map((raw) => raw.close()));
        await waitFor(
          () => accepted.every((k) => !presenceKeys(observer, topic).has(k)),
          "the observer on B sees everyone gone",
          10_000,
        );
        for (const node of [a, b]) {
          assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
          assert.equal(await uncaughtErrors(node.url), 0, node.output());
        }
      },
    );
  } finally {
    await Promise.all(sockets.map((s) => s.close().catch(() => {})));
    await Promise.all([a.stop(), b.stop()]);
    await bridge.stop();
    await redis.stop();
  }
});
