/**
 * A raw WebSocket test client over the native `WebSocket`: send any text or bytes, read frames
 * one by one (parsed JSON when possible), see how the server closed the socket.
 *
 * @example
 * ```ts
 * const ws = await openRaw(`${server.socketUrl}/websocket?vsn=2.0.0&user_id=ann`);
 * ws.send(JSON.stringify([null, "1", "phoenix", "heartbeat", {}]));
 * const reply = await ws.next((f) => f.ref === "1");
 * await ws.close();
 * ```
 * @module
 */

/** One frame received from the server. */
export interface RawFrame {
  /** The frame as received (text, or bytes for a binary frame). */
  raw: string | Uint8Array;
  /** The parsed JSON, or undefined when the frame is not JSON. */
  json: unknown;
  /** v2 fields when `json` is a 5-element array, v1 fields when it is an object. */
  joinRef?: unknown;
  ref?: unknown;
  topic?: unknown;
  event?: unknown;
  payload?: unknown;
}

/** How the socket was closed. */
export interface CloseInfo {
  code: number;
  reason: string;
}

/** See {@link openRaw}. */
export interface RawSocket {
  readonly ws: WebSocket;
  /** Every frame received so far, in order (consumed or not). */
  readonly log: RawFrame[];
  /** Resolves when the socket is closed (by either side). */
  readonly closed: Promise<CloseInfo>;
  /** Sends one text (or binary) frame. */
  send(data: string | Uint8Array): void;
  /** Sends one v2 frame `[join_ref, ref, topic, event, payload]`. */
  push(
    joinRef: string | null,
    ref: string | null,
    topic: string,
    event: string,
    payload: unknown,
  ): void;
  /**
   * The next not yet consumed frame matching `predicate` (any frame without one); frames that do
   * not match stay queued. Rejects after `timeoutMs` or when the socket closes first.
   */
  next(predicate?: (frame: RawFrame) => boolean, timeoutMs?: number): Promise<RawFrame>;
  /** Closes the socket (if still open) and waits for the close event. */
  close(code?: number, reason?: string): Promise<CloseInfo>;
}

interface _Waiter {
  predicate: (frame: RawFrame) => boolean;
  resolve: (frame: RawFrame) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Parses a frame's text and spreads the v2 (array) or v1 (object) fields. */
export function parseFrame(raw: string | Uint8Array): RawFrame {
  const frame: RawFrame = { raw, json: undefined };
  if (typeof raw !== "string") return frame;
  try {
    frame.json = JSON.parse(raw);
  } catch {
    return frame;
  }
  const j = frame.json;
  if (Array.isArray(j) && j.length === 5) {
    [frame.joinRef, frame.ref, frame.topic, frame.event, frame.payload] = j;
  } else if (typeof j === "object" && j !== null && !Array.isArray(j)) {
    const o = j as Record<string, unknown>;
    Object.assign(frame, {
      joinRef: o.join_ref,
      ref: o.ref,
      topic: o.topic,
      event: o.event,
      payload: o.payload,
    });
  }
  return frame;
}

/** Opens a WebSocket and resolves once it is open; rejects if it closes or fails first. */
export function openRaw(url: string, { timeoutMs = 5_000 } = {}): Promise<RawSocket> {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const log: RawFrame[] = [];
  const queue: RawFrame[] = [];
  const waiters = new Set<_Waiter>();
  let closeInfo: CloseInfo | undefined;
  let resolveClosed!: (info: CloseInfo) => void;
  const closed = new Promise<CloseInfo>((r) => resolveClosed = r);

  ws.onmessage = (event) => {
    const data = typeof event.data === "string"
      ? event.data
      : new Uint8Array(event.data as ArrayBuffer);
    const frame = parseFrame(data);
    log.push(frame);
    for (const w of waiters) {
      if (w.predicate(frame)) {
        waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(frame);
        return;
      }
    }
    queue.push(frame);
  };
  ws.onclose = (event) => {
    closeInfo = { code: event.code, reason: event.reason };
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.reject(
        new Error(`socket closed (${event.code} ${event.reason}) while waiting for a frame`),
      );
    }
    waiters.clear();
    resolveClosed(closeInfo);
  };

  const socket: RawSocket = {
    ws,
    log,
    closed,
    send(data) {
      ws.send(data);
    },
    push(joinRef, ref, topic, event, payload) {
      ws.send(JSON.stringify([joinRef, ref, topic, event, payload]));
    },
    next(predicate = () => true, timeout = 5_000) {
      const index = queue.findIndex(predicate);
      if (index >= 0) return Promise.resolve(queue.splice(index, 1)[0]);
      if (closeInfo) {
        return Promise.reject(
          new Error(`socket already closed (${closeInfo.code} ${closeInfo.reason})`),
        );
      }
      return new Promise<RawFrame>((resolve, reject) => {
        const waiter: _Waiter = {
          predicate,
          resolve,
          reject,
          timer: setTimeout(() => {
            waiters.delete(waiter);
            const seen = log.map((f) => String(f.raw).slice(0, 200)).join("\n  ");
            reject(new Error(`no matching frame within ${timeout} ms; received:\n  ${seen}`));
          }, timeout),
        };
        waiters.add(waiter);
      });
    },
    close(code, reason) {
      if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) {
        ws.close(code, reason);
      }
      return closed;
    },
  };

  return new Promise<RawSocket>((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.close();
      closed.then(() => reject(new Error(`WebSocket ${url} did not open within ${timeoutMs} ms`)));
    }, timeoutMs);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve(socket);
    };
    ws.onerror = () => {};
    closed.then((info) => {
      clearTimeout(timer);
      reject(new Error(`WebSocket ${url} closed before opening (${info.code} ${info.reason})`));
    });
  });
}

/** True for a `phx_reply` frame with this ref. */
export function isReply(ref: string): (frame: RawFrame) => boolean {
  return (f) => f.event === "phx_reply" && f.ref === ref;
}

/** The `{status, response}` of a reply frame. */
export function replyOf(frame: RawFrame): { status: string; response: Record<string, unknown> } {
  return frame.payload as { status: string; response: Record<string, unknown> };
}

/**
 * Sends a WebSocket upgrade request over a plain TCP connection and returns the HTTP status
 * line's code and the headers' text, without completing any upgrade (for handshake refusals).
 * `headers` are added verbatim (e.g. a `Sec-WebSocket-Protocol` spelled the way one client does).
 */
export async function upgradeStatus(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; head: string }> {
  const u = new URL(url);
  const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
  try {
    const request = [
      `GET ${u.pathname}${u.search} HTTP/1.1`,
      `Host: ${u.host}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version: 13",
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
      "",
      "",
    ].join("\r\n");
    await conn.write(new TextEncoder().encode(request));
    const decoder = new TextDecoder();
    const buf = new Uint8Array(4096);
    let text = "";
    while (!text.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
    }
    const head = text.split("\r\n\r\n")[0];
    const status = Number(head.match(/^HTTP\/1\.1 (\d{3})/)?.[1] ?? 0);
    return { status, head };
  } finally {
    conn.close();
  }
}

/**
 * How the server answered a WebSocket upgrade: `"accepted"`, the refusal word of a refused one
 * (its 101 carries `x-switchboard-refusal`, and the socket closes with the refusal's 4xxx code
 * after a linger), or `"http <status>"` when the upgrade itself was refused.
 */
export async function upgradeOutcome(
  url: string,
  headers: Record<string, string> = {},
): Promise<string> {
  const { status, head } = await upgradeStatus(url, headers);
  if (status !== 101) return `http ${status}`;
  return head.match(/^x-switchboard-refusal: *(\S+)/im)?.[1] ?? "accepted";
}
