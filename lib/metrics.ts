/**
 * Counters and gauges rendered as Prometheus text for `/metrics`.
 *
 * @example
 * ```ts
 * const metrics = new Metrics();
 * metrics.inc("switchboard_joins_total");
 * metrics.render(); // "# TYPE switchboard_joins_total counter\nswitchboard_joins_total 1\n…"
 * ```
 * @module
 */

/** Label values of one series, e.g. `{transport: "sse"}`. */
export type Labels = Record<string, string>;

/** The node's counters and gauges, rendered as Prometheus text for `/metrics`. */
export class Metrics {
  /** name → series key → labels and value; the key is cheap to build on hot paths. */
  readonly #counters = new Map<string, Map<string, { labels?: Labels; value: number }>>();
  readonly #counterFns = new Map<string, () => number>();
  readonly #gauges = new Map<string, () => [Labels, number][]>();
  readonly #help = new Map<string, string>();

  /** Adds `by` (default 1) to a counter series. */
  inc(name: string, labels?: Labels, by = 1): void {
    let series = this.#counters.get(name);
    if (!series) this.#counters.set(name, series = new Map());
    const key = labels ? _key(labels) : "";
    const entry = series.get(key);
    if (entry) entry.value += by;
    else series.set(key, { labels, value: by });
  }

  /** The current value of a counter series (0 when never incremented). */
  value(name: string, labels?: Labels): number {
    return this.#counters.get(name)?.get(labels ? _key(labels) : "")?.value ?? 0;
  }

  /** Registers a counter kept elsewhere (e.g. the hub's delivery count), read when rendering. */
  counter(name: string, help: string, read: () => number): void {
    this.#counterFns.set(name, read);
    this.#help.set(name, help);
  }

  /** Registers a gauge read when rendering. */
  gauge(name: string, help: string, read: () => [Labels, number][]): void {
    this.#gauges.set(name, read);
    this.#help.set(name, help);
  }

  /** Sets the help text of a counter. */
  describe(name: string, help: string): void {
    this.#help.set(name, help);
  }

  /** Prometheus text exposition format. */
  render(): string {
    let out = "";
    for (const [name, series] of this.#counters) {
      out += this.#header(name, "counter");
      for (const { labels, value } of series.values()) {
        out += `${name}${labels ? _labelText(labels) : ""} ${value}\n`;
      }
    }
    for (const [name, read] of this.#counterFns) {
      out += `${this.#header(name, "counter")}${name} ${read()}\n`;
    }
    for (const [name, read] of this.#gauges) {
      out += this.#header(name, "gauge");
      for (const [labels, value] of read()) out += `${name}${_labelText(labels)} ${value}\n`;
    }
    return out;
  }

  #header(name: string, type: string): string {
    const help = this.#help.get(name);
    return (help ? `# HELP ${name} ${help}\n` : "") + `# TYPE ${name} ${type}\n`;
  }
}

function _labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) =>
    `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`
  );
  return parts.length ? `{${parts.join(",")}}` : "";
}

function _key(labels: Labels): string {
  let key = "";
  for (const k in labels) key += `${k}\u0000${labels[k]}\u0001`;
  return key;
}
