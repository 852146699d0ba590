/**
 * Presence for crowds across two nodes through the real Redis (and the Upstash bridge): a join
 * storm of raw Phoenix v2 members, most on one node; every member is told the cluster's count,
 * pays kilobytes of presence, and pages through the cluster's whole member list (each member
 * exactly once) from either node. Redis' own counters show what the bus carried. Then a room
 * across both nodes becomes a crowd and a room again.
 *
 * 5,000 members as on one node: about 15 s on a 2-core machine (two server processes, Redis,
 * the bridge and the clients).
 */
import assert from "node:assert/strict";
import { waitForCluster } from "../support/cluster.ts";
import { joinCrowd, readAllPages } from "../support/crowd.ts";
import { connectSocket, disconnect, join, withPresence } from "../support/phoenix.ts";
import { redisStats, startBridge, startRedis } from "../support/redis.ts";
import { type ServerProcess, startServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

const MEMBERS = 5_000;
const KIB = 1024;

Deno.test({
  name: "a crowd across two nodes through Redis: the cluster's count and pages on every node",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using redis = await startRedis();
    await using bridge = await startBridge({ redisUrl: redis.url, token: "crowd-token" });
    const env = (id: string) => ({
      UPSTASH_REDIS_REST_URL: bridge.url,
      UPSTASH_REDIS_REST_TOKEN: "crowd-token",
      NODE_ID: id,
      PRESENCE_LEAVE_GRACE_MS: "0",
    });
    const nodes = await Promise.all(["c1", "c2"].map((id) => startServer(env(id))));
    const topic = "record:crowd-cluster";
    let crowd: Awaited<ReturnType<typeof joinCrowd>> | undefined;
    try {
      await waitForCluster(nodes);
      const before = await redisStats(redis.url);
      // 99 of 100 members on c1: its whole state (about 540 KB) would not fit one bus message
      // (512 KiB); in buckets it crosses to c2 all the same.
      const socketUrls = Array.from({ length: 100 }, (_, i) => nodes[i === 99 ? 1 : 0].socketUrl);
      crowd = await joinCrowd({ socketUrls, topic, count: MEMBERS });
      const { members } = crowd;
      await waitFor(
        () => members.every((m) => m.users() >= MEMBERS),
        `every member on both nodes told the cluster's count (${MEMBERS})`,
        40_000,
      );
      const after = await redisStats(redis.url);
      const perMember = members.reduce((sum, m) => sum + m.presenceBytes(), 0) / MEMBERS;
      const busPerMember = (after.netOutputBytes - before.netOutputBytes) / MEMBERS;
      const commands = after.totalCalls - before.totalCalls;
      console.log(
        `presence traffic ${(perMember / KIB).toFixed(1)} KiB per member; Redis wrote ` +
          `${(busPerMember / KIB).toFixed(1)} KiB per member and ran ${commands} commands ` +
          `for ${MEMBERS} joins`,
      );
      assert.ok(perMember <= 40 * KIB, `${(perMember / KIB).toFixed(1)} KiB per member`);
      // A crowd's node replicates its state at most once a second, not a diff per join.
      assert.ok(busPerMember <= 8 * KIB, `the bus carried ${busPerMember} bytes per member`);
      assert.ok(commands < MEMBERS / 10, `${commands} Redis commands for ${MEMBERS} joins`);

      // Member 0 is on c1, member 99 on c2: both page through the cluster's list.
      for (const member of [members[0], members[99]]) {
        const keys = await readAllPages(member, topic);
        assert.equal(keys.length, MEMBERS, `pages read through ${member.key}'s node`);
        assert.deepEqual([...keys].sort(), members.map((m) => m.key).sort());
      }
    } finally {
      await crowd?.close();
      await Promise.all(nodes.map((n) => n.stop()));
    }
  },
});

Deno.test({
  name: "across two nodes a room becomes a crowd and a room again, on both nodes",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using redis = await startRedis();
    await using bridge = await startBridge({ redisUrl: redis.url, token: "crowd-token" });
    const nodes: ServerProcess[] = await Promise.all(["r1", "r2"].map((id) =>
      startServer({
        UPSTASH_REDIS_REST_URL: bridge.url,
        UPSTASH_REDIS_REST_TOKEN: "crowd-token",
        NODE_ID: id,
        PRESENCE_LEAVE_GRACE_MS: "0",
      })
    ));
    const topic = "record:crowd-switch";
    const watchers: Awaited<ReturnType<typeof watch>>[] = [];
    let crowd: Awaited<ReturnType<typeof joinCrowd>> | undefined;
    async function watch(node: ServerProcess, key: string) {
      const socket = await connectSocket(node.socketUrl, { user_id: key });
      const channel = socket.channel(topic, { name: key });
      const { keys } = withPresence(channel);
      const users: number[] = [];
      channel.on("occupancy", (p: { users: number }) => users.push(p.users));
      await join(channel);
      return { socket, keys, users };
    }
    try {
      await waitForCluster(nodes);
      watchers.push(await watch(nodes[0], "w1"), await watch(nodes[1], "w2"));
      // 158 raw members and the two watchers: 160, a crowd (threshold 150) on both nodes.
      crowd = await joinCrowd({ socketUrls: nodes.map((n) => n.socketUrl), topic, count: 158 });
      await waitFor(
        () => watchers.every((w) => w.users.at(-1) === 160 && w.keys().length <= 41),
        "both watchers see a crowd of 160",
        20_000,
      );
      // 41 leave (from both nodes): 119 is a room again, the full list on both nodes.
      const leaving = crowd.members.splice(117);
      await Promise.all(leaving.map((m) => m.socket.close()));
      await waitFor(
        () => watchers.every((w) => w.keys().length === 119),
        "both watchers see all 119 again",
        20_000,
      );
      // A room again: a join on one node reaches the other node's watcher as a diff.
      const late = await watch(nodes[1], "late");
      watchers.push(late);
      await waitFor(
        () => watchers[0].keys().includes("late×1") && watchers[0].keys().length === 120,
        "a join on the other node",
        10_000,
      );
    } finally {
      await crowd?.close();
      await Promise.all(watchers.map((w) => disconnect(w.socket)));
      await Promise.all(nodes.map((n) => n.stop()));
    }
  },
});
