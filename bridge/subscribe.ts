/**
 * `POST /subscribe/<channel>` and `POST /psubscribe/<pattern>`: Server-Sent Events streams
 * fed by a dedicated Redis subscriber connection, in the line format `@upstash/redis` parses:
 *
 * ```text
 * data: subscribe,<channel>,1
 * data: message,<channel>,<payload>
 * data: psubscribe,<pattern>,1
 * data: pmessage,<pattern>,<channel>,<payload>
 * ```
 *
 * Payloads are sent raw (never base64, whatever `Upstash-Encoding` says): the client parses
 * these lines without decoding them. Each event is one line (see {@link oneLine}).
 * @module
 */
import { withTimeout } from "./commands.ts";
import { openDedicated } from "./redis.ts";

/** Which kind of subscription a stream carries. */
export type SubscriptionKind = "subscribe" | "psubscribe";

/** Options of {@link openSubscription}. */
export interface SubscriptionOptions {
  /** Redis URL for the dedicated subscriber connection. */
  redisUrl: string;
  /** `subscribe` (one channel) or `psubscribe` (one pattern). */
  kind: SubscriptionKind;
  /** The channel (`subscribe`) or pattern (`psubscribe`). */
  target: string;
  /** Interval of `: ping` comment lines; 0 disables them. */
  heartbeatMs: number;
  /** Give up connecting to Redis after this long. */
  connectTimeoutMs: number;
  /** A client that lets this many events pile up unread is disconnected. */
  maxBufferedEvents: number;
  /** Called once when the stream ends, for whatever reason. */
  onClose?: () => void;
}

/** An open subscription stream. */
export interface Subscription {
  /** The `text/event-stream` response to return to the HTTP client. */
  response: Response;
  /** Ends the stream and closes the Redis connection. Idempotent. */
  close(): void;
  /** True once the stream has ended. */
  readonly closed: boolean;
}

const encoder = new TextEncoder();

/** Formats one SSE event of one line (see {@link oneLine}). */
export function sseEvent(data: string): Uint8Array {
  return encoder.encode(`data: ${data}\n\n`);
}

/**
 * A message payload as one line. `@upstash/redis` reads each `data:` line as a message of its
 * own (it does not join multi-line SSE events), so a payload with a line break must not be
 * sent as several lines. JSON with line breaks between its tokens is sent compact (the client
 * parses it to the same value); any other text is sent as a JSON string, which the client's
 * default deserialization turns back into exactly that text.
 */
export function oneLine(payload: string): string {
  if (!/[\r\n]/.test(payload)) return payload;
  try {
    return JSON.stringify(JSON.parse(payload));
  } catch {
    return JSON.stringify(payload);
  }
}

/**
 * Connects a dedicated subscriber, subscribes, and returns the SSE response. Rejects (with the
 * connection closed) if Redis cannot be reached or refuses the subscription.
 */
export async function openSubscription(options: SubscriptionOptions): Promise<Subscription> {
  const { kind, target } = options;
  const connection = await openDedicated(options.redisUrl, {
    reconnect: true,
    name: "upstash-bridge-sub",
    timeoutMs: options.connectTimeoutMs,
  });

  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let closed = false;
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    // Called when the HTTP client disconnects (Deno.serve cancels the body). `request.signal`
    // is not used: with Deno.serve's legacy abort behaviour it also fires on success.
    cancel() {
      close();
    },
  }, new CountQueuingStrategy({ highWaterMark: 1 }));

  function close(error?: Error): void {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    connection.destroy();
    try {
      if (error) controller.error(error);
      else controller.close();
    } catch {
      // already closed or cancelled by the reader
    }
    options.onClose?.();
  }

  function send(chunk: Uint8Array): void {
    if (closed) return;
    if ((controller.desiredSize ?? 0) < -options.maxBufferedEvents) {
      close(new Error("subscriber is too slow, stream dropped"));
      return;
    }
    controller.enqueue(chunk);
  }

  // Messages that arrive in the same TCP read as the subscribe confirmation are held back
  // until the `subscribe` line has been sent, so the client always sees it first.
  let early: Uint8Array[] | undefined = [];
  const deliver = (chunk: Uint8Array) => early ? early.push(chunk) : send(chunk);
  const listener = kind === "subscribe"
    ? (message: string, channel: string) =>
      deliver(sseEvent(`message,${oneLine(channel)},${oneLine(message)}`))
    : (message: string, channel: string) =>
      deliver(sseEvent(`pmessage,${target},${oneLine(channel)},${oneLine(message)}`));
  try {
    await withTimeout(
      kind === "subscribe"
        ? connection.subscribe(target, listener)
        : connection.pSubscribe(target, listener),
      options.connectTimeoutMs,
    );
  } catch (error) {
    close();
    throw error;
  }
  send(sseEvent(`${kind},${target},1`));
  for (const chunk of early) send(chunk);
  early = undefined;
  if (options.heartbeatMs > 0) {
    heartbeat = setInterval(() => send(encoder.encode(": ping\n\n")), options.heartbeatMs);
  }

  const response = new Response(stream, {
    headers: {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    },
  });
  return {
    response,
    close: () => close(),
    get closed() {
      return closed;
    },
  };
}
