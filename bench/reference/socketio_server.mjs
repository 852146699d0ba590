/**
 * The Socket.IO 4 reference (Node): the same work as Switchboard with the peer most users
 * would pick. Rooms are topics; `POST /api/broadcast` takes `{topic, event, payload}` or an
 * array and emits each message to its room (Socket.IO encodes it once per room broadcast).
 *
 * Client protocol (WebSocket transport only): emit `join` `(topic, params, ack)`; the ack is
 * `{status: "ok"}`. On `record:*` topics a join also emits `presence_state` to the joiner and
 * an (unbatched) `presence_diff` to the room, like the raw Deno reference.
 *
 * socket.io is installed by the bench into bench/.socketio (npm install --prefix).
 * Prints `socketio listening on http://HOST:PORT` (env PORT, default 0; HOST, default 127.0.0.1).
 */
import { createServer } from "node:http";
import { createRequire } from "node:module";
import process from "node:process";

const require = createRequire(new URL("../.socketio/package.json", import.meta.url));
const { Server } = require("socket.io");

const presences = new Map();
let refs = 0;

const http = createServer((req, res) => {
  if (req.method === "POST" && req.url === "/api/broadcast") {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      const messages = Array.isArray(body) ? body : [body];
      for (const m of messages) io.to(m.topic).emit(m.event, m.payload ?? {});
      res.writeHead(202, { "content-type": "application/json" });
      res.end(JSON.stringify({ accepted: messages.length }));
    });
    return;
  }
  res.writeHead(req.url === "/healthz" ? 200 : 404, { "content-type": "application/json" });
  res.end(JSON.stringify({ status: req.url === "/healthz" ? "ok" : "not found" }));
});

const io = new Server(http, { transports: ["websocket"], serveClient: false });

io.on("connection", (socket) => {
  socket.on("join", (topic, params, ack) => {
    socket.join(topic);
    ack?.({ status: "ok" });
    if (!String(topic).startsWith("record:")) return;
    let state = presences.get(topic);
    if (!state) presences.set(topic, state = new Map());
    const key = String(params?.user_id);
    const meta = {
      name: params?.name,
      state: "viewing",
      online_at: Date.now(),
      phx_ref: `${++refs}`,
    };
    state.set(key, { metas: [meta] });
    socket.emit("presence_state", Object.fromEntries(state));
    io.to(topic).emit("presence_diff", { joins: { [key]: { metas: [meta] } }, leaves: {} });
    socket.on("disconnect", () => {
      state.delete(key);
      io.to(topic).emit("presence_diff", { joins: {}, leaves: { [key]: { metas: [meta] } } });
    });
  });
});

http.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? "127.0.0.1", () => {
  const { address, port } = http.address();
  console.log(`socketio listening on http://${address}:${port}`);
});
