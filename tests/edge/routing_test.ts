/**
 * Which node object the Worker picks (deploy/cloudflare/routing.ts), and the
 * `SWITCHBOARD_NODES` check: pinned nodes, the one-node default, spreading by topic and by a
 * hash that every request of a long-poll session shares.
 */
import assert from "node:assert/strict";
import { chooseNode, DEFAULT_NODE } from "../../deploy/cloudflare/routing.ts";
import { nodeCount } from "../../deploy/cloudflare/worker.ts";

const one = { nodes: 1, clustered: false };
const four = { nodes: 4, clustered: true };
const at = (path: string, headers: HeadersInit = {}) =>
  new Request(`https://sb.example${path}`, { headers });

Deno.test("node routing", async (t) => {
  await t.step("one node: everything goes to node-1; another node needs Redis", () => {
    for (const path of ["/healthz", "/events?topic=status:a", "/socket/websocket?vsn=2.0.0"]) {
      assert.deepEqual(chooseNode(at(path), one), { node: DEFAULT_NODE });
    }
    assert.deepEqual(chooseNode(at("/healthz?node=node-1"), one), { node: "node-1" });
    const refused = chooseNode(at("/healthz?node=eu"), one);
    assert.ok("error" in refused && /needs the Redis broker/.test(refused.error));
  });

  await t.step("a pinned node wins and must be a node name", () => {
    assert.deepEqual(chooseNode(at("/events?topic=status:a&node=eu-1"), four), { node: "eu-1" });
    const bad = chooseNode(at("/events?topic=status:a&node=../x"), four);
    assert.ok("error" in bad && bad.status === 400);
  });

  await t.step("SSE by first topic: one status page's viewers share a node", () => {
    const a = chooseNode(at("/events?topic=status:acme&user_id=1"), four);
    const b = chooseNode(at("/events?topic=status:acme&user_id=2"), four);
    assert.deepEqual(a, b);
    const spread = new Set<string>();
    for (let i = 0; i < 64; i++) {
      const choice = chooseNode(at(`/events?topic=status:page-${i}`), four);
      assert.ok("node" in choice && /^node-[1-4]$/.test(choice.node));
      spread.add(choice.node);
    }
    assert.equal(spread.size, 4, "64 topics land on all four nodes");
  });

  await t.step("long-poll: every request of a session lands on the same node", () => {
    const base = "/socket/longpoll?vsn=2.0.0&user_id=ann";
    const headers = { "x-phoenix-authtoken": "t0k" };
    const first = chooseNode(at(base, headers), four);
    assert.deepEqual(chooseNode(at(`${base}&token=abc`, headers), four), first);
    assert.deepEqual(chooseNode(at(`${base}&token=def`, headers), four), first);
  });

  await t.step("API, pages and health go to node-1 (Redis lets any node answer)", () => {
    for (const path of ["/api/broadcast", "/status/acme", "/healthz", "/metrics"]) {
      assert.deepEqual(chooseNode(at(path), four), { node: DEFAULT_NODE });
    }
  });

  await t.step("SWITCHBOARD_NODES is a whole number from 1 to 256", () => {
    assert.equal(nodeCount(undefined), 1);
    assert.equal(nodeCount("3"), 3);
    for (const bad of ["0", "-1", "1.5", "many", "999"]) {
      const result = nodeCount(bad);
      assert.ok(typeof result === "object" && /SWITCHBOARD_NODES/.test(result.error), bad);
    }
  });
});
