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
  options: { client?: Deno.HttpClient } = {},
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
