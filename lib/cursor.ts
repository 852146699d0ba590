/**
 * The SSE resume cursor: the last position seen on every topic of a stream, in one
 * `Last-Event-ID` value (`status%3Aacme=12&record%3A7=3`, URL-encoded pairs).
 *
 * @example
 * ```ts
 * const cursor = parseCursor("status%3Aacme=12");
 * cursor.get("status:acme"); // 12
 * formatCursor(cursor); // "status%3Aacme=12"
 * ```
 * @module
 */

/** Thrown by {@link parseCursor} when the value is not a cursor this server wrote. */
export class CursorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CursorError";
  }
}

/** Topic → last position seen. */
export type Cursor = Map<string, number>;

/** Writes a cursor as one line safe for an SSE `id:` field. */
export function formatCursor(cursor: Cursor): string {
  let out = "";
  for (const [topic, position] of cursor) {
    out += `${out ? "&" : ""}${encodeURIComponent(topic)}=${position}`;
  }
  return out;
}

/** Reads a cursor; throws {@link CursorError} saying what is wrong with it. */
export function parseCursor(text: string): Cursor {
  const cursor: Cursor = new Map();
  if (text.trim() === "") return cursor;
  if (text.length > 8192) throw new CursorError("cursor is longer than 8192 characters");
  for (const pair of text.split("&")) {
    const eq = pair.lastIndexOf("=");
    if (eq <= 0) throw new CursorError(`cursor part "${pair.slice(0, 40)}" is not topic=position`);
    let topic: string;
    try {
      topic = decodeURIComponent(pair.slice(0, eq));
    } catch {
      throw new CursorError(`cursor topic "${pair.slice(0, 40)}" is not URL-encoded`);
    }
    const raw = pair.slice(eq + 1);
    const position = Number(raw);
    if (!/^\d{1,15}$/.test(raw) || !Number.isSafeInteger(position)) {
      throw new CursorError(`cursor position "${raw.slice(0, 20)}" is not a whole number`);
    }
    cursor.set(topic, position);
  }
  return cursor;
}
