/**
 * A live feed over Server-Sent Events with honest connection state and an HTTP polling
 * fallback. Runs in browsers (and in Deno, which has EventSource too).
 *
 * - Resume is EventSource's own: the browser resends the last `id:` as `Last-Event-ID` when it
 *   reconnects, so the server replays what was missed.
 * - State is what is known, never hoped: `live` only after the stream opened (or a poll
 *   answered), `reconnecting` with the time it started, `offline` when the browser says so.
 *   A stream silent for `verifyAfterMs` is checked with one cheap poll (proxies can keep a dead
 *   stream looking open; SSE comment heartbeats are invisible to scripts).
 * - Without EventSource, when the stream fails for good (an HTTP error or a proxy that breaks
 *   `text/event-stream`), or while it keeps failing for `fallbackAfterMs`, the feed polls
 *   `poll.url` with `If-None-Match` (a 304 costs nothing) and exponential backoff with jitter,
 *   and goes back to the stream when it can.
 *
 * @example
 * ```ts
 * const feed = openFeed({
 *   url: "/events?topic=status:acme",
 *   events: ["joined", "status"],
 *   onEvent: (e) => console.log(e.event, e.payload),
 *   onState: (s) => console.log(s.kind),
 *   poll: { url: "/api/topics/status:acme", onData: (body) => console.log(body) },
 * });
 * ```
 * @module
 */
import { DELTA_FORMAT, DeltaDecoder } from "./delta.ts";

/**
 * The connection state of a feed or socket. `since` is a `Date.now()` timestamp. `refused`: the
 * server closed the socket with a refusal (close codes 4001–4011: an expired or revoked token,
 * the user disconnected by the app's backend, …); connecting again with the same params would
 * be refused again, so the socket stays closed until the app connects anew (a fresh token).
 */
export type ConnectionState =
  | { kind: "connecting" }
  | { kind: "live"; via: "sse" | "poll" | "websocket" | "longpoll"; since: number }
  | { kind: "reconnecting"; since: number }
  | { kind: "offline"; since: number }
  | { kind: "refused"; code: number; reason: string; since: number };

/**
 * One SSE event: `data` is `{topic, payload}` (or `{topic, delta}`, applied here); `id` is the
 * stream cursor so far.
 */
export interface FeedEvent {
  event: string;
  topic: string;
  payload: Record<string, unknown>;
  id: string;
  /** It came as a Fossil delta (see {@link FeedOptions.deltas}). */
  delta?: boolean;
}

/** Options of {@link openFeed}. */
export interface FeedOptions {
  /** The SSE URL, e.g. `/events?topic=status:acme`. */
  url: string;
  /** The event names to listen to, e.g. `["joined", "status"]`. */
  events: string[];
  onEvent(event: FeedEvent): void;
  onState?(state: ConnectionState): void;
  /** The polling fallback: a URL answering JSON with an `ETag`, e.g. `/api/topics/<topic>`. */
  poll?: {
    url: string;
    onData(body: unknown): void;
    /** First and normal interval (default 5 s). */
    intervalMs?: number;
    /** Backoff ceiling (default 60 s). */
    maxIntervalMs?: number;
  };
  /** Reconnecting this long switches to polling (default 20 s). */
  fallbackAfterMs?: number;
  /** A live stream silent this long is verified with one poll (default 60 s). */
  verifyAfterMs?: number;
  /** After a hard stream failure, try the stream again this often (default 60 s). */
  retryStreamMs?: number;
  /** Resume from this SSE id (a feed taken over from another tab); default: start live. */
  cursor?: string;
  /**
   * Ask for Fossil deltas (`delta=fossil`, docs/deltas.md) and apply them, so `onEvent` always
   * gets full payloads; a delta that cannot be applied reopens the stream from the event before
   * it, which the server answers with full payloads. Default false.
   */
  deltas?: boolean;
  /** Inject or disable (null) EventSource; defaults to the global one. */
  EventSource?: typeof EventSource | null;
}

/** An open feed. */
export interface Feed {
  readonly state: ConnectionState;
  /** Deltas applied so far (0 unless {@link FeedOptions.deltas}). */
  readonly deltasApplied: number;
  /** `sse` while the stream is used, `poll` while polling. */
  readonly mode: "sse" | "poll";
  /** The last `id:` received (the resume cursor). */
  readonly lastEventId: string;
  /** Checks now: one poll (when configured) and, unless live, a new stream attempt. */
  refresh(): Promise<boolean>;
  close(): void;
}

const _CLOSED = 2;

/** Opens a feed; see the module documentation. */
export function openFeed(options: FeedOptions): Feed {
  const ES = options.EventSource === undefined
    ? (globalThis.EventSource as typeof EventSource | undefined)
    : options.EventSource ?? undefined;
  const poll = options.poll;
  const baseDelay = poll?.intervalMs ?? 5_000;
  const maxDelay = poll?.maxIntervalMs ?? 60_000;
  const fallbackAfterMs = options.fallbackAfterMs ?? 20_000;
  const verifyAfterMs = options.verifyAfterMs ?? 60_000;
  const retryStreamMs = options.retryStreamMs ?? 60_000;

  let state: ConnectionState = { kind: "connecting" };
  let mode: "sse" | "poll" = ES ? "sse" : "poll";
  let source: EventSource | undefined;
  let lastEventId = options.cursor ?? "";
  let etag = "";
  let lastSeen = 0;
  let lastStreamTry = 0;
  /** The stream answered but not as a stream: don't retry it at once. */
  let streamBroken = !ES;
  let delay = baseDelay;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const deltas = options.deltas ? new DeltaDecoder() : undefined;
  const streamUrl = deltas
    ? `${options.url}${options.url.includes("?") ? "&" : "?"}delta=${DELTA_FORMAT}`
    : options.url;

  const setState = (next: ConnectionState) => {
    if (closed) return;
    const same = next.kind === state.kind &&
      (next.kind !== "live" || (state.kind === "live" && state.via === next.via));
    if (same) return;
    state = next;
    options.onState?.(next);
  };
  const failing = () => {
    if (state.kind !== "reconnecting" && state.kind !== "offline") {
      setState({ kind: "reconnecting", since: Date.now() });
    }
  };
  const jitter = (ms: number) => Math.round(ms * (0.8 + Math.random() * 0.4));

  function openStream(): void {
    clearTimeout(timer);
    source?.close();
    mode = "sse";
    lastStreamTry = Date.now();
    // A new EventSource cannot send Last-Event-ID: the server takes the cursor as `cursor=`.
    const url = lastEventId
      ? `${streamUrl}${streamUrl.includes("?") ? "&" : "?"}cursor=${
        encodeURIComponent(lastEventId)
      }`
      : streamUrl;
    const es = source = new ES!(url);
    es.onopen = () => {
      lastSeen = Date.now();
      streamBroken = false;
      setState({ kind: "live", via: "sse", since: Date.now() });
    };
    for (const name of options.events) {
      es.addEventListener(name, (e) => {
        if (es !== source) return;
        const m = e as MessageEvent<string>;
        lastSeen = Date.now();
        const before = lastEventId;
        if (m.lastEventId) lastEventId = m.lastEventId;
        let data: { topic?: string; payload?: Record<string, unknown>; delta?: unknown };
        try {
          data = JSON.parse(m.data);
        } catch {
          return;
        }
        const topic = data.topic ?? "";
        let payload = data.payload ?? {};
        const isDelta = typeof data.delta === "string";
        if (deltas && isDelta) {
          const rebuilt = deltas.apply(topic, name, data.delta as string);
          if (!rebuilt) {
            // Ask again from the event before this one: a resumed stream starts with full ones.
            lastEventId = before;
            openStream();
            return;
          }
          payload = rebuilt;
        } else if (isDelta) return; // not asked for: nothing to apply it to
        else deltas?.full(topic, name, payload);
        setState({ kind: "live", via: "sse", since: Date.now() });
        options.onEvent({
          event: name,
          topic,
          payload,
          id: lastEventId,
          ...(isDelta ? { delta: true } : {}),
        });
      });
    }
    es.onerror = () => {
      if (es !== source) return;
      failing();
      const hard = es.readyState === _CLOSED;
      const tooLong = state.kind !== "live" && "since" in state &&
        Date.now() - state.since >= fallbackAfterMs;
      if (!hard && !tooLong) return; // the browser retries by itself, with Last-Event-ID
      es.close();
      source = undefined;
      if (hard) streamBroken = true;
      if (poll) {
        mode = "poll";
        schedule(hard ? 0 : delay);
      } else {
        schedule(delay);
        delay = Math.min(delay * 2, maxDelay);
      }
    };
  }

  async function pollOnce(): Promise<boolean> {
    if (!poll) return false;
    try {
      const res = await fetch(poll.url, {
        headers: etag ? { "if-none-match": etag } : {},
        cache: "no-store",
      });
      if (res.status === 304) {
        lastSeen = Date.now();
        return true;
      }
      if (!res.ok) {
        await res.body?.cancel();
        return false;
      }
      const body = await res.json();
      etag = res.headers.get("etag") ?? "";
      lastSeen = Date.now();
      if (!closed) poll.onData(body);
      return true;
    } catch {
      return false;
    }
  }

  function schedule(ms: number): void {
    clearTimeout(timer);
    if (!closed) timer = setTimeout(tick, ms === 0 ? 0 : jitter(ms));
  }

  async function tick(): Promise<void> {
    if (mode === "sse") { // a stream retry without a poll URL
      if (ES) openStream();
      return;
    }
    const ok = await pollOnce();
    if (closed || mode !== "poll") return;
    if (ok) {
      delay = baseDelay;
      if (ES && (!streamBroken || Date.now() - lastStreamTry >= retryStreamMs)) {
        openStream();
        return;
      }
      setState({ kind: "live", via: "poll", since: Date.now() });
    } else {
      failing();
      delay = Math.min(delay * 2, maxDelay);
    }
    schedule(delay);
  }

  // A dead stream can look open: verify a silent one with one poll.
  const watchdog = setInterval(async () => {
    if (closed || !poll || mode !== "sse" || state.kind !== "live") return;
    if (Date.now() - lastSeen < verifyAfterMs) return;
    if (await pollOnce()) return;
    if (mode === "sse" && ES) {
      failing();
      openStream();
    }
  }, Math.max(1_000, verifyAfterMs / 2));

  const onOffline = () => setState({ kind: "offline", since: Date.now() });
  const onOnline = () => void feed.refresh();
  globalThis.addEventListener?.("offline", onOffline);
  globalThis.addEventListener?.("online", onOnline);

  const feed: Feed = {
    get state() {
      return state;
    },
    get mode() {
      return mode;
    },
    get lastEventId() {
      return lastEventId;
    },
    get deltasApplied() {
      return deltas?.applied ?? 0;
    },
    async refresh() {
      if (closed) return false;
      const online = (globalThis.navigator as { onLine?: boolean } | undefined)?.onLine !== false;
      if (state.kind === "offline" && online) {
        setState({ kind: "reconnecting", since: state.since });
      }
      delay = baseDelay;
      const ok = await pollOnce();
      if (mode === "sse" && ES && state.kind !== "live") openStream();
      if (mode === "poll") {
        if (ok && ES && !streamBroken) openStream();
        else if (ok) setState({ kind: "live", via: "poll", since: Date.now() });
        if (mode === "poll") schedule(baseDelay);
      }
      return ok;
    },
    close() {
      closed = true;
      clearTimeout(timer);
      clearInterval(watchdog);
      source?.close();
      globalThis.removeEventListener?.("offline", onOffline);
      globalThis.removeEventListener?.("online", onOnline);
    },
  };

  const offline = (globalThis.navigator as { onLine?: boolean } | undefined)?.onLine === false;
  if (offline) onOffline();
  if (mode === "sse") openStream();
  else schedule(0);
  return feed;
}
