/**
 * A fetch-based Server-Sent Events reader for tests: parses `id:`, `event:`, `data:`, `retry:`
 * and comments the way EventSource does.
 * @module
 */

/** One parsed SSE event. */
export interface SseEvent {
  event: string;
  data: string;
  /** The `id:` of this event, or undefined when it had none. */
  id?: string;
  /** The last event id so far (what EventSource would send as `Last-Event-ID`). */
  lastEventId: string;
  /** `data` parsed as JSON, when it is. */
  json?: { topic: string; payload: Record<string, unknown> };
}

/** An open SSE stream. */
export interface SseStream {
  response: Response;
  /** Every event received so far, in order. */
  events: SseEvent[];
  comments: string[];
  retry?: number;
  /** Every `retry:` value received, in order. */
  retries: number[];
  /** Waits for the next event (after those already returned by `next`) matching `predicate`. */
  next(predicate?: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  close(): Promise<void>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  /** Why the stream ended, when the connection broke. */
  error?: unknown;
}

/**
 * Opens `url` and parses its events in the background. Non-2xx responses are returned unread.
 * `client` picks the HTTP client (e.g. one without connection reuse, so that every stream is a
 * new connection).
 */
export async function openSse(
  url: string,
  headers: HeadersInit = {},
  options: { client?: Deno.HttpClient; pauseMs?: number } = {},
): Promise<SseStream> {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: { accept: "text/event-stream", ...headers },
    signal: controller.signal,
    ...(options.client ? { client: options.client } : {}),
  });
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const waiters = new Set<() => void>();
  const stream: SseStream = {
    response,
    events,
    comments,
    retries: [],
    async next(predicate = () => true, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (true) {
        const index = events.findIndex((e, i) => i >= cursor && predicate(e));
        if (index >= 0) {
          cursor = index + 1;
          return events[index];
        }
        const left = deadline - Date.now();
        if (left <= 0 || done) {
          throw new Error(
            `no matching SSE event within ${timeoutMs} ms; got: ${
              JSON.stringify(events.slice(cursor).map((e) => e.event))
            }`,
          );
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(wake, left);
          function wake() {
            clearTimeout(timer);
            waiters.delete(wake);
            resolve();
          }
          waiters.add(wake);
        });
      }
    },
    async close() {
      controller.abort();
      await stream.ended.catch(() => {});
    },
    ended: Promise.resolve(),
  };
  let cursor = 0;
  let done = false;
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    return stream;
  }
  stream.ended = (async () => {
    let buffer = "";
    let lastEventId = "";
    let current: { event?: string; data: string[]; id?: string } = { data: [] };
    try {
      for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
        // A reader on a slow link: one chunk per pause, so the server's queue fills up.
        if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
        buffer += chunk;
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl).replace(/\r$/, "");
          buffer = buffer.slice(nl + 1);
          if (line === "") {
            if (current.data.length > 0) {
              if (current.id !== undefined) lastEventId = current.id;
              const data = current.data.join("\n");
              let json;
              try {
                json = JSON.parse(data);
              } catch { /* not JSON */ }
              events.push({
                event: current.event ?? "message",
                data,
                id: current.id,
                lastEventId,
                json,
              });
              for (const wake of [...waiters]) wake();
            } else if (current.id !== undefined) lastEventId = current.id;
            current = { data: [] };
          } else if (line.startsWith(":")) comments.push(line.slice(1).trim());
          else {
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") current.event = value;
            else if (field === "data") current.data.push(value);
            else if (field === "id") current.id = value;
            else if (field === "retry") {
              stream.retry = Number(value);
              stream.retries.push(stream.retry);
            }
          }
        }
      }
    } catch (err) {
      // Aborted by close(), or the connection broke (server killed): either way the stream ends.
      if (!(err instanceof DOMException && err.name === "AbortError")) stream.error = err;
    } finally {
      done = true;
      for (const wake of [...waiters]) wake();
    }
  })();
  return stream;
}

/** What {@link followSse} saw over all its connections. */
export interface SseFollow {
  /** Every event of every connection, in order. */
  events: SseEvent[];
  /** Streams opened (the first one included). */
  connects: number;
  /** Streams opened that delivered no event at all (a resume cut before it started). */
  empty: number;
}

/**
 * Reads `url` the way EventSource does on a bad link: whenever the stream ends (cut as a slow
 * consumer), it reconnects with the last event id as `Last-Event-ID`, until `done` holds for
 * the events so far or `maxConnects` streams were opened. `pauseMs` slows the reading down.
 */
export async function followSse(
  url: string,
  options: {
    done: (events: SseEvent[]) => boolean;
    maxConnects: number;
    pauseMs?: number;
    /** Where to resume from on the first connection (an id an earlier stream ended at). */
    lastEventId?: string;
    /** Called once the first stream is open (subscribed: its join was answered). */
    opened?: () => void;
  },
): Promise<SseFollow> {
  const follow: SseFollow = { events: [], connects: 0, empty: 0 };
  let lastEventId = options.lastEventId ?? "";
  while (follow.connects < options.maxConnects && !options.done(follow.events)) {
    follow.connects++;
    const headers: Record<string, string> = lastEventId ? { "last-event-id": lastEventId } : {};
    const stream = await openSse(url, headers, { pauseMs: options.pauseMs });
    if (!stream.response.ok) throw new Error(`SSE refused: ${stream.response.status}`);
    if (follow.connects === 1) options.opened?.();
    let seen = 0;
    // Bounded: the stream ends (cut or closed), or the events say the reader is done.
    while (true) {
      const ended = await Promise.race([
        stream.ended.then(() => true),
        stream.next((_e) => true, 30_000).then(() => false),
      ]).catch(() => true);
      for (const event of stream.events.slice(seen)) {
        follow.events.push(event);
        lastEventId = event.lastEventId || lastEventId;
      }
      seen = stream.events.length;
      if (ended || options.done(follow.events)) break;
    }
    if (seen === 0) follow.empty++;
    await stream.close();
  }
  return follow;
}
