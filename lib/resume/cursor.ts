/**
 * Resume cursors: where a client is in each topic's history. A topic's position is a vector
 * (one sequence number per origin stream, i.e. per node run that published on it) plus the time
 * the client started following the topic; positions from different nodes need no shared
 * counter, so publishing never waits on Redis.
 *
 * The text form is one line, safe for an SSE `id:` and a `Last-Event-ID` header:
 * `status%3Aacme=1795515623944,n1~k3f*5,n2~a9c*7&record%3A7=…` — per topic (URL-encoded), the
 * start time in ms, then `stream*seq` pairs.
 *
 * @example
 * ```ts
 * const cursor = parseCursor("status%3Aacme=1700000000000,n1~ab*12");
 * cursor.get("status:acme")?.streams.get("n1~ab"); // 12
 * formatCursor(cursor); // "status%3Aacme=1700000000000,n1~ab*12"
 * ```
 * @module
 */

/** Thrown by {@link parseCursor}; the message says what is wrong and what to send instead. */
export class CursorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CursorError";
  }
}

/** One topic's position: the last sequence seen per stream, and since when the client follows it. */
export interface TopicCursor {
  /** Milliseconds since the epoch; streams not listed count from this time on. */
  since: number;
  streams: Map<string, number>;
  /**
   * When each listed stream's newest message known to the server was published (not part of
   * the text form): lets a long-lived reader forget the streams that have left the window.
   */
  publishedAt?: Map<string, number>;
  /**
   * Set when the client sent a position the server cannot use (too long, an older format):
   * the join replays nothing and sends `reset` with this reason.
   */
  resetReason?: string;
}

/** Longer cursors are refused: they are not ones this server wrote. */
export const MAX_CURSOR_CHARS = 16_384;

/** Topic → position. */
export type Cursor = Map<string, TopicCursor>;

const _STREAM = /^[A-Za-z0-9_.-]{1,64}~[a-z0-9]{1,16}$/;

/** A position standing for one the client sent but the server cannot use: its join resets. */
export function unusableCursor(reason: string): TopicCursor {
  return { since: 0, streams: new Map(), resetReason: reason };
}

/** Writes one topic's position (the part after `=`). */
export function formatTopicCursor(position: TopicCursor): string {
  let out = String(position.since);
  for (const [stream, seq] of position.streams) out += `,${stream}*${seq}`;
  return out;
}

/** Writes a whole cursor as one line. */
export function formatCursor(cursor: Cursor): string {
  let out = "";
  for (const [topic, position] of cursor) {
    // toWellFormed: encodeURIComponent throws on a lone surrogate; decoders reject those topics.
    const name = encodeURIComponent(topic.toWellFormed());
    out += `${out ? "&" : ""}${name}=${formatTopicCursor(position)}`;
  }
  return out;
}

/** Reads a cursor; throws {@link CursorError} saying what is wrong with it. */
export function parseCursor(text: string): Cursor {
  const cursor: Cursor = new Map();
  if (text.trim() === "") return cursor;
  if (text.length > MAX_CURSOR_CHARS) {
    throw new CursorError(`cursor is longer than ${MAX_CURSOR_CHARS} characters`);
  }
  for (const pair of text.split("&")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw _bad(`part "${pair.slice(0, 40)}" is not topic=position`);
    let topic: string;
    try {
      topic = decodeURIComponent(pair.slice(0, eq));
    } catch {
      throw _bad(`topic "${pair.slice(0, 40)}" is not URL-encoded`);
    }
    // A raw lone surrogate passes decodeURIComponent, but no topic may hold one (and it would
    // not format back to the same text).
    if (!topic.isWellFormed()) {
      throw _bad(`topic "${pair.slice(0, 40)}" is not well-formed Unicode`);
    }
    const [since, ...streams] = pair.slice(eq + 1).split(",");
    const position: TopicCursor = { since: _number(since, "start time"), streams: new Map() };
    for (const part of streams) {
      const star = part.lastIndexOf("*");
      const stream = part.slice(0, star);
      if (star < 0 || !_STREAM.test(stream)) {
        throw _bad(`"${part.slice(0, 40)}" is not stream*seq`);
      }
      position.streams.set(stream, _number(part.slice(star + 1), "sequence"));
    }
    cursor.set(topic, position);
  }
  return cursor;
}

function _number(raw: string, what: string): number {
  const n = Number(raw);
  if (!/^\d{1,15}$/.test(raw) || !Number.isSafeInteger(n)) {
    throw _bad(`${what} "${raw.slice(0, 20)}" is not a whole number`);
  }
  return n;
}

function _bad(detail: string): CursorError {
  return new CursorError(
    `bad cursor: ${detail}; send the id of the last event received, or none to start live`,
  );
}
