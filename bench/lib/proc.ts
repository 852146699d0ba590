/**
 * Spawning the processes of a run: servers that print `… listening on http://HOST:PORT`, and
 * their output kept (last 64 KiB) for error messages. Every wait is bounded.
 * @module
 */

const _children = new Set<() => void>();

/**
 * Registers a way to kill a child process if the bench is interrupted (SIGINT/SIGTERM before
 * its own cleanup ran); returns the function that unregisters it.
 */
export function registerChild(kill: () => void): () => void {
  _children.add(kill);
  return () => _children.delete(kill);
}

/** Kills every registered child (SIGKILL); for signal handlers. */
export function killChildren(): void {
  for (const kill of _children) {
    try {
      kill();
    } catch { /* already gone */ }
  }
  _children.clear();
}

/** A spawned server. */
export interface ServerProcess {
  name: string;
  pid: number;
  host: string;
  port: number;
  url: string;
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; waits for exit. */
  stop(graceMs?: number): Promise<void>;
}

/** Options of {@link spawnServer}. */
export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** Starts `cmd args…` and waits for its `listening on http://HOST:PORT` line. */
export async function spawnServer(
  name: string,
  cmd: string,
  args: string[],
  options: SpawnOptions = {},
): Promise<ServerProcess> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  let found: (addr: [string, number]) => void;
  const listening = new Promise<[string, number]>((r) => found = r);
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        text = (text + chunk).slice(-65536);
        const m = text.match(/listening on http:\/\/([^:\s/]+):(\d+)/i);
        if (m) found([m[1], Number(m[2])]);
      }
    } catch { /* the process died */ }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited = false;
  const unregister = registerChild(() => child.kill("SIGKILL"));
  const status = child.status.then(async (s) => {
    exited = true;
    unregister();
    await pumps;
    return s;
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = async (graceMs = 5_000) => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      const killer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* exited */ }
      }, graceMs);
      await status;
      clearTimeout(killer);
    }
    await status;
  };
  try {
    const [host, port] = await Promise.race([
      listening,
      status.then((s): never => {
        throw new Error(`${name} exited (code ${s.code}) before listening:\n${text}`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${name} did not listen within ${timeoutMs} ms:\n${text}`)),
          timeoutMs,
        );
      }),
    ]);
    return {
      name,
      pid: child.pid,
      host,
      port,
      url: `http://${host}:${port}`,
      output: () => text,
      stop,
    };
  } catch (err) {
    await stop(1_000);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a command to completion (bounded), returning its exit code and output. */
export async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number; output: string }> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(options.timeoutMs ?? 120_000),
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
  } catch (err) {
    return { code: -1, output: String(err) };
  }
}

/** Sleeps `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
