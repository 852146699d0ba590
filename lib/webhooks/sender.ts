/**
 * Sends webhook events to the app's backend: batched (one `POST` per `batchMs` at most), signed
 * (`X-Switchboard-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, Web Crypto), at least
 * once (a non-2xx answer or a timeout is retried on the `retryMs` schedule, then logged and
 * counted). One batch is in flight at a time, so events arrive in order; the queue is bounded
 * (the oldest events are dropped and counted), so a dead receiver never grows memory, and
 * nothing here is on the path of delivery to clients.
 *
 * @example
 * ```ts
 * const sender = new WebhookSender({
 *   url: "https://app.example.com/hooks/switchboard",
 *   secret: "a-secret-of-16-chars-or-more",
 *   metrics: new Metrics(),
 * });
 * sender.enqueue({ name: "channel_occupied", topic: "status:acme" });
 * await sender.close();
 * ```
 * @module
 */
import type { Metrics } from "../metrics.ts";
import { defaultLogger, describeError, type Logger } from "../log.ts";
import type { Clock } from "../core/time.ts";
import { hmacKey } from "../auth.ts";

/** The events a webhook carries. */
export type WebhookEventName =
  | "channel_occupied"
  | "channel_vacated"
  | "member_added"
  | "member_removed";

/** One event of a webhook body. */
export interface WebhookEvent {
  /** Unique: a receiver drops an event it has seen (a retried batch repeats its events). */
  id: string;
  name: WebhookEventName;
  topic: string;
  /** The presence key, for `member_added`/`member_removed`. */
  user_id?: string;
}

/** The JSON body of a webhook `POST`. */
export interface WebhookBody {
  time_ms: number;
  events: WebhookEvent[];
}

/** The header carrying the signature. */
export const SIGNATURE_HEADER = "X-Switchboard-Signature";

/** Delays between tries by default: 4 tries over 40 s. */
export const DEFAULT_RETRY_MS: readonly number[] = [2_000, 8_000, 30_000];

/** Options of {@link WebhookSender}. */
export interface WebhookSenderOptions {
  url: string;
  secret: string;
  metrics: Metrics;
  log?: Logger;
  clock?: Clock;
  /** Waits between tries of one batch (default {@link DEFAULT_RETRY_MS}). */
  retryMs?: readonly number[];
  /** A try that has no answer within this long failed (default 10 s). */
  timeoutMs?: number;
  /** Events collect this long before a batch goes (default 1000 ms). */
  batchMs?: number;
  /** Events per request at most (default 100). */
  maxBatch?: number;
  /** Events waiting at most; past it the oldest are dropped (default 10,000). */
  maxQueue?: number;
}

/** The `sha256=<hex>` signature of `body` with `secret` (HMAC-SHA256). */
export async function signWebhook(secret: string, body: string): Promise<string> {
  const mac = await crypto.subtle.sign(
    "HMAC",
    await hmacKey(secret),
    new TextEncoder().encode(body),
  );
  return "sha256=" + [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Batches, signs and delivers webhook events; see the module doc. */
export class WebhookSender {
  readonly #options: WebhookSenderOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #retryMs: readonly number[];
  readonly #maxQueue: number;
  #queue: WebhookEvent[] = [];
  #timer?: ReturnType<typeof setTimeout>;
  #busy?: Promise<void>;
  #closed = false;
  /** Ends a retry wait or a request at close. */
  readonly #abort = new AbortController();

  constructor(options: WebhookSenderOptions) {
    this.#options = options;
    this.#log = options.log ?? defaultLogger;
    this.#clock = options.clock ?? Date;
    this.#retryMs = options.retryMs ?? DEFAULT_RETRY_MS;
    this.#maxQueue = options.maxQueue ?? 10_000;
    const { metrics } = options;
    metrics.describe(
      "switchboard_webhook_events_total",
      "webhook events by outcome: sent, failed (every try failed), dropped (queue full)",
    );
    metrics.describe(
      "switchboard_webhook_requests_total",
      "webhook requests by result (ok, or error: non-2xx, timeout, network)",
    );
    metrics.gauge("switchboard_webhook_queued", "webhook events waiting to be sent", () => [[
      {},
      this.#queue.length,
    ]]);
  }

  /** Events waiting (not counting a batch in flight). */
  get queued(): number {
    return this.#queue.length;
  }

  /** Queues an event (it gets its id here); never waits. */
  enqueue(event: Omit<WebhookEvent, "id">): void {
    if (this.#closed) return;
    this.#queue.push({ id: crypto.randomUUID(), ...event });
    if (this.#queue.length > this.#maxQueue) {
      const dropped = this.#queue.length - this.#maxQueue;
      this.#queue.splice(0, dropped);
      this.#options.metrics.inc(
        "switchboard_webhook_events_total",
        { outcome: "dropped" },
        dropped,
      );
    }
    this.#schedule();
  }

  /**
   * Sends what is queued with one try each (bounded by `deadlineMs`), then stops: the node is
   * going away. Events still waiting are counted as failed.
   */
  async close(deadlineMs = 2_000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    await this.#busy;
    const deadline = this.#clock.now() + deadlineMs;
    while (this.#queue.length > 0 && this.#clock.now() < deadline) {
      const batch = this.#queue.splice(0, this.#options.maxBatch ?? 100);
      const ok = await this.#post(batch, AbortSignal.timeout(deadline - this.#clock.now()));
      this.#count(batch.length, ok);
    }
    this.#count(this.#queue.splice(0).length, false);
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#busy || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#busy = this.#flush().finally(() => {
        this.#busy = undefined;
        if (this.#queue.length > 0) this.#schedule();
      });
    }, this.#options.batchMs ?? 1_000);
  }

  async #flush(): Promise<void> {
    const batch = this.#queue.splice(0, this.#options.maxBatch ?? 100);
    if (batch.length === 0) return;
    const signal = this.#abort.signal;
    for (let attempt = 0; attempt <= this.#retryMs.length && !signal.aborted; attempt++) {
      if (attempt > 0 && !await _sleep(this.#retryMs[attempt - 1], signal)) break;
      const timeout = AbortSignal.timeout(this.#options.timeoutMs ?? 10_000);
      if (await this.#post(batch, AbortSignal.any([signal, timeout]))) {
        return this.#count(batch.length, true);
      }
    }
    if (signal.aborted) {
      // Closing: the batch goes back to the front, close() sends it once more.
      this.#queue.unshift(...batch);
      return;
    }
    this.#log.error("webhook events not delivered after every try", {
      events: batch.length,
      tries: this.#retryMs.length + 1,
    });
    this.#count(batch.length, false);
  }

  /** One try; true on a 2xx answer. */
  async #post(events: WebhookEvent[], signal: AbortSignal): Promise<boolean> {
    const { url, secret, metrics } = this.#options;
    const body = JSON.stringify({ time_ms: this.#clock.now(), events } satisfies WebhookBody);
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          [SIGNATURE_HEADER]: await signWebhook(secret, body),
        },
        body,
        signal,
      });
      await response.body?.cancel();
      const ok = response.ok;
      metrics.inc("switchboard_webhook_requests_total", { result: ok ? "ok" : "error" });
      if (!ok) this.#log.warn("webhook answered with an error", { status: response.status });
      return ok;
    } catch (err) {
      metrics.inc("switchboard_webhook_requests_total", { result: "error" });
      this.#log.warn("webhook request failed", { error: describeError(err) });
      return false;
    }
  }

  #count(events: number, sent: boolean): void {
    if (events === 0) return;
    const outcome = sent ? "sent" : "failed";
    this.#options.metrics.inc("switchboard_webhook_events_total", { outcome }, events);
  }
}

/** Waits `ms`; false when `signal` aborted first. */
function _sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const done = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", done);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
