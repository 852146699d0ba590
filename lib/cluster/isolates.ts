/**
 * The isolates of one process (`deno serve --parallel`) as a group, over a `BroadcastChannel` of
 * their own: who is there, stopping together (each exits only once all have drained), and the
 * operations answers of all of them, so that `/healthz` and `/metrics` tell the truth for the
 * whole process whichever isolate takes the request.
 *
 * @example
 * ```ts
 * const group = new IsolateGroup({ name: "switchboard-isolates", self: "i1", answer });
 * const texts = await group.gather("/metrics"); // isolate → its own answer
 * ```
 * @module
 */

/** The fields of a {@link IsolateGroup}. */
export interface IsolateGroupInit {
  /** The channel's name (the isolates of one app share it). */
  name: string;
  /** This isolate's id. */
  self: string;
  /** This isolate's own answer to an operations path (`/healthz`, `/metrics`). */
  answer(path: string): Promise<string>;
  /** How long to wait for the others' answers (default 500 ms). */
  gatherMs?: number;
}

type _Message =
  | { hello: string }
  | { drained: string }
  | { ask: { id: string; path: string } }
  | { answer: { id: string; worker: string; body: string } };

/** The isolates of this process, as this isolate knows them. */
export class IsolateGroup {
  readonly #init: IsolateGroupInit;
  readonly #channel: BroadcastChannel;
  readonly #peers = new Set<string>();
  readonly #drained = new Set<string>();
  readonly #gathering = new Map<string, Map<string, string>>();
  readonly #waiters = new Set<() => void>();

  constructor(init: IsolateGroupInit) {
    this.#init = init;
    this.#channel = new BroadcastChannel(init.name);
    this.#channel.onmessage = (event) => this.#receive(event.data as _Message);
    this.#post({ hello: init.self });
  }

  /** The other isolates this one has heard of. */
  get peers(): ReadonlySet<string> {
    return this.#peers;
  }

  /** Every isolate's answer to `path` (this one's first), waiting at most `gatherMs`. */
  async gather(path: string): Promise<Map<string, string>> {
    const id = crypto.randomUUID();
    const answers = new Map<string, string>();
    this.#gathering.set(id, answers);
    this.#post({ ask: { id, path } });
    const own = await this.#init.answer(path);
    const deadline = Date.now() + (this.#init.gatherMs ?? 500);
    while (answers.size < this.#peers.size && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, deadline - Date.now());
        this.#waiters.add(wake);
      });
    }
    this.#gathering.delete(id);
    return new Map([[this.#init.self, own], ...answers]);
  }

  /** Says this isolate has drained, then waits until every isolate it knows has too. */
  async drainedAll(): Promise<void> {
    this.#drained.add(this.#init.self);
    this.#post({ drained: this.#init.self });
    while ([...this.#peers].some((peer) => !this.#drained.has(peer))) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#waiters.delete(wake);
          resolve();
        };
        this.#waiters.add(wake);
      });
    }
  }

  /** Leaves the group's channel. */
  close(): void {
    this.#channel.close();
  }

  #post(message: _Message): void {
    this.#channel.postMessage(message);
  }

  #receive(message: _Message): void {
    if ("hello" in message && !this.#peers.has(message.hello)) {
      this.#peers.add(message.hello);
      // An isolate that starts later learns of this one from the answer.
      this.#post({ hello: this.#init.self });
    } else if ("drained" in message) {
      this.#drained.add(message.drained);
    } else if ("ask" in message) {
      const { id, path } = message.ask;
      this.#init.answer(path).then((body) =>
        this.#post({ answer: { id, worker: this.#init.self, body } })
      ).catch(() => {});
    } else if ("answer" in message) {
      this.#gathering.get(message.answer.id)?.set(message.answer.worker, message.answer.body);
    }
    for (const wake of [...this.#waiters]) wake();
  }
}

/**
 * Several isolates' Prometheus texts as one: every sample gets a `worker` label (the name
 * operators know from `deno serve`), each metric's
 * `# HELP`/`# TYPE` lines appear once, followed by the samples of all isolates.
 */
export function mergeIsolateMetrics(texts: Map<string, string>): string {
  const families = new Map<string, { meta: string[]; samples: string[] }>();
  for (const [worker, text] of texts) {
    let family = "";
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      const meta = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (meta) family = meta[2];
      let entry = families.get(family);
      if (!entry) families.set(family, entry = { meta: [], samples: [] });
      if (meta) {
        if (!entry.meta.includes(line)) entry.meta.push(line);
        continue;
      }
      if (line.startsWith("#")) continue;
      const label = `worker="${worker.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
      const brace = line.indexOf("{");
      const space = line.indexOf(" ");
      entry.samples.push(
        brace >= 0 && brace < space
          ? `${line.slice(0, brace + 1)}${label},${line.slice(brace + 1)}`.replace(",}", "}")
          : `${line.slice(0, space)}{${label}}${line.slice(space)}`,
      );
    }
  }
  let out = "";
  for (const { meta, samples } of families.values()) {
    for (const line of [...meta, ...samples]) out += line + "\n";
  }
  return out;
}
