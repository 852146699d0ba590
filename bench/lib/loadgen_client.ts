/**
 * The bench's side of a load generator process (bench/loadgen.ts): spawn it, send commands,
 * await answers. Every call is bounded by a timeout.
 * @module
 */
import { registerChild } from "../../scripts/support/process.ts";
import { cpuTicks } from "./stats.ts";

const _loadgen = new URL("../loadgen.ts", import.meta.url);

/** One running load generator process. */
export class LoadGen {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  readonly #status: Promise<Deno.CommandStatus>;
  #nextId = 0;
  #stderr = "";

  private constructor(readonly index: number) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        // e.g. BENCH_LOADGEN_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the generator
        ...(Deno.env.get("BENCH_LOADGEN_FLAGS")?.split(" ").filter(Boolean) ?? []),
        _loadgen.pathname,
      ],
      env: { NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    const unregister = registerChild(() => this.#child.kill("SIGKILL"));
    this.#read();
    this.#drainStderr();
    this.#status = this.#child.status.then((s) => {
      unregister();
      for (const p of this.#pending.values()) {
        p.reject(new Error(`load generator exited (code ${s.code}):\n${this.#stderr}`));
      }
      this.#pending.clear();
      return s;
    });
  }

  /** Spawns `count` load generators. */
  static spawn(count: number): LoadGen[] {
    return Array.from({ length: count }, (_, i) => new LoadGen(i));
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** CPU ticks the generator used so far. */
  cpuTicks(): number {
    return cpuTicks(this.pid);
  }

  /** Sends a command and waits (at most `timeoutMs`) for its answer. */
  call<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<T> {
    const id = ++this.#nextId;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`load generator ${this.index}: ${cmd} did not answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      const line = JSON.stringify({ id, cmd, args }) + "\n";
      this.#writer.write(new TextEncoder().encode(line)).catch((e) => {
        this.#pending.get(id)?.reject(e);
        this.#pending.delete(id);
      });
    });
  }

  /** Closes stdin (the generator closes its sockets and exits); kills it after 5 s. */
  async close(): Promise<void> {
    try {
      await this.#writer.close();
    } catch { /* already closed */ }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* exited */ }
    }, 5_000);
    await this.#status;
    clearTimeout(timer);
  }

  async #read(): Promise<void> {
    let buffered = "";
    try {
      for await (const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
        buffered += chunk;
        let nl;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (!line.startsWith("{")) continue;
          const msg = JSON.parse(line);
          const p = this.#pending.get(msg.id);
          if (!p) continue;
          this.#pending.delete(msg.id);
          if (msg.ok) p.resolve(msg.result);
          else p.reject(new Error(`load generator ${this.index}: ${msg.error}`));
        }
      }
    } catch { /* exited */ }
  }

  async #drainStderr(): Promise<void> {
    try {
      for await (const chunk of this.#child.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr = (this.#stderr + chunk).slice(-8192);
      }
    } catch { /* exited */ }
  }
}

/** Closes every generator. */
export async function closeAll(gens: LoadGen[]): Promise<void> {
  await Promise.all(gens.map((g) => g.close()));
}
