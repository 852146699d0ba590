/**
 * The load generator's client side of the wire, over raw TCP (`Deno.connect`): an HTTP/1.1
 * request with its response head (WebSocket upgrade or SSE), a WebSocket frame reader that
 * walks frame headers in the received bytes without decoding them, and masked client frames.
 *
 * A raw client keeps the generator far cheaper per delivery than the servers it measures (no
 * string decoding or event dispatch per frame unless a frame is sampled), and it is identical
 * for every target.
 * @module
 */

const _enc = new TextEncoder();
const _dec = new TextDecoder();

/** An open TCP connection after the response head, with the bytes already read past it. */
export interface HttpOpen {
  conn: Deno.TcpConn;
  status: number;
  head: string;
  rest: Uint8Array;
}

/** Writes all of `bytes`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/** Connects, sends `request` and reads the response head; bounded by `timeoutMs`. */
export async function httpOpen(
  hostname: string,
  port: number,
  request: string,
  timeoutMs: number,
): Promise<HttpOpen> {
  let conn: Deno.TcpConn | undefined;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      conn?.close();
    } catch { /* closed */ }
  }, timeoutMs);
  try {
    conn = await Deno.connect({ hostname, port });
    if (timedOut) throw new Error("connect timed out");
    conn.setNoDelay(true);
    await writeAll(conn, _enc.encode(request));
    let buf = new Uint8Array(2048);
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        const bigger = new Uint8Array(buf.length * 2);
        bigger.set(buf);
        buf = bigger;
      }
      const n = await conn.read(buf.subarray(len));
      if (n === null) throw new Error("connection closed before the response head");
      len += n;
      const end = _headEnd(buf, len);
      if (end < 0) continue;
      const head = _dec.decode(buf.subarray(0, end));
      return { conn, status: Number(head.slice(9, 12)), head, rest: buf.slice(end + 4, len) };
    }
  } catch (err) {
    try {
      conn?.close();
    } catch { /* closed */ }
    throw timedOut ? new Error(`no response head within ${timeoutMs} ms`) : err;
  } finally {
    clearTimeout(timer);
  }
}

function _headEnd(buf: Uint8Array, len: number): number {
  for (let i = 3; i < len; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i - 3;
  }
  return -1;
}

/** The upgrade request for `path` (no extensions, so no compression on any target). */
export function upgradeRequest(hostname: string, port: number, path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\n` +
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
    "Sec-WebSocket-Version: 13\r\n\r\n";
}

/** A plain GET for an event stream. */
export function sseRequest(hostname: string, port: number, path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAccept: text/event-stream\r\n\r\n`;
}

/** One masked client frame (the mask key is zero, which the RFC allows: payload unchanged). */
export function clientFrame(opcode: number, payload: Uint8Array | string): Uint8Array {
  const body = typeof payload === "string" ? _enc.encode(payload) : payload;
  const len = body.length;
  const hl = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = new Uint8Array(hl + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out[2] = len >> 8;
    out[3] = len & 0xff;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(len));
  }
  out.set(body, hl + 4);
  return out;
}

/** Receives whole frames; `data[start..end)` is valid only during the call. */
export type FrameHandler = (opcode: number, data: Uint8Array, start: number, end: number) => void;

/** Frames larger than this that span reads are collected in their own buffer. */
const _BIG = 4096;

/** Splits a server's (unmasked) byte stream into frames. */
export class FrameReader {
  #left: Uint8Array | null = null;
  #big: Uint8Array | null = null;
  #bigFill = 0;
  #bigOp = 0;

  constructor(readonly onFrame: FrameHandler) {}

  /** Feeds received bytes; `chunk` may be reused by the caller afterwards. */
  feed(chunk: Uint8Array): void {
    let data = chunk;
    let off = 0;
    if (this.#big) {
      const take = Math.min(this.#big.length - this.#bigFill, chunk.length);
      this.#big.set(chunk.subarray(0, take), this.#bigFill);
      this.#bigFill += take;
      off = take;
      if (this.#bigFill < this.#big.length) return;
      const big = this.#big;
      this.#big = null;
      this.onFrame(this.#bigOp, big, 0, big.length);
    } else if (this.#left) {
      data = new Uint8Array(this.#left.length + chunk.length);
      data.set(this.#left);
      data.set(chunk, this.#left.length);
      this.#left = null;
    }
    for (;;) {
      const avail = data.length - off;
      if (avail < 2) break;
      let len = data[off + 1] & 0x7f;
      let hl = 2;
      if (len === 126) {
        if (avail < 4) break;
        len = (data[off + 2] << 8) | data[off + 3];
        hl = 4;
      } else if (len === 127) {
        if (avail < 10) break;
        len = data[off + 6] * 2 ** 24 +
          ((data[off + 7] << 16) | (data[off + 8] << 8) | data[off + 9]);
        hl = 10;
      }
      if (avail < hl + len) {
        if (len <= _BIG) break;
        this.#big = new Uint8Array(len);
        this.#big.set(data.subarray(off + hl));
        this.#bigFill = avail - hl;
        this.#bigOp = data[off] & 0x0f;
        return;
      }
      this.onFrame(data[off] & 0x0f, data, off + hl, off + hl + len);
      off += hl + len;
    }
    if (off < data.length) this.#left = data.slice(off);
  }
}

/** True when `data[start..]` begins with `prefix`. */
export function startsWith(data: Uint8Array, start: number, end: number, prefix: Uint8Array) {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[start + i] !== prefix[i]) return false;
  return true;
}

/** Decodes `data[start..end)` as UTF-8. */
export function text(data: Uint8Array, start: number, end: number): string {
  return _dec.decode(data.subarray(start, end));
}
