/**
 * `deno task dev:cluster`: a local cluster to watch presence and broadcasts cross nodes —
 * a `redis-server` (or `REDIS_URL`), the Upstash bridge in front of it, and two Switchboard
 * nodes. Prints every address; Ctrl-C stops everything.
 * @module
 */
import { type ListeningProcess, spawnListening } from "./support/process.ts";
import { type RedisServer, startRedis } from "./support/redis.ts";

const token = Deno.env.get("UPSTASH_REDIS_REST_TOKEN") ?? "dev-cluster-token";
const basePort = Number(Deno.env.get("PORT") ?? 8001);
const servers: ListeningProcess[] = [];
let redis: RedisServer | undefined;

async function stopAll(code = 0): Promise<never> {
  await Promise.all([...servers.map((s) => s.stop(5_000)), redis?.stop()]);
  Deno.exit(code);
}

/** Starts a Deno server, its output prefixed with `[name]`; exits when it does not come up. */
async function start(name: string, args: string[], env: Record<string, string>) {
  try {
    const server = await spawnListening({
      name,
      args,
      env,
      timeoutMs: 20_000,
      onLine: (line) => console.log(`[${name}] ${line}`),
    });
    servers.push(server);
    return server;
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    return await stopAll(1);
  }
}

Deno.addSignalListener("SIGINT", () => void stopAll());
Deno.addSignalListener("SIGTERM", () => void stopAll());

let redisUrl = Deno.env.get("REDIS_URL");
if (!redisUrl) {
  try {
    redis = await startRedis();
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : err}\n(or set REDIS_URL)`);
    Deno.exit(1);
  }
  redisUrl = redis.url;
}
const bridge = await start("bridge", ["run", "--allow-net", "--allow-env", "bridge/main.ts"], {
  REDIS_URL: redisUrl,
  PORT: "0",
  HOST: "127.0.0.1",
  UPSTASH_REDIS_REST_TOKEN: token,
});
const nodes = [basePort, basePort + 1];
for (const [i, port] of nodes.entries()) {
  await start(`node${i + 1}`, ["run", "--allow-net", "--allow-env", "main.ts"], {
    PORT: String(port),
    HOST: "127.0.0.1",
    NODE_ID: `node${i + 1}`,
    UPSTASH_REDIS_REST_URL: bridge.url,
    UPSTASH_REDIS_REST_TOKEN: token,
  });
}
console.log(`
cluster ready:
  redis   ${redisUrl}
  bridge  ${bridge.url}  (token ${token})
  node1   http://127.0.0.1:${nodes[0]}
  node2   http://127.0.0.1:${nodes[1]}
try: curl -N 'http://127.0.0.1:${nodes[1]}/events?topic=record:1&user_id=bob'
     curl -X POST http://127.0.0.1:${
  nodes[0]
}/api/broadcast -d '{"topic":"record:1","event":"patch","payload":{"x":1}}'
Ctrl-C stops everything.`);
