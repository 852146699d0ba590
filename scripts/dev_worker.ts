/**
 * `deno task dev:worker`: runs the Cloudflare Worker locally on Cloudflare's runtime, workerd,
 * through the pinned `wrangler dev` (deploy/cloudflare/package.json; installed with `npm ci` on
 * first use). It bundles the Worker, hands the Switchboard variables of this environment
 * (`API_TOKEN`, `SOCKET_SECRET`, `UPSTASH_REDIS_REST_URL`/`_TOKEN`, `SWITCHBOARD_NODES`, …) to
 * the Worker's bindings, listens on `PORT` (default 8787) and `HOST` (default 0.0.0.0), and
 * prints `switchboard worker listening on http://…` once `/healthz` answers. `PORT=0` picks a
 * free port. `WRANGLER_LOG=warn` hides wrangler's line per request. Ctrl-C (SIGINT) or SIGTERM
 * stops wrangler and workerd.
 * @module
 */
import { CONFIG_KEYS } from "../lib/config.ts";
import { buildWorker } from "./build_worker.ts";
import { freePort } from "./support/process.ts";
import { CLOUDFLARE_DIR, ensureWrangler, WRANGLER } from "./support/wrangler.ts";

/** Variables the Worker reads besides the server's own. */
const _WORKER_KEYS = ["SWITCHBOARD_NODES"];
/** PORT and HOST are wrangler's to listen on, not the Worker's. */
const _NOT_BINDINGS = new Set(["PORT", "HOST"]);
const _READY_TIMEOUT_MS = 60_000;

/** One `KEY="value"` line of a dotenv file, escaped for wrangler's dotenv parser. */
function _dotenvLine(key: string, value: string): string {
  if (/[\r\n]/.test(value)) {
    throw new Error(`dev:worker: ${key} contains a line break, which a binding cannot carry here`);
  }
  // Single quotes: dotenv takes the value literally (no escapes, no expansion).
  if (!value.includes("'")) return `${key}='${value}'`;
  if (!value.includes('"') && !value.includes("\\")) return `${key}="${value}"`;
  throw new Error(`dev:worker: ${key} mixes quotes and backslashes; pass it through wrangler.toml`);
}

/** The Worker's bindings from this environment: every set Switchboard variable. */
export function bindingsFromEnv(get: (key: string) => string | undefined): string {
  const lines: string[] = [];
  for (const key of [...CONFIG_KEYS, ..._WORKER_KEYS]) {
    if (_NOT_BINDINGS.has(key)) continue;
    const value = get(key);
    if (value !== undefined) lines.push(_dotenvLine(key, value));
  }
  return lines.join("\n") + "\n";
}

function _isAnyAddress(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}

async function _waitHealthy(url: string, exited: Promise<unknown>): Promise<void> {
  const deadline = Date.now() + _READY_TIMEOUT_MS;
  let gone = false;
  exited.then(() => gone = true);
  while (!gone && Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
      await res.body?.cancel();
      if (res.ok) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(gone ? "wrangler exited before /healthz answered" : "/healthz did not answer");
}

if (import.meta.main) {
  const env = (key: string) => Deno.env.get(key);
  const port = env("PORT") ?? "8787";
  const host = env("HOST") ?? "0.0.0.0";
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    console.error(`dev:worker: PORT=${port} is not a port (0-65535)`);
    Deno.exit(1);
  }
  // wrangler has no way to report a port it picked when its log level hides "Ready on", so
  // PORT=0 is resolved here (a port the kernel just handed out; wrangler binds it right away).
  const listenPort = port === "0" ? String(freePort(host)) : port;
  // Per run: the bundle (wrangler reloads when it changes, so runs must not share one), the
  // bindings (a private file, not the command line: ps shows arguments), the local state.
  const dir = await Deno.makeTempDir({ prefix: "switchboard-worker-" });
  let bundle: string;
  try {
    await ensureWrangler({ who: "dev:worker" });
    // Its own folder: wrangler watches the bundle's folder and reloads on any change there.
    bundle = await buildWorker(`${dir}/bundle/worker.js`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    Deno.exit(1);
  }
  const envFile = `${dir}/bindings.env`;
  await Deno.writeTextFile(envFile, bindingsFromEnv(env), { mode: 0o600 });
  const child = new Deno.Command(WRANGLER, {
    args: [
      "dev",
      bundle,
      "--config",
      new URL("wrangler.toml", CLOUDFLARE_DIR).pathname,
      "--env-file",
      envFile,
      "--port",
      listenPort,
      "--ip",
      host,
      "--inspector-port",
      "0",
      "--persist-to",
      `${dir}/state`,
      "--show-interactive-dev-session=false",
    ],
    cwd: dir,
    env: {
      // Nothing leaves the machine: no telemetry, no update check, no Request.cf download.
      WRANGLER_SEND_METRICS: "false",
      WRANGLER_HIDE_BANNER: "true",
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      NO_COLOR: "1",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);

  const pump = async (stream: ReadableStream<Uint8Array>, out: typeof Deno.stdout) => {
    for await (const chunk of stream) await out.write(chunk);
  };
  const pumps = Promise.all([pump(child.stdout, Deno.stdout), pump(child.stderr, Deno.stderr)]);
  const exited = child.status;
  try {
    const local = `http://${_isAnyAddress(host) ? "127.0.0.1" : host}:${listenPort}`;
    await _waitHealthy(local, exited);
    // Tests and scripts read the port from this line (like main.ts's).
    console.log(
      `switchboard worker listening on http://${host}:${listenPort} (workerd, wrangler dev)`,
    );
  } catch (err) {
    console.error(`dev:worker: ${err instanceof Error ? err.message : err}`);
    stop();
  }
  const status = await exited;
  await pumps;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  Deno.exit(stopping ? 0 : status.code);
}
