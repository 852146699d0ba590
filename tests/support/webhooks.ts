/**
 * A real webhook receiver for tests: `Deno.serve` on a free port that verifies each request's
 * `X-Switchboard-Signature` with Web Crypto (independently of the server's signing code) and
 * keeps what arrived. It can answer 500 to the next requests, to test the retries.
 * @module
 */

/** One event as the receiver got it. */
export interface ReceivedEvent {
  id: string;
  name: string;
  topic: string;
  user_id?: string;
}

/** The receiver. */
export interface WebhookReceiver extends AsyncDisposable {
  url: string;
  /** Every request: whether its signature verified, its body, the status answered. */
  requests: { verified: boolean; body: string; status: number }[];
  /** The events of the requests answered 2xx, in arrival order. */
  events(): ReceivedEvent[];
  /** The next `n` requests are answered 500. */
  failNext(n: number): void;
  close(): Promise<void>;
}

/** Starts a receiver that checks signatures made with `secret`. */
export function startReceiver(secret: string): WebhookReceiver {
  const requests: WebhookReceiver["requests"] = [];
  let failing = 0;
  const keyPromise = crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const body = await req.text();
    const header = req.headers.get("x-switchboard-signature") ?? "";
    const hex = header.startsWith("sha256=") ? header.slice(7) : "";
    const mac = new Uint8Array((hex.match(/../g) ?? []).map((h) => parseInt(h, 16)));
    const verified = hex.length === 64 &&
      await crypto.subtle.verify("HMAC", await keyPromise, mac, new TextEncoder().encode(body));
    const status = !verified ? 401 : failing > 0 ? 500 : 200;
    if (status === 500) failing--;
    requests.push({ verified, body, status });
    return new Response(null, { status });
  });
  const close = async () => {
    await server.shutdown();
  };
  return {
    url: `http://127.0.0.1:${server.addr.port}/hooks`,
    requests,
    events: () =>
      requests.filter((r) => r.status === 200).flatMap((r) =>
        (JSON.parse(r.body) as { events: ReceivedEvent[] }).events
      ),
    failNext: (n) => failing = n,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The events of one topic, as `name` or `name:user_id`, in order, each event id once. */
export function eventsOf(receiver: WebhookReceiver, topic: string): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const e of receiver.events()) {
    if (e.topic !== topic || seen.has(e.id)) continue;
    seen.add(e.id);
    out.push(e.user_id === undefined ? e.name : `${e.name}:${e.user_id}`);
  }
  return out;
}
