/**
 * What a node keeps of its topics, apart from who is subscribed: each topic's last message,
 * its resume window and its numbering, bounded by a topic count (least recently used go
 * first) and a byte budget over every topic (oldest messages go first). The hub owns one.
 *
 * @example
 * ```ts
 * const store = new TopicStore({ stream: "node-1~k3f09a" });
 * const entry = store.touch("status:acme");
 * store.keep(new Broadcast({ topic: "status:acme", event: "status", payload: {}, stream: entry.stream, seq: 1 }), entry);
 * store.last("status:acme")?.seq; // 1
 * ```
 * @module
 */
import type { Broadcast } from "./broadcast.ts";
import type { PayloadText } from "./delta.ts";
import { approximateJsonBytes } from "./limits.ts";
import {
  DEFAULT_HISTORY,
  DEFAULT_HISTORY_MAX_BYTES,
  type HistoryLimits,
  TopicHistory,
} from "../resume/history.ts";

/** How many topics keep their history in memory before the least recently used is dropped. */
export const TOPICS_KEPT = 10_000;

/** What a kept message costs besides its payload's JSON and names (object, fields, window slot). */
const _MESSAGE_OVERHEAD_BYTES = 160;

/** One topic as the node keeps it. */
export interface TopicEntry {
  last?: Broadcast;
  /** Bytes of `last`, counted while the topic is kept. */
  lastBytes: number;
  history: TopicHistory<Broadcast>;
  /** This topic's last sequence in `stream`. */
  seq: number;
  /** The stream this node numbers the topic's messages in. */
  stream: string;
  /** The last numbered JSON message, the base of the next one's delta (`delta.ts`). */
  deltaBase?: PayloadText;
}

/** A message kept for replay, in the node-wide arrival order the byte budget evicts in. */
interface _Kept {
  topic: TopicEntry;
  /** Which message (no reference to it: the queue must not keep what the window dropped). */
  stream: string;
  seq: number;
  bytes: number;
}

/** Options of {@link TopicStore}. */
export interface TopicStoreOptions {
  /** The stream this node run numbers topics in (`<nodeId>~<runId>`). */
  stream: string;
  /** Each topic's resume window, and the byte budget (default {@link DEFAULT_HISTORY}). */
  history?: HistoryLimits;
  /** Told when a topic is forgotten (least recently used, past the topic or byte limits). */
  onForget?: (topic: string) => void;
}

/** The node's topics: last messages, resume windows and numbering, within their bounds. */
export class TopicStore {
  readonly #topics = new Map<string, TopicEntry>();
  /** Topics forgotten so far (least recently used, past the topic or byte limits). */
  #forgotten = 0;
  /** Kept messages of every topic, oldest first from `#keptHead`, and their bytes. */
  #kept: _Kept[] = [];
  #keptHead = 0;
  #keptBytes = 0;
  /** Bytes of the topics' last messages. */
  #lastBytes = 0;
  readonly #stream: string;
  readonly #limits: HistoryLimits;
  readonly #maxBytes: number;
  readonly #onForget?: (topic: string) => void;

  constructor(options: TopicStoreOptions) {
    this.#stream = options.stream;
    this.#limits = options.history ?? DEFAULT_HISTORY;
    this.#maxBytes = this.#limits.maxBytes ?? DEFAULT_HISTORY_MAX_BYTES;
    this.#onForget = options.onForget;
  }

  /** The topic's entry if kept, without marking it used. */
  get(name: string): TopicEntry | undefined {
    return this.#topics.get(name);
  }

  /** The last non-presence message of a topic, if this node holds it. */
  last(name: string): Broadcast | undefined {
    return this.#topics.get(name)?.last;
  }

  /** Bytes kept for replay and as topics' last messages, and the number of topics kept. */
  get keptBytes(): { history: number; last: number; topics: number } {
    return { history: this.#keptBytes, last: this.#lastBytes, topics: this.#topics.size };
  }

  /**
   * Finds or creates the topic's entry and marks it most recently used. Past
   * {@link TOPICS_KEPT} topics, or when the last messages alone take a quarter of the byte
   * budget, the least recently used topics are forgotten, numbering included: a topic that
   * comes back starts over in a new stream (`<stream><n>`), so a client holding a number of
   * the old stream never sees it reused.
   */
  touch(name: string): TopicEntry {
    let entry = this.#topics.get(name);
    if (entry) this.#topics.delete(name);
    else {
      const stream = this.#forgotten === 0
        ? this.#stream
        : `${this.#stream}${this.#forgotten.toString(36)}`;
      entry = { history: new TopicHistory<Broadcast>(this.#limits), seq: 0, stream, lastBytes: 0 };
    }
    this.#topics.set(name, entry);
    this.#forgetOldTopics();
    return entry;
  }

  /** Keeps a numbered message; `known` is its topic's entry when the caller just touched it. */
  keep(b: Broadcast, known?: TopicEntry): void {
    if (b.seq === 0) return;
    const topic = known ?? this.touch(b.topic);
    const bytes = _sizeOf(b);
    this.#setLast(topic, b, bytes);
    topic.history.add(b);
    this.#kept.push({ topic, stream: b.stream, seq: b.seq, bytes });
    this.#keptBytes += bytes;
    // The byte budget: the oldest messages of any topic go first (their topics' heads stay, so
    // a cursor behind them gets a reset instead of a silent gap).
    while (this.#keptBytes > this.#maxBytes && this.#keptHead < this.#kept.length) {
      const oldest = this.#kept[this.#keptHead];
      this.#kept[this.#keptHead++] = undefined!;
      this.#keptBytes -= oldest.bytes;
      oldest.topic.history.evict(oldest.stream, oldest.seq);
    }
    if (this.#keptHead > 1024 && this.#keptHead * 2 > this.#kept.length) {
      this.#kept = this.#kept.slice(this.#keptHead);
      this.#keptHead = 0;
    }
  }

  /**
   * Keeps a message of an earlier life of this node (restored from storage, oldest first): the
   * topic goes on numbering in its stream after it.
   */
  restore(b: Broadcast): void {
    if (b.seq === 0) return;
    const topic = this.touch(b.topic);
    topic.stream = b.stream;
    topic.seq = b.seq;
    this.keep(b, topic);
  }

  /** Makes `b` the topic's last message without keeping it for replay (a shared copy read). */
  setLast(name: string, b: Broadcast): void {
    this.#setLast(this.touch(name), b, _sizeOf(b));
  }

  #setLast(topic: TopicEntry, b: Broadcast, bytes: number): void {
    this.#lastBytes += bytes - topic.lastBytes;
    topic.last = b;
    topic.lastBytes = bytes;
    this.#forgetOldTopics();
  }

  /** Forgets the least recently used topics (never the newest) while past either limit. */
  #forgetOldTopics(): void {
    while (
      this.#topics.size > 1 &&
      (this.#topics.size > TOPICS_KEPT || this.#lastBytes > this.#maxBytes / 4)
    ) {
      const [oldest, forgotten] = this.#topics.entries().next().value!;
      this.#topics.delete(oldest);
      this.#lastBytes -= forgotten.lastBytes;
      this.#forgotten++;
      this.#onForget?.(oldest);
    }
  }
}

/** What a kept message costs, roughly: its payload and bytes, its names, a fixed overhead. */
function _sizeOf(b: Broadcast): number {
  // Counted without making the JSON: a copy of every kept payload would double a flood's garbage.
  return approximateJsonBytes(b.payload) + (b.binary?.byteLength ?? 0) + b.topic.length +
    b.event.length + b.stream.length + _MESSAGE_OVERHEAD_BYTES;
}
