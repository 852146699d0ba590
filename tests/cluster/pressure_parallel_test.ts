/**
 * Issue 21 under `deno task start:parallel` without Redis (2 isolates joined by a
 * BroadcastChannel): presence metas nested 30,000 deep, sent on connections the kernel spreads
 * over both isolates, used to kill one isolate with the first frame and the process with the
 * second. They are refused; both isolates keep serving and nothing escapes.
 */
import assert from "node:assert/strict";
import { uncaughtErrors } from "../support/metrics.ts";
import { joinRealtime, nested, pushTrack } from "../support/presence_attack.ts";
import type { RawSocket } from "../support/raw_ws.ts";
import { freePort } from "../support/redis.ts";
import { parallelTaskArgs, spawnListening } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

/** A new connection per request: the kernel picks the isolate per connection. */
const fresh = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });

/** How many isolates answer `/healthz`, and how many peers each sees. */
async function isolates(url: string): Promise<{ broker: { nodes: number } }[]> {
  const body = await (await fetch(`${url}/healthz`, { client: fresh })).json();
  return body.workers;
}

Deno.test("start:parallel: deeply nested presence metas kill no isolate", async () => {
  const port = freePort();
  const server = await spawnListening({
    args: await parallelTaskArgs(),
    env: { PORT: String(port), HOST: "127.0.0.1", DENO_JOBS: "2", LOG_LEVEL: "warn" },
    timeoutMs: 20_000,
  });
  const sockets: RawSocket[] = [];
  try {
    await waitFor(
      async () => {
        const all = await isolates(server.url);
        return all.length === 2 && all.every((w) => w.broker.nodes === 2);
      },
      "two isolates seeing each other",
      15_000,
    );
    const topic = "realtime:deep-parallel";
    // Eight connections: the kernel spreads them, so both isolates get such frames.
    for (let i = 0; i < 8; i++) {
      const raw = await joinRealtime(server.socketUrl, topic, `m${i}`);
      sockets.push(raw);
      const reply = await pushTrack(raw, topic, "2", { deep: nested(30_000) });
      assert.equal(reply.status, "error");
      assert.equal(reply.response.reason, "invalid_payload");
    }
    const late = await joinRealtime(server.socketUrl, topic, "late");
    sockets.push(late);
    await late.next((f) => f.event === "presence_state");
    const all = await isolates(server.url);
    assert.equal(all.length, 2, "both isolates still answer");
    assert.equal(await uncaughtErrors(server.url), 0, server.output());
  } finally {
    await Promise.all(sockets.map((s) => s.close().catch(() => {})));
    await server.stop(12_000);
    fresh.close();
  }
});
