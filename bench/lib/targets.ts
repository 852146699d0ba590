/**
 * The three servers of every scenario: Switchboard itself (`main.ts`, spawned the way users run
 * it), the raw Deno reference and the Socket.IO 4 reference on Node, which the bench installs
 * with npm into bench/.socketio on first use.
 * @module
 */
import {
  type ListeningProcess as ServerProcess,
  run,
  spawnListening,
} from "../../scripts/support/process.ts";

/** Which server. */
export type TargetName = "switchboard" | "raw" | "socketio";

/** Every target, in table order. */
export const TARGETS: TargetName[] = ["switchboard", "raw", "socketio"];

/** Column titles. */
export const LABELS: Record<TargetName, string> = {
  switchboard: "Switchboard",
  raw: "raw Deno",
  socketio: "Socket.IO",
};

/** What a scenario measures: where clients connect, where it publishes, whose CPU counts. */
export interface Subject {
  /** Result key: a {@link TargetName}, or e.g. `switchboard_2node`. */
  key: string;
  label: string;
  /** Where the clients connect. */
  host: string;
  port: number;
  /** What the load generator speaks to it. */
  proto: "phoenix" | "eio";
  /** WebSocket path; `{i}` is the client index. `userId` adds the `user_id` connect param. */
  wsPath(userId?: string): string;
  /** SSE path for a topic (not offered by Socket.IO). */
  ssePath?: (topic: string) => string;
  /** `POST` target of broadcasts. */
  broadcastUrl: string;
  /** The server processes whose CPU time is the subject's. */
  pids: number[];
}

/** A running target. */
export interface Target extends ServerProcess, Subject {
  kind: TargetName;
}

/** Project root (where main.ts lives). */
export const ROOT = new URL("../../", import.meta.url).pathname;
const _SIO_DIR = `${ROOT}bench/.socketio`;

/** What `ensureSocketIo` found or installed. */
export interface SocketIoInstall {
  ok: boolean;
  version?: string;
  error?: string;
}

/** Installs socket.io 4 into bench/.socketio with npm unless it is already there. */
export async function ensureSocketIo(log: (s: string) => void): Promise<SocketIoInstall> {
  const pkg = `${_SIO_DIR}/node_modules/socket.io/package.json`;
  const version = () => JSON.parse(Deno.readTextFileSync(pkg)).version as string;
  try {
    return { ok: true, version: version() };
  } catch { /* not installed yet */ }
  log("installing socket.io@4 with npm into bench/.socketio (first run only)…");
  const out = await run("npm", [
    "install",
    "--prefix",
    _SIO_DIR,
    "socket.io@4",
    "--no-audit",
    "--no-fund",
    "--loglevel=error",
  ], { timeoutMs: 180_000 });
  try {
    return { ok: true, version: version() };
  } catch {
    return { ok: false, error: `npm install failed (code ${out.code}): ${out.output.slice(-500)}` };
  }
}

/** Env that keeps a single Switchboard node on the memory broker with an open API. */
const _SINGLE_NODE = { UPSTASH_REDIS_REST_URL: "", UPSTASH_REDIS_REST_TOKEN: "", API_TOKEN: "" };

/** A server that does not stop on SIGTERM within this long is killed. */
const _STOP_GRACE_MS = 5_000;

/** Starts a target on a free loopback port. `env` only applies to Switchboard. */
export async function startTarget(
  kind: TargetName,
  env: Record<string, string> = {},
): Promise<Target> {
  const base = { PORT: "0", HOST: "127.0.0.1" };
  // e.g. BENCH_SERVER_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the Deno servers
  const flags = Deno.env.get("BENCH_SERVER_FLAGS")?.split(" ").filter(Boolean) ?? [];
  let server: ServerProcess;
  if (kind === "switchboard") {
    server = await spawnListening({
      name: "switchboard",
      args: ["run", "--allow-net", "--allow-env", ...flags, "main.ts"],
      env: { ...base, LOG_LEVEL: "warn", ..._SINGLE_NODE, ...env },
      stopGraceMs: _STOP_GRACE_MS,
    });
  } else if (kind === "raw") {
    server = await spawnListening({
      name: "raw",
      args: ["run", "--allow-net", "--allow-env", ...flags, "bench/reference/raw_deno.ts"],
      env: base,
      stopGraceMs: _STOP_GRACE_MS,
    });
  } else {
    server = await spawnListening({
      name: "socketio",
      command: "node",
      args: ["bench/reference/socketio_server.mjs"],
      env: base,
      stopGraceMs: _STOP_GRACE_MS,
    });
  }
  const phoenix = kind !== "socketio";
  return {
    ...server,
    key: kind,
    label: LABELS[kind],
    pids: [server.pid],
    kind,
    proto: phoenix ? "phoenix" : "eio",
    wsPath: (userId) =>
      phoenix
        ? `/socket/websocket?vsn=2.0.0${userId ? `&user_id=${userId}` : ""}`
        : "/socket.io/?EIO=4&transport=websocket",
    ssePath: phoenix ? (topic) => `/events?topic=${encodeURIComponent(topic)}` : undefined,
    broadcastUrl: `${server.url}/api/broadcast`,
  };
}
