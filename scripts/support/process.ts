/**
 * Processes and ports for the dev tools, the bench and the tests (one copy, shared): a free
 * port, a bounded log of a child's output, a server spawned and awaited until it prints
 * `listening on http://HOST:PORT`, a command run to completion, and the process tree under a
 * pid. Every wait is bounded. The bench kills what is still registered on Ctrl-C
 * ({@link killChildren}).
 *
 * @example
 * ```ts
 * const server = await spawnListening({ name: "switchboard", args: ["run", "-A", "main.ts"] });
 * console.log(server.url, await fetch(`${server.url}/healthz`).then((r) => r.status));
 * await server.stop();
 * ```
 * @module
 */

/** The repository's root: relative commands run there. */
export const ROOT: URL = new URL("../../", import.meta.url);

/**
 * A free TCP port on `hostname` (listen on port 0, close, return the port). Another process may
 * take it before it is bound again: callers that can retry on "address in use" should.
 *
 * @example
 * ```ts
 * const port = freePort(); // e.g. 41873
 * ```
 */
export function freePort(hostname = "127.0.0.1"): number {
  const listener = Deno.listen({ hostname, port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Sleeps `ms`. @example `await sleep(50);` */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The last 1 MiB of a process' output is kept: enough for any error message, bounded. */
const _OUTPUT_LIMIT = 1 << 20;

/**
 * Collects a process' stdout and stderr (the last 1 MiB), draining the pipes so the child never
 * blocks on a full one; `onLine` sees every complete line (e.g. to echo it with a prefix).
 *
 * @example
 * ```ts
 * const child = new Deno.Command("redis-server", { stdout: "piped", stderr: "piped" }).spawn();
 * const log = new OutputLog([child.stdout, child.stderr]);
 * await child.status;
 * await log.done;
 * console.log(log.text);
 * ```
 */
export class OutputLog {
  #text = "";
  #listeners = new Set<(text: string) => void>();
  readonly done: Promise<void>;

  constructor(streams: ReadableStream<Uint8Array>[], onLine?: (line: string) => void) {
    this.done = Promise.all(streams.map((s) => this.#drain(s, onLine))).then(() => {});
  }

  async #drain(stream: ReadableStream<Uint8Array>, onLine?: (line: string) => void) {
    const decoder = new TextDecoder();
    let rest = "";
    try {
      for await (const chunk of stream) {
        const text = decoder.decode(chunk, { stream: true });
        this.#text = (this.#text + text).slice(-_OUTPUT_LIMIT);
        if (onLine) {
          const lines = (rest + text).split("\n");
          rest = lines.pop()!.slice(-_OUTPUT_LIMIT);
          for (const line of lines) onLine(line);
        }
        for (const listener of this.#listeners) listener(this.#text);
      }
    } catch {
      // the pipe broke because the process died: nothing more to read
    }
  }

  /** Everything kept so far. */
  get text(): string {
    return this.#text;
  }

  /** Calls `listener` with the whole log now and after each new chunk until unsubscribed. */
  watch(listener: (text: string) => void): () => void {
    this.#listeners.add(listener);
    listener(this.#text);
    return () => this.#listeners.delete(listener);
  }
}

const _children = new Set<() => void>();

/**
 * Registers a way to kill a child process if the run is interrupted (SIGINT/SIGTERM before its
 * own cleanup ran); returns the function that unregisters it.
 *
 * @example
 * ```ts
 * const child = new Deno.Command("sleep", { args: ["60"] }).spawn();
 * const unregister = registerChild(() => child.kill("SIGKILL"));
 * child.status.then(unregister);
 * ```
 */
export function registerChild(kill: () => void): () => void {
  _children.add(kill);
  return () => _children.delete(kill);
}

/** Kills every registered child (SIGKILL); for signal handlers. @example `killChildren();` */
export function killChildren(): void {
  for (const kill of _children) {
    try {
      kill();
    } catch { /* already gone */ }
  }
  _children.clear();
}

/** A spawned server that printed where it listens. */
export interface ListeningProcess {
  name: string;
  pid: number;
  /** The host it printed (or {@link SpawnOptions.host}). */
  host: string;
  port: number;
  /** `http://<host>:<port>` */
  url: string;
  /** The Phoenix socket endpoint, `ws://<host>:<port>/socket`. */
  socketUrl: string;
  process: Deno.ChildProcess;
  /** What the process printed so far (the last 1 MiB). */
  output(): string;
  /**
   * SIGTERM and wait for exit; SIGKILL after `graceMs` if given (default
   * {@link SpawnOptions.stopGraceMs}; none: wait as long as it takes).
   */
  stop(graceMs?: number): Promise<Deno.CommandStatus>;
  /** SIGKILL, then wait for exit. */
  kill(): Promise<Deno.CommandStatus>;
}

/** Options of {@link spawnListening}. */
export interface SpawnOptions {
  /** Arguments of the command. */
  args: string[];
  /** For error messages (default the command's base name). */
  name?: string;
  /** Default: this Deno. */
  command?: string;
  /** A command that runs it (e.g. `prlimit --nofile=512 --`); none by default. */
  wrapper?: string[];
  /** Default: the repository's root. */
  cwd?: string | URL;
  /** Added to the inherited environment (with NO_COLOR=1). */
  env?: Record<string, string>;
  /** Give up waiting for the `listening on` line after this long (default 30 000 ms). */
  timeoutMs?: number;
  /** Use this host in `url` instead of the printed one (e.g. 127.0.0.1 for 0.0.0.0). */
  host?: string;
  /** Default of `stop(graceMs)`. */
  stopGraceMs?: number;
  /** Called with every complete output line. */
  onLine?: (line: string) => void;
}

/**
 * Spawns a server that prints `listening on http://<host>:<port>` once it serves (main.ts,
 * bridge/main.ts and scripts/dev_worker.ts do; `deno serve` prints `Listening on`) and waits
 * for that line; fails with its output when it exits first or stays silent past `timeoutMs`.
 *
 * @example
 * ```ts
 * const node = await spawnListening({
 *   name: "node1",
 *   args: ["run", "--allow-net", "--allow-env", "main.ts"],
 *   env: { PORT: "0", HOST: "127.0.0.1" },
 * });
 * await node.stop();
 * ```
 */
export async function spawnListening(options: SpawnOptions): Promise<ListeningProcess> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const [command, ...prefix] = [...(options.wrapper ?? []), options.command ?? Deno.execPath()];
  const name = options.name ?? (options.command ?? "deno").split("/").at(-1)!;
  const child = new Deno.Command(command, {
    args: [...prefix, ...options.args],
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const log = new OutputLog([child.stdout, child.stderr], options.onLine);
  let exited = false;
  let ending = false;
  let listening = false;
  const unregister = registerChild(() => child.kill("SIGKILL"));
  const status = child.status.then(async (s) => {
    exited = true;
    unregister();
    await log.done;
    // A server that dies under a test shows up there only as "connection refused": say so,
    // with what it printed last, where the test's output will show it.
    if (listening && !ending) {
      console.error(
        `${name} (pid ${child.pid}) exited on its own, code ${s.code}, signal ` +
          `${s.signal ?? "none"}; its last output:\n${log.text.slice(-4_000)}`,
      );
    }
    return s;
  });
  const end = async (signal: Deno.Signal, graceMs?: number) => {
    ending = true;
    if (!exited) {
      try {
        child.kill(signal);
      } catch { /* exited meanwhile */ }
    }
    const killer = graceMs === undefined ? undefined : setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    }, graceMs);
    try {
      return await status;
    } finally {
      clearTimeout(killer);
    }
  };
  let unwatch = () => {};
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const [host, port] = await new Promise<[string, number]>((resolve, reject) => {
      unwatch = log.watch((text) => {
        const m = text.match(/listening on http:\/\/([^:\s/]+):(\d+)/i);
        if (m) resolve([m[1], Number(m[2])]);
      });
      status.then((s) =>
        reject(new Error(`${name} exited (code ${s.code}) before listening:\n${log.text}`))
      );
      timer = setTimeout(
        () => reject(new Error(`${name} did not listen within ${timeoutMs} ms:\n${log.text}`)),
        timeoutMs,
      );
    });
    listening = true;
    const shownHost = options.host ?? host;
    return {
      name,
      pid: child.pid,
      host: shownHost,
      port,
      url: `http://${shownHost}:${port}`,
      socketUrl: `ws://${shownHost}:${port}/socket`,
      process: child,
      output: () => log.text,
      stop: (graceMs = options.stopGraceMs) => end("SIGTERM", graceMs),
      kill: () => end("SIGKILL"),
    };
  } catch (err) {
    await end("SIGTERM", 1_000);
    throw err;
  } finally {
    unwatch();
    clearTimeout(timer);
  }
}

/**
 * Runs a command to completion (bounded by `timeoutMs`, default 120 s), returning its exit code,
 * its output (stdout then stderr) and its stdout alone; -1 and the error when it could not run.
 *
 * @example
 * ```ts
 * const { code, output } = await run("git", ["status", "--short"]);
 * ```
 */
export async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string | URL; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ code: number; output: string; stdout: string }> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      cwd: options.cwd,
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(options.timeoutMs ?? 120_000),
    }).output();
    const dec = new TextDecoder();
    const stdout = dec.decode(out.stdout);
    return { code: out.code, output: stdout + dec.decode(out.stderr), stdout };
  } catch (err) {
    return { code: -1, output: String(err), stdout: "" };
  }
}

/**
 * Every process below `root` (its children, theirs, …), from /proc.
 *
 * @example
 * ```ts
 * const pids = [server.pid, ...processTree(server.pid)]; // wrangler, workerd, …
 * ```
 */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      // "pid (comm) state ppid …": comm may hold spaces, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry.name));
      children.set(ppid, list);
    } catch { /* gone meanwhile */ }
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}
