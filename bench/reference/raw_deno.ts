/**
 * The raw Deno reference: the same work as Switchboard with nothing but `Deno.serve` and
 * `Deno.upgradeWebSocket` — the runtime's limit for this design.
 *
 * - WS `/socket/websocket?user_id=U`: Phoenix v2 frames; `phx_join` adds the socket to the topic
 *   and replies ok; `heartbeat` is answered. On `record:*` topics a join also pushes
 *   `presence_state` and broadcasts an (unbatched) `presence_diff`, like naive Phoenix presence.
 * - SSE `GET /events?topic=T`: one stream per viewer, `event:`/`data:` lines per message.
 * - `POST /api/broadcast` `{topic, event, payload}` or an array: each message is encoded once
 *   and sent to every subscriber of the topic.
 *
 * Prints `raw listening on http://HOST:PORT` (env PORT, default 0; HOST, default 127.0.0.1).
 * @module
 */
type Sub = { ws?: WebSocket; sse?: ReadableStreamDefaultController<Uint8Array> };
type Meta = { name: unknown; state: string; online_at: number; phx_ref: string };
const topics = new Map<string, Set<Sub>>();
const presences = new Map<string, Map<string, { metas: Meta[] }>>();
const enc = new TextEncoder();
let refs = 0;

function publish(topic: string, event: string, payload: unknown): void {
  const subs = topics.get(topic);
  if (!subs) return;
  const frame = JSON.stringify([null, null, topic, event, payload]);
  let sse: Uint8Array | undefined;
  for (const s of subs) {
    if (s.ws) s.ws.send(frame);
    else s.sse!.enqueue(sse ??= enc.encode(`event: ${event}\ndata: ${frame}\n\n`));
  }
}

function subscribe(topic: string, sub: Sub): () => void {
  let set = topics.get(topic);
  if (!set) topics.set(topic, set = new Set());
  set.add(sub);
  return () => set.delete(sub);
}

function socket(req: Request, userId: string): Response {
  const { socket: ws, response } = Deno.upgradeWebSocket(req);
  const leaves: (() => void)[] = [];
  ws.onmessage = (e) => {
    const [jr, ref, topic, event, payload] = JSON.parse(e.data);
    const reply = (response: unknown) =>
      ws.send(JSON.stringify([jr, ref, topic, "phx_reply", { status: "ok", response }]));
    if (event === "heartbeat") return reply({});
    if (event !== "phx_join") return;
    reply({});
    leaves.push(subscribe(topic, { ws }));
    if (!topic.startsWith("record:")) return;
    let state = presences.get(topic);
    if (!state) presences.set(topic, state = new Map());
    const meta = {
      name: payload.name,
      state: "viewing",
      online_at: Date.now(),
      phx_ref: `${++refs}`,
    };
    state.set(userId, { metas: [meta] });
    ws.send(JSON.stringify([jr, null, topic, "presence_state", Object.fromEntries(state)]));
    publish(topic, "presence_diff", { joins: { [userId]: { metas: [meta] } }, leaves: {} });
    leaves.push(() => {
      state.delete(userId);
      publish(topic, "presence_diff", { joins: {}, leaves: { [userId]: { metas: [meta] } } });
    });
  };
  ws.onclose = () => leaves.forEach((leave) => leave());
  return response;
}

function events(topic: string): Response {
  let leave = () => {};
  const stream = new ReadableStream<Uint8Array>({
    start(sse) {
      sse.enqueue(enc.encode(`event: joined\ndata: {}\n\n`));
      leave = subscribe(topic, { sse });
    },
    cancel: () => leave(),
  });
  return new Response(stream, { headers: { "content-type": "text/event-stream" } });
}

Deno.serve({
  port: Number(Deno.env.get("PORT") ?? 0),
  hostname: Deno.env.get("HOST") ?? "127.0.0.1",
  onListen: ({ hostname, port }) => console.log(`raw listening on http://${hostname}:${port}`),
}, async (req) => {
  const url = new URL(req.url);
  if (url.pathname === "/socket/websocket") return socket(req, url.searchParams.get("user_id")!);
  if (url.pathname === "/events") return events(url.searchParams.get("topic")!);
  if (url.pathname === "/api/broadcast" && req.method === "POST") {
    const body = await req.json();
    const messages = Array.isArray(body) ? body : [body];
    for (const m of messages) publish(m.topic, m.event, m.payload ?? {});
    return Response.json({ accepted: messages.length }, { status: 202 });
  }
  if (url.pathname === "/healthz") return Response.json({ status: "ok" });
  return new Response("not found", { status: 404 });
});
