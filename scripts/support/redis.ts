/**
 * Real Redis for the tests, the bench and `deno task dev:cluster`: {@link startRedis} (a
 * throwaway `redis-server`), {@link startBridge} (`bridge/main.ts`, the Upstash REST bridge, as a
 * subprocess) and Redis' own counters ({@link redisStats}).
 *
 * Every wait is bounded (10 s by default) and fails with a message that includes the process
 * output. Both handles are `AsyncDisposable`, so `await using` cleans up.
 *
 * Needs `--allow-run --allow-net --allow-read --allow-env`.
 *
 * @example
 * ```ts
 * await using redis = await startRedis();
 * await using bridge = await startBridge({ redisUrl: redis.url, token: "t" });
 * const client = new Redis({ url: bridge.url, token: "t" });
 * ```
 * @module
 */

/** Default bound of every wait in this module. */
export const DEFAULT_TIMEOUT_MS = 10_000;

import { freePort, OutputLog, registerChild, sleep, spawnListening } from "./process.ts";

/** A running (or stopped) `redis-server` process. */
export interface RedisServer extends AsyncDisposable {
  /** TCP port; the same across {@link RedisServer.restart}. */
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** True while the process runs. */
  readonly running: boolean;
  /** SIGTERM and wait for exit. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL (a crash, no shutdown) and wait for exit. Idempotent. */
  kill(): Promise<void>;
  /** Start again on the same port (stops it first if running); waits for PING. */
  restart(): Promise<void>;
  /** Everything the process printed so far (last 64 KiB). */
  output(): string;
}

/** Options of {@link startRedis}. */
export interface StartRedisOptions {
  /** Port to use; default: a free one. */
  port?: number;
  /** Extra `redis-server` arguments, e.g. `["--replicaof", "127.0.0.1", "6380"]`. */
  args?: string[];
  /** Give up waiting for PING after this long. */
  timeoutMs?: number;
}

/** Sends `PING` over a raw TCP connection; true on `+PONG`. Bounded by `timeoutMs`. */
export async function pingRedis(port: number, timeoutMs = 1000): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const attempt = (async () => {
      conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode("PING\r\n"));
      const buffer = new Uint8Array(64);
      const n = await conn.read(buffer);
      return n !== null && new TextDecoder().decode(buffer.subarray(0, n)).startsWith("+PONG");
    })();
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    return await Promise.race([attempt.catch(() => false), timeout]);
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch {
      // already closed
    }
  }
}

function redisBinary(): string {
  return Deno.env.get("REDIS_SERVER_BIN") ?? "redis-server";
}

function spawnRedis(port: number, args: string[]): { child: Deno.ChildProcess; log: OutputLog } {
  let child: Deno.ChildProcess;
  try {
    const base = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"];
    child = new Deno.Command(redisBinary(), {
      args: [...base, "no", ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        `redis-server not found (looked for '${redisBinary()}' on PATH). ` +
          "Install it with `apt-get install redis-server` (or set REDIS_SERVER_BIN).",
      );
    }
    throw error;
  }
  // Killed with the rest on Ctrl-C, as spawnListening's processes are.
  const unregister = registerChild(() => child.kill("SIGKILL"));
  child.status.then(unregister, unregister);
  return { child, log: new OutputLog([child.stdout, child.stderr]) };
}

/**
 * Starts `redis-server --save "" --appendonly no` on a free port (or `options.port`) and waits
 * until it answers PING. Throws a clear error if `redis-server` is missing, exits early, or
 * does not answer within `timeoutMs`.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const args = options.args ?? [];
  let port = options.port ?? freePort();
  let current: { child: Deno.ChildProcess; log: OutputLog; exited: boolean } | undefined;
  let status: Promise<Deno.CommandStatus> | undefined;

  async function launch(): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const spawned = spawnRedis(port, args);
    const entry = { ...spawned, exited: false };
    current = entry;
    status = spawned.child.status.then(async (s) => {
      entry.exited = true;
      await spawned.log.done;
      return s;
    });
    while (Date.now() < deadline) {
      if (entry.exited) {
        const s = await status;
        throw new Error(
          `redis-server on port ${port} exited with code ${s.code} before answering PING:\n` +
            spawned.log.text,
        );
      }
      if (await pingRedis(port, 500)) return;
      await sleep(50);
    }
    await terminate("SIGKILL");
    throw new Error(
      `redis-server on port ${port} did not answer PING within ${timeoutMs} ms:\n` +
        spawned.log.text,
    );
  }

  async function terminate(signal: Deno.Signal): Promise<void> {
    if (!current || !status) return;
    if (!current.exited) {
      try {
        current.child.kill(signal);
      } catch {
        // exited in the meantime
      }
    }
    await status;
  }

  for (let attempt = 1;; attempt++) {
    try {
      await launch();
      break;
    } catch (error) {
      // Another process may have taken the free port between freePort() and the bind.
      const portTaken = /Address already in use/i.test(String(error));
      if (!portTaken || options.port !== undefined || attempt >= 3) throw error;
      port = freePort();
    }
  }

  const server: RedisServer = {
    get port() {
      return port;
    },
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    get running() {
      return current !== undefined && !current.exited;
    },
    stop: () => terminate("SIGTERM"),
    kill: () => terminate("SIGKILL"),
    async restart() {
      await terminate("SIGTERM");
      await launch();
    },
    output: () => current?.log.text ?? "",
    [Symbol.asyncDispose]: () => terminate("SIGTERM"),
  };
  return server;
}

/** A running `bridge/main.ts` subprocess. */
export interface BridgeProcess extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`, pass as `url` to `new Redis({ url, token })`. */
  readonly url: string;
  /** The port the bridge listens on. */
  readonly port: number;
  /** The token it was started with. */
  readonly token: string;
  /** True while the process runs. */
  readonly running: boolean;
  /** SIGTERM (graceful) and wait for exit. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. Idempotent. */
  kill(): Promise<void>;
  /** Everything the process printed so far (last 64 KiB). */
  output(): string;
}

/** Options of {@link startBridge}. */
export interface StartBridgeOptions {
  /** `REDIS_URL` of the bridge. */
  redisUrl: string;
  /** `UPSTASH_REDIS_REST_TOKEN` of the bridge. */
  token: string;
  /** Port to listen on; default 0 (the bridge picks a free port and prints it). */
  port?: number;
  /** Also wait until a `PING` through the bridge succeeds (Redis reachable). Default true. */
  waitForRedis?: boolean;
  /** Give up after this long. */
  timeoutMs?: number;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

/**
 * Runs `deno run --allow-net --allow-env bridge/main.ts` (what `deno task upstash-bridge`
 * runs), waits until it listens and, unless `waitForRedis: false`, until `PING` through it
 * succeeds. Throws with the process output on failure or after `timeoutMs`.
 */
export async function startBridge(options: StartBridgeOptions): Promise<BridgeProcess> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  // 1. Wait for "listening on http://127.0.0.1:<port>".
  const child = await spawnListening({
    name: "bridge/main.ts",
    args: ["run", "--allow-net", "--allow-env", "bridge/main.ts"],
    env: {
      ...options.env,
      REDIS_URL: options.redisUrl,
      UPSTASH_REDIS_REST_TOKEN: options.token,
      PORT: String(options.port ?? 0),
      HOST: "127.0.0.1",
    },
    timeoutMs,
    host: "127.0.0.1",
  });
  let exited = false;
  void child.process.status.then(() => exited = true);
  const terminate = async (signal: Deno.Signal) => {
    await (signal === "SIGKILL" ? child.kill() : child.stop());
  };
  const failure = async (reason: string) => {
    await terminate("SIGKILL");
    return new Error(`bridge/main.ts ${reason}:\n${child.output()}`);
  };

  // 2. Wait for a successful PING through the bridge.
  const url = child.url;
  if (options.waitForRedis ?? true) {
    let last = "";
    for (;;) {
      try {
        const response = await fetch(url, {
          method: "POST",
          headers: { authorization: `Bearer ${options.token}` },
          body: '["PING"]',
        });
        last = await response.text();
        if (response.ok) break;
      } catch (error) {
        last = String(error);
      }
      if (exited) throw await failure("exited while waiting for Redis");
      if (Date.now() > deadline) {
        throw await failure(`could not reach Redis within ${timeoutMs} ms (last answer: ${last})`);
      }
      await sleep(50);
    }
  }

  return {
    url,
    port: child.port,
    token: options.token,
    get running() {
      return !exited;
    },
    stop: () => terminate("SIGTERM"),
    kill: () => terminate("SIGKILL"),
    output: () => child.output(),
    [Symbol.asyncDispose]: () => terminate("SIGTERM"),
  };
}

/** What {@link redisStats} reads from `INFO`. */
export interface RedisStats {
  /** Calls per command (lower case), from `INFO commandstats`, without the reader's own. */
  calls: Record<string, number>;
  /** Every call counted in {@link RedisStats.calls}. */
  totalCalls: number;
  /** `total_net_output_bytes`: everything Redis has written to its clients. */
  netOutputBytes: number;
}

/** The connection-management commands the reader itself sends; not counted. */
const _OWN_COMMANDS = new Set(["info", "client", "hello", "select", "scan", "pttl", "type"]);

/** Reads Redis' own counters (`INFO commandstats` and `INFO stats`) over its own connection. */
export async function redisStats(url: string): Promise<RedisStats> {
  const { createClient } = await import("redis");
  const client = createClient({ url, RESP: 2 });
  await client.connect();
  try {
    const text = String(await client.info("commandstats")) + String(await client.info("stats"));
    const calls: Record<string, number> = {};
    let totalCalls = 0;
    for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      const name = match[1].toLowerCase();
      if (_OWN_COMMANDS.has(name.split("|")[0])) continue;
      calls[name] = Number(match[2]);
      totalCalls += Number(match[2]);
    }
    const output = /^total_net_output_bytes:(\d+)/m.exec(text);
    return { calls, totalCalls, netOutputBytes: Number(output?.[1] ?? 0) };
  } finally {
    await client.quit().catch(() => {});
  }
}

/** Every key under `prefix` with its remaining lifetime in ms (-1: none, never expires). */
export async function redisKeyLifetimes(url: string, prefix: string): Promise<Map<string, number>> {
  const { createClient } = await import("redis");
  const client = createClient({ url, RESP: 2 });
  await client.connect();
  try {
    const lifetimes = new Map<string, number>();
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
      for (const key of ([] as string[]).concat(keys)) {
        lifetimes.set(key, Number(await client.pTTL(key)));
      }
    }
    return lifetimes;
  } finally {
    await client.quit().catch(() => {});
  }
}
