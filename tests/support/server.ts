/**
 * Starts the real server (`main.ts`) as a subprocess on a free port, the way users run it.
 * @module
 */

import {
  type ListeningProcess,
  run,
  spawnListening as spawn,
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

/** What {@link spawnListening} starts. */
export interface SpawnOptions {
  /** Arguments of `deno` (run in the repository's root). */
  args: string[];
  env: Record<string, string>;
  timeoutMs: number;
  /** A command that runs deno (e.g. `prlimit --nofile=512 --`); none by default. */
  wrapper?: string[];
}

/**
 * Spawns a `deno` process in the repository's root that prints `listening on
 * http://<host>:<port>` once it serves, waits for that line, and addresses it on 127.0.0.1.
 */
export function spawnListening(options: SpawnOptions): Promise<ServerProcess> {
  return spawn({ ...options, name: "server", host: "127.0.0.1" });
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
