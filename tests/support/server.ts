/**
 * Starts the real server (`main.ts`) as a subprocess on a free port, the way users run it.
 * @module
 */

import {
  type ListeningProcess,
  run,
  spawnListening as spawn,
  type SpawnOptions as SharedSpawnOptions,
} from "../../scripts/support/process.ts";

/** A running server process (see scripts/support/process.ts). */
export type ServerProcess = ListeningProcess;

const _root = new URL("../../", import.meta.url);

/**
 * Spawns `deno run main.ts` with `env` (plus PORT=0, HOST=127.0.0.1) and waits until it
 * listens; `wrapper` is a command prefix (`prlimit …`), `denoFlags` extra permissions.
 */
export function startServer(
  env: Record<string, string> = {},
  { timeoutMs = 20_000, wrapper = [] as string[], denoFlags = [] as string[] } = {},
): Promise<ServerProcess> {
  return spawnListening({
    args: [
      "run",
      ...(denoFlags.includes("--allow-all") ? [] : ["--allow-net", "--allow-env"]),
      ...denoFlags,
      "main.ts",
    ],
    env: { PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", ...env },
    timeoutMs,
    wrapper,
  });
}

/** What {@link spawnListening} starts: `deno` with `args` (see scripts/support/process.ts). */
export type SpawnOptions = Omit<SharedSpawnOptions, "command" | "host">;

/**
 * Spawns a `deno` process in the repository's root that prints `listening on
 * http://<host>:<port>` once it serves, waits for that line, and addresses it on 127.0.0.1.
 */
export function spawnListening(options: SpawnOptions): Promise<ServerProcess> {
  return spawn({ name: "server", ...options, host: "127.0.0.1" });
}

/** Runs `main.ts` with `env` and returns how it ended (for start-up failures). */
export function runServerExpectingExit(
  env: Record<string, string>,
): Promise<{ code: number; output: string }> {
  return run(Deno.execPath(), ["run", "--allow-net", "--allow-env", "main.ts"], {
    cwd: _root,
    env: { HOST: "127.0.0.1", ...env },
    timeoutMs: 20_000,
  });
}

/** The `deno task start:parallel` command line as deno.json has it, without `deno`. */
export async function parallelTaskArgs(): Promise<string[]> {
  const json = JSON.parse(await Deno.readTextFile(new URL("deno.json", _root)));
  const [deno, ...args] = (json.tasks["start:parallel"] as string).split(" ");
  if (deno !== "deno") throw new Error(`start:parallel does not start with deno: ${deno}`);
  return args;
}
