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
import {
  createApp,
  createLogger,
  createSwitchboard,
  warnDevDefaults,
} from "@switchboard/switchboard";
import {
  configFromEnvOrExit,
  denoRuntime,
  exitGracefullyOnSignals,
  guardProcess,
} from "@switchboard/switchboard/deno";
import { IsolateGroup, mergeIsolateMetrics } from "./lib/cluster/isolates.ts";

/** The channel the isolates of one process share (several apps: set `REDIS_PREFIX`). */
const _ISOLATES_CHANNEL = "switchboard-isolates";

function _configure() {
  const config = configFromEnvOrExit();
  // Isolates share NODE_ID's prefix; each is a node of its own (its streams, its presences).
  const isolate = crypto.randomUUID().slice(0, 6);
  return { ...config, nodeId: `${config.nodeId.slice(0, 56)}.i${isolate}` };
}

const config = _configure();
const log = createLogger(config.logLevel);
const switchboard = createSwitchboard({
  config,
  channels,
  timers: denoRuntime.timers,
  log,
  isolatesChannel: `${_ISOLATES_CHANNEL}:${config.redisPrefix}`,
});
const app = createApp(switchboard, { upgrade: denoRuntime.upgrade, pages: true });
// Each isolate says it (a short API_TOKEN is one line per isolate): they share no log.
warnDevDefaults(config, log);
// Issue 21: what escapes every handler is logged and counted, not fatal to the isolate.
guardProcess(switchboard);

// The isolates know each other: they stop together, and the operations endpoints answer for all.
const group = new IsolateGroup({
  name: `${_ISOLATES_CHANNEL}:${config.redisPrefix}:group`,
  self: config.nodeId,
  answer: async (path) => await (await app.fetch(new Request(`http://isolate${path}`))).text(),
});

/** `/healthz` of the whole process: every isolate's answer, sessions summed. */
async function health(): Promise<Response> {
  const answers = [...(await group.gather("/healthz")).values()].map((t) => JSON.parse(t));
  const [own] = answers;
  const sessions = answers.reduce((sum, isolate) => sum + isolate.sessions, 0);
  // `workers`: Deno's word for them, kept in this response as in the `/metrics` label.
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
log.info("isolate started", {
  node: config.nodeId,
  broker: switchboard.brokerState().kind,
});

export default { fetch };
