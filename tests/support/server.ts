/**
 * Starts the real server (`main.ts`) as a subprocess on a free port, the way users run it.
 * @module
 */

/** A running server process. */
export interface ServerProcess {
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The Phoenix socket endpoint, `ws://127.0.0.1:<port>/socket`. */
  socketUrl: string;
  process: Deno.ChildProcess;
  /** Everything the server printed so far. */
  output(): string;
  /** SIGTERM, then wait for exit. */
  stop(): Promise<Deno.CommandStatus>;
  /** SIGKILL, then wait for exit. */
  kill(): Promise<Deno.CommandStatus>;
}

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
 * Spawns a `deno` process that prints `listening on http://<host>:<port>` once it serves (main.ts
 * and scripts/dev_worker.ts do; `deno serve` prints `Listening on`), and waits for that line.
 */
export async function spawnListening(options: SpawnOptions): Promise<ServerProcess> {
  const { args, env, timeoutMs } = options;
  const [command, ...prefix] = [...(options.wrapper ?? []), Deno.execPath()];
  const process = new Deno.Command(command, {
    args: [...prefix, ...args],
    cwd: _root,
    env,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let text = "";
  let resolvePort: (port: number) => void;
  const portFound = new Promise<number>((r) => resolvePort = r);
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      const m = text.match(/[Ll]istening on http:\/\/[^:]+:(\d+)/);
      if (m) resolvePort(Number(m[1]));
    }
  };
  const pumps = Promise.all([pump(process.stdout), pump(process.stderr)]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const port = await Promise.race([
    portFound,
    process.status.then((s) => {
      throw new Error(`server exited (code ${s.code}) before listening:\n${text}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`server did not listen within ${timeoutMs} ms:\n${text}`)),
        timeoutMs,
      );
    }),
  ]).catch(async (err) => {
    try {
      process.kill("SIGTERM");
    } catch { /* already exited */ }
    await process.status;
    throw err;
  }).finally(() => clearTimeout(timer));
  const end = async (signal: Deno.Signal) => {
    try {
      process.kill(signal);
    } catch { /* already exited */ }
    const status = await process.status;
    await pumps;
    return status;
  };
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    socketUrl: `ws://127.0.0.1:${port}/socket`,
    process,
    output: () => text,
    stop: () => end("SIGTERM"),
    kill: () => end("SIGKILL"),
  };
}

/** Runs `main.ts` with `env` and returns how it ended (for start-up failures). */
export async function runServerExpectingExit(
  env: Record<string, string>,
): Promise<{ code: number; output: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "main.ts"],
    cwd: _root,
    env: { HOST: "127.0.0.1", ...env },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    signal: AbortSignal.timeout(20_000),
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, output: decode(out.stdout) + decode(out.stderr) };
}
