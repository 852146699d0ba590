/**
 * `deno task upstash-bridge`: an Upstash-REST-compatible HTTP endpoint in front of a real
 * `redis-server`, so `@upstash/redis` works without an Upstash account.
 *
 * Environment: `UPSTASH_REDIS_REST_TOKEN` (required), `REDIS_URL` (default
 * `redis://127.0.0.1:6379`), `PORT` (default 8079; 0 picks a free port), `HOST` (default
 * 127.0.0.1). Prints `upstash-bridge listening on http://HOST:PORT` once it accepts requests.
 * @module
 */
import { createBridge } from "./bridge.ts";
import { BridgeEnvError, parseBridgeEnv } from "./config.ts";
import { redactUrl } from "./redis.ts";

export { type Bridge, type BridgeOptions, createBridge } from "./bridge.ts";

function readEnv(): Record<string, string | undefined> {
  return {
    REDIS_URL: Deno.env.get("REDIS_URL"),
    PORT: Deno.env.get("PORT"),
    HOST: Deno.env.get("HOST"),
    UPSTASH_REDIS_REST_TOKEN: Deno.env.get("UPSTASH_REDIS_REST_TOKEN"),
  };
}

/** Runs the bridge until SIGINT/SIGTERM. Exits with code 1 on an invalid environment or a
 * port it cannot listen on. */
export async function main(): Promise<void> {
  let env;
  try {
    env = parseBridgeEnv(readEnv());
  } catch (error) {
    if (!(error instanceof BridgeEnvError)) throw error;
    console.error(error.message);
    Deno.exit(1);
  }
  // Never crash on a stray rejection or error from a socket: log it and keep serving.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    console.error("upstash-bridge: unhandled rejection:", event.reason);
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    console.error("upstash-bridge: uncaught error:", event.error);
  });

  const bridge = createBridge({ redisUrl: env.redisUrl, token: env.token });
  let server: Deno.HttpServer;
  try {
    server = Deno.serve({
      hostname: env.hostname,
      port: env.port,
      onListen: ({ hostname, port }) => {
        console.log(
          `upstash-bridge listening on http://${hostname}:${port} -> ${redactUrl(env.redisUrl)}`,
        );
      },
    }, bridge.fetch);
  } catch (error) {
    // Staying up without listening would look healthy to a supervisor: exit, and say why.
    const reason = error instanceof Deno.errors.AddrInUse
      ? `port ${env.port} on ${env.hostname} is already in use (set PORT to a free port)`
      : String(error);
    console.error(`upstash-bridge: cannot listen: ${reason}`);
    await bridge.close();
    Deno.exit(1);
  }

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => Deno.exit(0), 3000);
    await bridge.close();
    await server.shutdown();
    Deno.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, stop);
  await server.finished;
}

if (import.meta.main) await main();
