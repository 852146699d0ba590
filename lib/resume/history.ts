/**
 * Per-topic history on one node: a window of recent messages bounded by count and age, the
 * newest sequence of every origin stream, and the replay that decides whether a cursor can
 * still be served without a gap. Generic over what it keeps (anything {@link Sequenced}: the
 * core keeps its broadcasts), so it depends on nothing of the core.
 *
 * @example
 * ```ts
 * const history = new TopicHistory({ size: 100, maxAgeMs: 3_600_000 });
 * history.add(broadcast);
 * const { messages, complete } = replayFrom(history.entries(), history.heads(), cursor);
 * ```
 * @module
 */
import type { TopicCursor } from "./cursor.ts";

/** Bounds of a topic's window. */
export interface HistoryLimits {
  /** Messages kept per topic. */
  size: number;
  /** Messages older than this are dropped. */
  maxAgeMs: number;
  /**
   * The node's budget over all topics, in bytes (each message counted as its payload's JSON
   * plus topic, event and a fixed overhead): past it the oldest messages of any topic go first.
   */
  maxBytes?: number;
}

/** Default of {@link HistoryLimits.maxBytes}: 16 MiB per node (`HISTORY_MAX_BYTES`). */
export const DEFAULT_HISTORY_MAX_BYTES = 16 * 1024 * 1024;

/** The default window: 1000 messages per topic, at most an hour old (`HISTORY_*` env). */
export const DEFAULT_HISTORY: Readonly<HistoryLimits> = Object.freeze({
  size: 1000,
  maxAgeMs: 3_600_000,
  maxBytes: DEFAULT_HISTORY_MAX_BYTES,
});

/** What replay needs of a message: its stream, sequence and time. */
export interface Sequenced {
  stream: string;
  seq: number;
  at: number;
}

/** The newest sequence (and its time) of each stream that published on a topic. */
export type Heads = Map<string, { seq: number; at: number }>;

/** One topic's recent messages on this node, bounded by count and age, with each stream's head. */
export class TopicHistory<T extends Sequenced> {
  readonly #window: T[] = [];
  readonly #heads: Heads = new Map();

  constructor(readonly limits: HistoryLimits) {}

  /** Appends a message (called in arrival order). */
  add(b: T): void {
    this.#window.push(b);
    const head = this.#heads.get(b.stream);
    if (!head || b.seq > head.seq) this.#heads.set(b.stream, { seq: b.seq, at: b.at });
    if (this.#window.length > this.limits.size) this.#window.shift();
  }

  /**
   * Drops message `seq` of `stream` when it is the oldest of the window (the node's byte budget evicts in
   * arrival order, so an older message of this topic is gone already); the heads stay, so a
   * cursor behind it still shows the gap.
   */
  evict(stream: string, seq: number): void {
    const oldest = this.#window[0];
    if (oldest?.stream === stream && oldest.seq === seq) this.#window.shift();
  }

  /** True when the window holds nothing. */
  get empty(): boolean {
    return this.#window.length === 0;
  }

  /** The newest sequence of one stream, if this node has seen it. */
  headOf(stream: string): number | undefined {
    return this.#heads.get(stream)?.seq;
  }

  /** The window, oldest first, without messages past the age limit. */
  entries(now = Date.now()): T[] {
    const oldest = now - this.limits.maxAgeMs;
    let drop = 0;
    while (drop < this.#window.length && this.#window[drop].at < oldest) drop++;
    if (drop) this.#window.splice(0, drop);
    return this.#window;
  }

  /** Newest sequence per stream; streams silent for longer than the age limit are forgotten. */
  heads(now = Date.now()): Heads {
    for (const [stream, head] of this.#heads) {
      if (head.at < now - this.limits.maxAgeMs) this.#heads.delete(stream);
    }
    return this.#heads;
  }
}

/** The position of a client that starts following a topic now. */
export function headCursor(heads: Heads, now: number): TopicCursor {
  const streams = new Map<string, number>();
  const publishedAt = new Map<string, number>();
  for (const [stream, { seq, at }] of heads) {
    streams.set(stream, seq);
    publishedAt.set(stream, at);
  }
  return { since: now, streams, publishedAt };
}

/**
 * A client's position as the replay found it usable (every stream it names is in `heads`),
 * with the streams' publish times from `heads`, so the reader can forget them once they leave
 * the window.
 */
export function judgedCursor(position: TopicCursor, heads: Heads): TopicCursor {
  const publishedAt = new Map<string, number>();
  for (const stream of position.streams.keys()) {
    const head = heads.get(stream);
    if (head) publishedAt.set(stream, head.at);
  }
  return { since: position.since, streams: new Map(position.streams), publishedAt };
}

/**
 * What a client at `cursor` missed: the window's messages after its position, oldest first.
 * `complete` is false when some of them are no longer in the window (sequences are gapless per
 * stream, so a missing number shows), and when the cursor names a stream the heads do not
 * know: one that left the window (whether the client missed its last messages cannot be told
 * any more), or one this server never wrote.
 */
export function replayFrom<T extends Sequenced>(
  window: readonly T[],
  heads: Heads,
  cursor: TopicCursor,
): { messages: T[]; complete: boolean } {
  const messages: T[] = [];
  const next = new Map<string, number>();
  // If the window reaches back to the cursor's start, everything after it is still here.
  const coversSince = window.length > 0 && window[0].at <= cursor.since;
  let complete = true;
  for (const m of window) {
    const seen = cursor.streams.get(m.stream);
    if (seen !== undefined ? m.seq <= seen : m.at <= cursor.since) continue;
    const expected = next.get(m.stream) ?? (seen !== undefined ? seen + 1 : undefined);
    if (expected !== undefined ? m.seq !== expected : !coversSince && m.seq !== 1) {
      complete = false;
    }
    next.set(m.stream, m.seq + 1);
    messages.push(m);
  }
  for (const stream of cursor.streams.keys()) {
    if (!heads.has(stream)) complete = false;
  }
  for (const [stream, head] of heads) {
    const seen = cursor.streams.get(stream);
    const missed = seen !== undefined ? head.seq > seen : head.at > cursor.since;
    if (missed && (next.get(stream) ?? 0) <= head.seq) complete = false;
  }
  return { messages, complete };
}
