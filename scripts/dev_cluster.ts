/**
 * `deno task dev:cluster`: a local cluster to watch presence and broadcasts cross nodes —
 * a `redis-server` (or `REDIS_URL`), the Upstash bridge in front of it, and two Switchboard
 * nodes. Prints every address; Ctrl-C stops everything.
 * @module
 */

const root = new URL("../", import.meta.url);
const token = Deno.env.get("UPSTASH_REDIS_REST_TOKEN") ?? "dev-cluster-token";
const basePort = Number(Deno.env.get("PORT") ?? 8001);
const children: Deno.ChildProcess[] = [];

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Starts a process, prefixes its output, resolves when `ready` appears in it. */
async function start(
  name: string,
  cmd: string,
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
): Promise<void> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, { args, env, cwd: root, stdout: "piped", stderr: "piped" })
      .spawn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      console.error(`${cmd} not found: install it (apt-get install redis-server) or set REDIS_URL`);
      Deno.exit(1);
    }
    throw err;
  }
  children.push(child);
  let seen = false;
  const { promise, resolve } = Promise.withResolvers<void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + text).split("\n");
      rest = lines.pop()!;
      for (const line of lines) {
        console.log(`[${name}] ${line}`);
        if (!seen && ready.test(line)) {
          seen = true;
          resolve();
        }
      }
    }
  };
  pump(child.stdout);
  pump(child.stderr);
  child.status.then((s) => {
    if (!seen) {
      console.error(`${name} exited (code ${s.code}) before it was ready`);
      stopAll(1);
    }
  });
  const timer = setTimeout(() => {
    console.error(`${name} was not ready within 20 s`);
    stopAll(1);
  }, 20_000);
  await promise;
  clearTimeout(timer);
}

function stopAll(code = 0): never {
  for (const child of children) {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
  }
  Deno.exit(code);
}

Deno.addSignalListener("SIGINT", () => stopAll());
Deno.addSignalListener("SIGTERM", () => stopAll());

let redisUrl = Deno.env.get("REDIS_URL");
if (!redisUrl) {
  const port = freePort();
  await start(
    "redis",
    "redis-server",
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
    ],
    {},
    /Ready to accept connections/,
  );
  redisUrl = `redis://127.0.0.1:${port}`;
}
const bridgePort = freePort();
await start("bridge", Deno.execPath(), ["run", "--allow-net", "--allow-env", "bridge/main.ts"], {
  REDIS_URL: redisUrl,
  PORT: String(bridgePort),
  HOST: "127.0.0.1",
  UPSTASH_REDIS_REST_TOKEN: token,
}, /listening/);
const nodes = [basePort, basePort + 1];
for (const [i, port] of nodes.entries()) {
  await start(`node${i + 1}`, Deno.execPath(), [
    "run",
    "--allow-net",
    "--allow-env",
    "main.ts",
  ], {
    ...Deno.env.toObject(),
    PORT: String(port),
    HOST: "127.0.0.1",
    NODE_ID: `node${i + 1}`,
    UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${bridgePort}`,
    UPSTASH_REDIS_REST_TOKEN: token,
  }, /listening on/);
}
console.log(`
cluster ready:
  redis   ${redisUrl}
  bridge  http://127.0.0.1:${bridgePort}  (token ${token})
  node1   http://127.0.0.1:${nodes[0]}
  node2   http://127.0.0.1:${nodes[1]}
try: curl -N 'http://127.0.0.1:${nodes[1]}/events?topic=record:1&user_id=bob'
     curl -X POST http://127.0.0.1:${
  nodes[0]
}/api/broadcast -d '{"topic":"record:1","event":"patch","payload":{"x":1}}'
Ctrl-C stops everything.`);
