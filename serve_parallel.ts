/**
 * Switchboard's entry for `deno serve --parallel` (`deno task start:parallel` runs it: one
 * isolate per core, `DENO_JOBS` to choose; `serve.ts` is the plain `deno serve` / Deno Deploy
 * entry, without signal handlers, whose isolates would not know each other). Every isolate runs a node:
 * without Redis the isolates' nodes act as one server through a `BroadcastChannel`
 * (broadcasts, presence, history and resume whichever isolate a client lands on); with Redis
 * each isolate is a node of the cluster. On SIGTERM/SIGINT every isolate drains (WebSockets 1012,
 * SSE `retry:`, presences leave, goodbye to the others), and the process exits 0 once every
 * isolate has said goodbye (at most 8 s). `/healthz` and `/metrics` answer for every isolate
 * (sessions summed, the isolates listed; every sample labelled `worker`).
 * @module
 */
import { channels } from "./channels/mod.ts";
import { createApp, createLogger, createSwitchboard } from "@switchboard/switchboard";
import {
  configFromEnvOrExit,
  denoRuntime,
  exitGracefullyOnSignals,
  guardProcess,
} from "@switchboard/switchboard/deno";
import { IsolateGroup, mergeIsolateMetrics } from "./lib/cluster/isolates.ts";

/** The channel the isolates of one process share (several apps: set `REDIS_PREFIX`). */
const _WORKERS_CHANNEL = "switchboard-workers";

function _configure() {
  const config = configFromEnvOrExit();
  // Isolates share NODE_ID's prefix; each is a node of its own (its streams, its presences).
  const worker = crypto.randomUUID().slice(0, 6);
  return { ...config, nodeId: `${config.nodeId.slice(0, 56)}.w${worker}` };
}

const config = _configure();
const log = createLogger(config.logLevel);
const switchboard = createSwitchboard({
  config,
  channels,
  timers: denoRuntime.timers,
  log,
  isolatesChannel: `${_WORKERS_CHANNEL}:${config.redisPrefix}`,
});
const app = createApp(switchboard, { upgrade: denoRuntime.upgrade, pages: true });
// Issue 21: what escapes every handler is logged and counted, not fatal to the worker.
guardProcess(switchboard);

// The isolates know each other: they stop together, and the operations endpoints answer for all.
const group = new IsolateGroup({
  name: `${_WORKERS_CHANNEL}:${config.redisPrefix}:group`,
  self: config.nodeId,
  answer: async (path) => await (await app.fetch(new Request(`http://worker${path}`))).text(),
});

/** `/healthz` of the whole process: every isolate's answer, sessions summed. */
async function health(): Promise<Response> {
  const answers = [...(await group.gather("/healthz")).values()].map((t) => JSON.parse(t));
  const [own] = answers;
  const sessions = answers.reduce((sum, w) => sum + w.sessions, 0);
  const body = { ...own, sessions, workers: answers };
  return Response.json(body, { headers: { "cache-control": "no-store" } });
}

/** `/metrics` of the whole process: every isolate's samples, labelled `worker`. */
async function metrics(): Promise<Response> {
  return new Response(mergeIsolateMetrics(await group.gather("/metrics")), {
    headers: {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
      "cache-control": "no-store",
    },
  });
}

function fetch(request: Request): Response | Promise<Response> {
  if (request.method === "GET") {
    const { pathname } = new URL(request.url);
    if (pathname === "/healthz") return health();
    if (pathname === "/metrics") return metrics();
  }
  return app.fetch(request);
}

exitGracefullyOnSignals(async () => {
  await switchboard.close();
  await group.drainedAll();
}, log);
log.info("worker started", {
  node: config.nodeId,
  broker: switchboard.brokerState().kind,
});

export default { fetch };
