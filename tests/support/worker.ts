/**
 * Starts the Cloudflare Worker locally on workerd the way a user does, `deno task dev:worker`
 * (scripts/dev_worker.ts: bundle, then the pinned `wrangler dev`), on a free port.
 * @module
 */
import { type ServerProcess, spawnListening } from "./server.ts";

const _wrangler = new URL("../../deploy/cloudflare/node_modules/.bin/wrangler", import.meta.url);

/**
 * Spawns `deno task dev:worker` with `env` as the Worker's bindings (plus PORT=0,
 * HOST=127.0.0.1) and waits until `/healthz` answers. Stop it with `stop()` (SIGTERM: the
 * script stops wrangler and workerd; SIGKILL would leave them running).
 */
export async function startWorker(
  env: Record<string, string> = {},
  { timeoutMs = 60_000 } = {},
): Promise<ServerProcess> {
  try {
    await Deno.stat(_wrangler);
  } catch {
    // Tests use no network: the pinned wrangler must be installed beforehand (.ci/run does).
    throw new Error(
      "wrangler is not installed: run `npm ci --prefix deploy/cloudflare` (CI: .ci/run does it)",
    );
  }
  return await spawnListening({
    args: ["task", "dev:worker"],
    env: { PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", ...env },
    timeoutMs,
  });
}
