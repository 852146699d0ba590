/**
 * Resource limits, against the real server the way an attacker finds them (issue #12, items 1,
 * 2, 3 and 13): descriptor exhaustion under a lowered open-file limit, the connection cap,
 * oversized bodies streamed without a length, a broadcast flood against the history budget,
 * over-long topic names on every entry point, the numbering of forgotten topics, and clients
 * that stop reading and never answer a close.
 */
import assert from "node:assert/strict";
import { Hub } from "../../lib/core/hub.ts";
import { MAX_TOPIC_BYTES } from "../../lib/core/topic.ts";
import { MemoryBroker } from "../../lib/core/broker_memory.ts";
import { type ServerProcess, startServer } from "../support/server.ts";
import { openSse } from "../support/sse.ts";
import { delay, waitFor } from "../support/wait.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HANDSHAKE = (path: string) =>
  encoder.encode(
    `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );

function rssMiB(server: ServerProcess): number {
  const status = Deno.readTextFileSync(`/proc/${server.process.pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+)/)![1]) / 1024;
}

/** A masked client text frame (zero mask), as a browser would send it. */
function textFrame(text: string): Uint8Array {
  const data = encoder.encode(text);
  assert.ok(data.length < 126);
  const frame = new Uint8Array(6 + data.length);
  frame.set([0x81, 0x80 | data.length, 0, 0, 0, 0]);
  frame.set(data, 6);
  return frame;
}

/** The first bytes the server answers on `conn` (up to 4 KiB), or "" when it closes. */
async function readHead(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(4096);
  const n = await conn.read(buf).catch(() => null);
  return decoder.decode(buf.subarray(0, n ?? 0));
}

/** The kernel's TCP state of our end of `conn` ("01" established, "08" close-wait: peer closed). */
function tcpState(conn: Deno.Conn): string | undefined {
  const hex = (addr: Deno.Addr) =>
    (addr as Deno.NetAddr).port.toString(16).toUpperCase().padStart(4, "0");
  const local = hex(conn.localAddr);
  const remote = hex(conn.remoteAddr);
  for (const line of Deno.readTextFileSync("/proc/net/tcp").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1]?.endsWith(`:${local}`) && fields[2]?.endsWith(`:${remote}`)) return fields[3];
  }
  return undefined;
}

/**
 * POSTs `total` bytes as a chunked body (no Content-Length, as an attacker would) over raw TCP,
 * stopping as soon as the server answers or drops the connection; returns the status line.
 */
async function streamingPost(
  server: ServerProcess,
  path: string,
  total: number,
): Promise<{ status: string; sent: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await conn.write(encoder.encode(
    `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n` +
      `Transfer-Encoding: chunked\r\n\r\n`,
  ));
  let answer: string | undefined;
  const reading = readHead(conn).then((text) => answer = text);
  const chunk = 64 * 1024;
  const line = encoder.encode(`${chunk.toString(16)}\r\n${"[".repeat(chunk)}\r\n`);
  let sent = 0;
  while (sent < total && answer === undefined) {
    try {
      // write() may take part of the buffer: the rest must follow, or the chunking breaks.
      for (let at = 0; at < line.length;) at += await conn.write(line.subarray(at));
    } catch {
      break; // the server dropped the connection: it stopped reading
    }
    sent += chunk;
  }
  await Promise.race([reading, delay(5_000)]);
  conn.close();
  return { status: (answer ?? "").split("\r\n")[0], sent };
}

async function post(server: ServerProcess, body: unknown): Promise<Response> {
  const res = await fetch(`${server.url}/api/broadcast`, {
    method: "POST",
    body: JSON.stringify(body),
  });
  await res.body?.cancel();
  return res;
}

/** The open-file limit the descriptor test gives the server. */
const LIMIT = 256;

/** Descriptors `server`'s process holds now, read from `/proc`. */
function openFds(server: ServerProcess): number {
  return [...Deno.readDirSync(`/proc/${server.process.pid}/fd`)].length;
}

/**
 * Opens idle connections to `server` (pushed onto `idle`) in batches of 16 until one is refused
 * or the server stops taking them in (its descriptor count in `/proc` stays put for 2 s at the
 * limit). Bounded: 1,000 connections, 30 s. Returns the most descriptors seen and how it
 * ended: a connection refused, or the server stalled at its limit.
 */
async function exhaustDescriptors(
  server: ServerProcess,
  idle: Deno.Conn[],
): Promise<{ refused: boolean; stalled: boolean; mostFds: number; connections: number }> {
  const deadline = Date.now() + 30_000;
  let mostFds = openFds(server);
  let refused = false;
  let stalled = false;
  while (!refused && !stalled && idle.length < 1_000 && Date.now() < deadline) {
    for (let i = 0; i < 16; i++) {
      try {
        idle.push(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
      } catch {
        refused = true; // the listener is down while descriptors are exhausted
        break;
      }
    }
    // Wait until the server has taken the batch in, or has stopped taking any.
    const before = mostFds;
    let still = Date.now();
    while (!refused && Date.now() - still < 2_000 && Date.now() < deadline) {
      const now = openFds(server);
      if (now > mostFds) [mostFds, still] = [now, Date.now()];
      if (now >= before + 16) break;
      await delay(5);
    }
    // Full: the last batch was not taken in, at the limit.
    stalled = !refused && mostFds >= LIMIT - 8 && mostFds < before + 16;
  }
  return { refused, stalled, mostFds, connections: idle.length };
}

Deno.test("out of file descriptors: the process lives on, keeps its clients and recovers", async () => {
  // 256 descriptors: a few hundred idle TCP connections exhaust them.
  const server = await startServer({}, {
    wrapper: ["prlimit", `--nofile=${LIMIT}`, "--"],
    denoFlags: ["--allow-all"], // Deno reads /proc/<pid>/limits only with --allow-all
  });
  const idle: Deno.Conn[] = [];
  try {
    const ws = new WebSocket(`${server.socketUrl}/websocket?vsn=2.0.0&user_id=keeper`);
    const frames: string[] = [];
    ws.onmessage = (e) => frames.push(e.data);
    await new Promise((resolve) => ws.onopen = resolve);
    // Idle connections that never send a byte, until the server can take no more. They go in
    // batches, each left to the server's accept loop before the next: a client connecting faster
    // than the server accepts only fills the kernel's listen backlog (512 on Deno), so 400
    // connections could all succeed without the server holding one more descriptor.
    const exhaustion = await exhaustDescriptors(server, idle);
    assert.ok(
      (exhaustion.refused || exhaustion.stalled) && exhaustion.mostFds >= LIMIT - 8,
      `the server's descriptors did not run out (${JSON.stringify(exhaustion)}):\n` +
        server.output(),
    );
    // The client that was there keeps being served, by the same process.
    ws.send('[null,"hb1","phoenix","heartbeat",{}]');
    await waitFor(() => frames.some((f) => f.includes('"hb1"')), "the heartbeat reply");
    const exited = await Promise.race([server.process.status.then(() => true), delay(100)]);
    assert.equal(exited, undefined, `the process exited:\n${server.output()}`);
    // accept() failed (EMFILE) and the listener was lost: the operator is told.
    await waitFor(() => /the listener failed/.test(server.output()), "the warning");
    for (const conn of idle.splice(0)) conn.close();
    // Once descriptors are free the server accepts again.
    const healthy = await waitFor(
      async () => {
        try {
          const res = await fetch(`${server.url}/healthz`);
          await res.body?.cancel();
          return res.status === 200;
        } catch {
          return false;
        }
      },
      "the server to accept again",
      15_000,
    );
    assert.ok(healthy);
    ws.close();
    // The default cap sits below the open-file limit (256 - 64 reserved).
    assert.match(server.output(), /max 192 connections/);
  } finally {
    for (const conn of idle) conn.close();
    await server.stop();
  }
});

Deno.test("past MAX_CONNECTIONS, WebSocket, SSE and long-poll get 503 with Retry-After", async () => {
  const server = await startServer({ MAX_CONNECTIONS: "2" });
  try {
    const a = await openSse(`${server.url}/events?topic=status:cap`);
    const b = await openSse(`${server.url}/events?topic=status:cap`);
    await a.next((e) => e.event === "joined");
    await b.next((e) => e.event === "joined");
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write(HANDSHAKE("/socket/websocket?vsn=2.0.0"));
    const head = await readHead(conn);
    conn.close();
    assert.match(head, /^HTTP\/1.1 503/);
    assert.match(head, /retry-after: 5/i);
    for (const path of ["/events?topic=status:cap", "/socket/longpoll?vsn=2.0.0"]) {
      const res = await fetch(`${server.url}${path}`);
      assert.equal(res.status, 503, path);
      assert.equal(res.headers.get("retry-after"), "5");
      assert.match((await res.json()).error, /connection limit \(2\)/);
    }
    await a.close();
    // A freed slot is usable again.
    await waitFor(async () => {
      const res = await fetch(`${server.url}/healthz`);
      await res.body?.cancel();
      return res.status === 200;
    }, "a free slot");
    await b.close();
  } finally {
    await server.stop();
  }
});

Deno.test("an oversized body is refused while it streams, not buffered", async (t) => {
  const server = await startServer({});
  try {
    await t.step("long-poll POST of 200 MB: 413, and RSS stays flat", async () => {
      const res = await fetch(`${server.url}/socket/longpoll?vsn=2.0.0&user_id=big`);
      const { token } = await res.json();
      const before = rssMiB(server);
      const { status, sent } = await streamingPost(
        server,
        `/socket/longpoll?vsn=2.0.0&token=${token}`,
        200 * 1024 * 1024,
      );
      const grown = rssMiB(server) - before;
      assert.match(status, /^HTTP\/1.1 413/, `answer after ${sent} bytes`);
      assert.ok(grown < 32, `server RSS grew ${grown.toFixed(1)} MiB for a 200 MB body`);
    });
    await t.step("API POST without Content-Length past MAX_API_BODY_BYTES: 413", async () => {
      const { status } = await streamingPost(server, "/api/broadcast", 8 * 1024 * 1024);
      assert.match(status, /^HTTP\/1.1 413/);
    });
  } finally {
    await server.stop();
  }
});

Deno.test("a broadcast flood stays within HISTORY_MAX_BYTES", async () => {
  const server = await startServer({ HISTORY_MAX_BYTES: String(8 * 1024 * 1024) });
  try {
    const chunk = "p".repeat(60 * 1024);
    let sent = 0;
    const flood = async (batches: number) => {
      for (let i = 0; i < batches; i++) {
        // 15 messages of 60 KB per request (under the 1 MiB API body limit), over 100 topics.
        const res = await post(
          server,
          Array.from({ length: 15 }, () => ({
            topic: `status:flood${sent % 100}`,
            event: "status",
            payload: { n: sent++, chunk },
          })),
        );
        assert.equal(res.status, 202);
      }
    };
    // Warm-up: ~114 MB, far past the 8 MiB budget, so the heap has reached its working size
    // (without the budget, every message stays: ~120 MiB more per 114 MB).
    await flood(130);
    const before = rssMiB(server);
    await flood(130); // ~114 MB more
    const grown = rssMiB(server) - before;
    assert.ok(grown < 40, `server RSS grew ${grown.toFixed(1)} MiB for ~114 MB more broadcasts`);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const kept = Number(metrics.match(/switchboard_history_bytes\{kind="history"\} (\d+)/)![1]);
    assert.ok(kept <= 8 * 1024 * 1024, `history holds ${kept} bytes`);
    // The newest messages are still served.
    const last = await (await fetch(`${server.url}/api/topics/status:flood${3899 % 100}`)).json();
    assert.equal(last.payload.n, 3899);
  } finally {
    await server.stop();
  }
});

Deno.test(`topic names are limited to ${MAX_TOPIC_BYTES} bytes on every entry point`, async () => {
  const server = await startServer({});
  const long = `status:${"x".repeat(300)}`;
  const longest = `status:${"é".repeat((MAX_TOPIC_BYTES - 7) / 2)}`; // exactly 255 bytes
  assert.equal(encoder.encode(longest).length, MAX_TOPIC_BYTES);
  try {
    const ws = new WebSocket(`${server.socketUrl}/websocket?vsn=2.0.0&user_id=t`);
    const frames: unknown[][] = [];
    ws.onmessage = (e) => frames.push(JSON.parse(e.data));
    await new Promise((resolve) => ws.onopen = resolve);
    ws.send(JSON.stringify(["1", "1", long, "phx_join", {}]));
    ws.send(JSON.stringify(["2", "2", longest, "phx_join", {}]));
    const reply = (ref: string) =>
      waitFor(() =>
        frames.find((f) => f[1] === ref) as [unknown, unknown, unknown, unknown, {
          status: string;
          response: { reason?: string; detail?: string };
        }], `reply ${ref}`);
    const refused = (await reply("1"))[4];
    assert.equal(refused.status, "error");
    assert.equal(refused.response.reason, "invalid_topic");
    assert.match(refused.response.detail!, /at most 255 bytes/);
    assert.equal((await reply("2"))[4].status, "ok");
    ws.close();

    const sse = await fetch(`${server.url}/events?topic=${encodeURIComponent(long)}`);
    assert.equal(sse.status, 400);
    assert.match((await sse.json()).error, /at most 255 bytes/);
    const api = await fetch(`${server.url}/api/broadcast`, {
      method: "POST",
      body: JSON.stringify({ topic: long, event: "status", payload: {} }),
    });
    assert.equal(api.status, 400);
    assert.match((await api.json()).error, /topic: topic is 307 bytes long: at most 255/);
    for (const path of ["topics", "presence"]) {
      const res = await fetch(`${server.url}/api/${path}/${encodeURIComponent(long)}`);
      assert.equal(res.status, 400, path);
      assert.match((await res.json()).error, /at most 255 bytes/);
    }
    assert.equal((await post(server, { topic: longest, event: "status" })).status, 202);
    // Supabase's REST shapes prefix `realtime:`: the prefixed name obeys the same rule.
    const realtime = "x".repeat(250);
    const httpSend = await fetch(`${server.url}/api/broadcast/${realtime}/events/e`, {
      method: "POST",
      body: "{}",
    });
    assert.equal(httpSend.status, 400);
    assert.match((await httpSend.json()).error, /topic is 259 bytes long: at most 255/);
    const batch = await fetch(`${server.url}/api/broadcast`, {
      method: "POST",
      body: JSON.stringify({ messages: [{ topic: realtime, event: "e", payload: {} }] }),
    });
    assert.equal(batch.status, 400);
    assert.match((await batch.json()).error, /messages\[0\]\.topic: topic is 259 bytes/);
  } finally {
    await server.stop();
  }
});

Deno.test("a forgotten topic is numbered in a new stream: no number is ever reused", async () => {
  // A small budget: the last messages may take a quarter of it, so old topics are forgotten.
  // A clock that moves on every reading: each message has its own time.
  let now = 1_700_000_000_000;
  const hub = new Hub({
    broker: new MemoryBroker(),
    nodeId: "n1",
    history: { size: 100, maxAgeMs: 60_000, maxBytes: 8_000 },
    clock: { now: () => ++now },
  });
  const first = [1, 2, 3].map((n) => hub.broadcast("status:a", "status", { n }));
  assert.deepEqual(
    first.map((b) => [b.stream, b.seq]),
    [1, 2, 3].map((s) => [`${hub.nodeId}~${hub.runId}`, s]),
  );
  const cursor = { since: first[2].at, streams: new Map([[first[2].stream, 3]]) };
  for (let i = 0; i < 50; i++) hub.broadcast(`status:other${i}`, "status", { i });
  assert.ok(hub.keptBytes.history <= 8_000, `history ${hub.keptBytes.history} B`);
  assert.ok(hub.keptBytes.last <= 2_000, `last messages ${hub.keptBytes.last} B`);
  assert.ok(hub.keptBytes.topics < 20, `${hub.keptBytes.topics} topics kept`);
  assert.equal(hub.last("status:a"), undefined, "status:a was forgotten");
  const again = hub.broadcast("status:a", "status", { n: 4 });
  assert.notEqual(again.stream, `${hub.nodeId}~${hub.runId}`, "a new stream");
  assert.equal(again.seq, 1);
  // A client at seq 3 of the old stream gets the new message, and since the hub cannot tell
  // whether it missed messages forgotten with the topic, a reset: never a silent gap.
  const fromHub = await hub.replay("status:a", cursor);
  assert.deepEqual(fromHub.messages.map((m) => m.payload), [{ n: 4 }]);
  assert.equal(fromHub.complete, false);
  // A client that joined after the topic was kept again resumes completely.
  const fresh = { since: again.at, streams: new Map([[again.stream, 0]]) };
  assert.equal((await hub.replay("status:a", fresh)).complete, true);
});

Deno.test("topics are forgotten past 10,000: sequence state is bounded", () => {
  const hub = new Hub({ broker: new MemoryBroker(), nodeId: "n1" });
  for (let i = 0; i < 12_000; i++) hub.broadcast(`record:${i}`, "patch", { i });
  assert.equal(hub.keptBytes.topics, 10_000);
});

Deno.test("a client that never answers a close is disconnected for real", async (t) => {
  const server = await startServer({
    CLOSE_TIMEOUT_MS: "1000",
    HEARTBEAT_TIMEOUT_MS: "1000",
    MAX_OUTBOUND_BYTES: String(256 * 1024),
  });
  try {
    await t.step("WebSocket: closed for idleness, no close frame back: dropped", async () => {
      // Handshake, join, then silence: it reads nothing and never answers the close.
      const stuck = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await stuck.write(HANDSHAKE("/socket/websocket?vsn=2.0.0&user_id=stuck"));
      await delay(200);
      await stuck.write(textFrame('["1","1","status:ws-stuck","phx_join",{}]'));
      assert.equal(tcpState(stuck), "01");
      const state = await waitFor(
        () => tcpState(stuck) !== "01" && tcpState(stuck),
        "the server to close the connection",
        15_000,
      );
      assert.equal(state, "08", "close-wait: the server closed its end");
      stuck.close();
    });
    await t.step(
      "SSE: a stream that is not read is cut off and its connection closed",
      async () => {
        const stuck = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        await stuck.write(encoder.encode(
          "GET /events?topic=status:sse-stuck HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
        ));
        await delay(300);
        const chunk = "z".repeat(32 * 1024);
        for (let i = 0; i < 200 && tcpState(stuck) === "01"; i++) {
          const res = await post(
            server,
            Array.from({ length: 16 }, (_, n) => ({
              topic: "status:sse-stuck",
              event: "status",
              payload: { n, chunk },
            })),
          );
          assert.equal(res.status, 202);
        }
        const state = await waitFor(
          () => tcpState(stuck) !== "01" && tcpState(stuck),
          "the server to close the stream's connection",
          15_000,
        );
        assert.equal(state, "08");
        stuck.close();
      },
    );
  } finally {
    await server.stop();
  }
});
