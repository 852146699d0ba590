/**
 * Switchboard's entry for `deno serve` (only a default export; `deno task start:parallel` runs
 * it with `--parallel`, one worker per core, `DENO_JOBS` to choose). Every worker is a node:
 * without Redis the workers of the process act as one through a `BroadcastChannel`
 * (broadcasts, presence, history and resume whichever worker a client lands on); with Redis
 * each worker is a node of the cluster. On SIGTERM/SIGINT every worker drains (WebSockets 1012,
 * SSE `retry:`, presences leave, goodbye to the others), and the process exits 0 once every
 * worker has said goodbye (at most 8 s).
 * @module
 */
import { channels } from "./channels/mod.ts";
import {
  CONFIG_KEYS,
  ConfigError,
  createLogger,
  createSwitchboard,
  loadConfig,
} from "./lib/mod.ts";
import { denoRuntime, readEnv } from "./lib/runtime/deno.ts";
import { createApp } from "./routes/app.ts";

/** The channel the workers of one process share (several apps: set `REDIS_PREFIX`). */
const _WORKERS_CHANNEL = "switchboard-workers";

function _configure() {
  try {
    const config = loadConfig(readEnv(CONFIG_KEYS));
    // Workers share NODE_ID's prefix; each is a node of its own (its streams, its presences).
    const worker = crypto.randomUUID().slice(0, 6);
    return { ...config, nodeId: `${config.nodeId.slice(0, 56)}.w${worker}` };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`switchboard: ${err.message}\nFix the variables above and start again.`);
    Deno.exit(1);
  }
}

const config = _configure();
const log = createLogger(config.logLevel);
const switchboard = createSwitchboard({
  config,
  channels,
  timers: denoRuntime.timers,
  log,
  workersChannel: `${_WORKERS_CHANNEL}:${config.redisPrefix}`,
});
const app = createApp(switchboard, { upgrade: denoRuntime.upgrade });

// The workers of this process know each other on a channel of their own, so that on a stop
// each exits only once every worker has drained: the first to exit ends the process.
const workers = new BroadcastChannel(`${_WORKERS_CHANNEL}:${config.redisPrefix}:workers`);
const peers = new Set<string>();
const drained = new Set<string>();
let changed: (() => void) | undefined;
workers.onmessage = (event) => {
  const { hello, drained: done } = event.data as { hello?: string; drained?: string };
  if (hello && !peers.has(hello)) {
    peers.add(hello);
    workers.postMessage({ hello: config.nodeId });
  }
  if (done) drained.add(done);
  changed?.();
};
workers.postMessage({ hello: config.nodeId });

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  const deadline = setTimeout(() => {
    log.warn("graceful shutdown took over 8 s; exiting");
    Deno.exit(0);
  }, 8_000);
  await switchboard.close();
  drained.add(config.nodeId);
  workers.postMessage({ drained: config.nodeId });
  while ([...peers].some((peer) => !drained.has(peer))) {
    await new Promise<void>((resolve) => changed = resolve);
  }
  clearTimeout(deadline);
  Deno.exit(0);
}
Deno.addSignalListener("SIGINT", shutdown);
Deno.addSignalListener("SIGTERM", shutdown);
log.info("worker started", {
  node: config.nodeId,
  broker: switchboard.brokerState().kind,
});

export default { fetch: app.fetch };
