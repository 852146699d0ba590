/**
 * Switchboard for `deno serve` and Deno Deploy: the same node as `main.ts`, with nothing but a
 * default export (no listening of its own, no signal handlers, no `Deno.exit`), so
 * `deno serve serve.ts` needs no environment-variable trick. On the request path it uses web
 * APIs and `Deno.upgradeWebSocket` only; timers are plain (`deno serve` and Deploy own the
 * process's lifetime, so nothing needs unref'ing). Run it with `deno task serve`; on Deno
 * Deploy, make this file the entrypoint and set `UPSTASH_REDIS_REST_URL`/`_TOKEN` (docs/deployment.md,
 * "Deno Deploy").
 * @module
 */
import { channels } from "./channels/mod.ts";
import {
  CONFIG_KEYS,
  ConfigError,
  createApp,
  createLogger,
  createSwitchboard,
  loadConfig,
  plainTimers,
  warnDevDefaults,
} from "@switchboard/switchboard";
import { denoRuntime, guardProcess, readEnv } from "@switchboard/switchboard/deno";

function _configure() {
  try {
    return loadConfig(readEnv(CONFIG_KEYS));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Thrown, not Deno.exit: the host (deno serve, Deploy) reports it and stops the isolate.
    throw new Error(`switchboard: ${err.message}. Fix the environment variables and redeploy.`);
  }
}

const config = _configure();
const log = createLogger(config.logLevel);
const switchboard = createSwitchboard({ config, channels, timers: plainTimers, log });
warnDevDefaults(config, log);
const app = createApp(switchboard, { upgrade: denoRuntime.upgrade, pages: true });
// Issue 21: what escapes every handler is logged and counted, not fatal.
guardProcess(switchboard);

export default { fetch: app.fetch } satisfies Deno.ServeDefaultExport;
