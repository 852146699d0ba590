/**
 * The load generator: one process holding many client connections, driven by the bench over
 * stdin/stdout (one JSON command per line in, one JSON answer per line out, matched by `id`).
 *
 * It speaks the same raw bytes to every target: Phoenix v2 frames (Switchboard and the raw
 * Deno reference) or Engine.IO v4 / Socket.IO packets (`0{…}` open, `40` connect,
 * `420["join",…]` with ack, `42["event",payload]` broadcasts, `2`/`3` ping/pong), over its own
 * minimal WebSocket client (lib/wire.ts). Deliveries are counted by their first bytes; only
 * sampled connections (latency) and presence-storm connections decode frames.
 *
 * Run by bench/main.ts: `deno run --allow-net bench/loadgen.ts`.
 * @module
 */
import {
  clientFrame,
  FrameReader,
  httpOpen,
  sseRequest,
  startsWith,
  text,
  upgradeRequest,
  writeAll,
} from "./lib/wire.ts";
import { percentiles } from "./lib/stats.ts";

/** The client protocols: Phoenix v2 JSON frames, Engine.IO v4 + Socket.IO, or an SSE stream. */
export type Proto = "phoenix" | "eio" | "sse";

const _enc = new TextEncoder();
const OPENING = 0, OPEN = 1, JOINING = 2, LIVE = 3, CLOSED = 4;
/** How a fan-out frame begins: `[null,null,` (Phoenix broadcast) or `42[` (Socket.IO event). */
const _DELIVERY: Record<Proto, Uint8Array> = {
  phoenix: _enc.encode("[null,null,"),
  eio: _enc.encode("42["),
  sse: _enc.encode("event:"),
};

/** The `occupancy` event's name as it follows the topic in a Phoenix frame. */
const _OCCUPANCY = _enc.encode('"occupancy",');

/**
 * True for an `occupancy` event (counts a channel pushes on its own, not a delivery of a
 * published message): after `[null,null,` comes the topic string, then the event name. SSE
 * streams are counted in bytes only.
 */
function isOccupancy(data: Uint8Array, s: number, e: number, proto: Proto): boolean {
  let i = s + _DELIVERY[proto].length;
  if (proto !== "phoenix" || data[i] !== 0x22) return false;
  for (i++; i < e && data[i] !== 0x22; i++) if (data[i] === 0x5c) i++;
  return startsWith(data, i + 2, e, _OCCUPANCY);
}

const nowEpoch = () => performance.timeOrigin + performance.now();

/** Clients in the LIVE state, and deliveries counted by clients that closed since the reset. */
const liveness = { live: 0, receivedByClosed: 0 };

class Client {
  #state = OPENING;
  received = 0;
  waiter?: (ok: boolean) => void;
  /** Presence storm: which user keys (`u<i>`) this client's list holds. */
  keys?: Uint8Array;
  keyCount = 0;
  presenceMsgs = 0;
  /** Crowd storm (bench/scenarios/crowd.ts): count presence bytes and the `occupancy` seen. */
  crowd = false;
  presenceBytes = 0;
  users = 0;
  frames = 0;
  /** SSE: bytes of `data:` matched after a line break at the end of the last chunk (-1: none). */
  ssePartial = -1;
  completeAt = 0;
  #writing: Promise<void> = Promise.resolve();

  constructor(
    readonly index: number,
    readonly conn: Deno.TcpConn,
    readonly proto: Proto,
    readonly sampled: boolean,
    readonly topic: string,
    readonly joinPayload: Record<string, string>,
  ) {}

  get state(): number {
    return this.#state;
  }

  set state(next: number) {
    if (this.#state === LIVE && next !== LIVE) {
      liveness.live--;
      liveness.receivedByClosed += this.received;
    } else if (this.#state !== LIVE && next === LIVE) liveness.live++;
    this.#state = next;
  }

  send(bytes: Uint8Array): void {
    this.#writing = this.#writing.then(() => writeAll(this.conn, bytes)).catch(() => {});
  }

  sendText(s: string): void {
    this.send(clientFrame(1, s));
  }

  /** Resolves with true when the awaited step (connect, join) succeeds; false on timeout. */
  expect(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.waiter = undefined;
        resolve(ok);
      };
      this.waiter = done;
    });
  }

  joinFrame(): string {
    if (this.proto === "eio") return "420" + JSON.stringify(["join", this.topic, this.joinPayload]);
    return JSON.stringify(["1", "1", this.topic, "phx_join", this.joinPayload]);
  }

  close(): void {
    this.state = CLOSED;
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

const clients: Client[] = [];
const stats = { received: 0, lastAt: 0, sseBytes: 0, occupancy: 0 };
/** Why connections ended: `<close code> <reason>` from the server's close frame, or `eof`. */
const closeReasons: Record<string, number> = {};
let samples: number[] = [];
let stormExpected = 0;
let stormComplete = 0;
/** Crowd storm: a member is complete once told a count of this many users. */
let crowdExpected = 0;

interface Waiter {
  cond: () => boolean;
  resolve: (ok: boolean) => void;
  timer: ReturnType<typeof setTimeout>;
}
const waiters = new Set<Waiter>();

function waitFor(cond: () => boolean, deadline: number): Promise<boolean> {
  if (cond()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const w = { cond, resolve } as Waiter;
    w.timer = setTimeout(() => {
      waiters.delete(w);
      resolve(cond());
    }, Math.max(0, deadline - performance.now()));
    waiters.add(w);
  });
}

function checkWaiters(): void {
  for (const w of waiters) {
    if (!w.cond()) continue;
    waiters.delete(w);
    clearTimeout(w.timer);
    w.resolve(true);
  }
}

function onFrame(c: Client, op: number, data: Uint8Array, s: number, e: number): void {
  if (op === 1) {
    c.frames++;
    if (c.crowd && scanCrowd(c, data, s, e)) return;
    if (c.state === LIVE && !c.keys && startsWith(data, s, e, _DELIVERY[c.proto])) {
      if (isOccupancy(data, s, e, c.proto)) {
        stats.occupancy++;
        return;
      }
      c.received++;
      stats.received++;
      if (c.sampled) {
        const t = text(data, s, e);
        const i = t.indexOf('"t":');
        if (i >= 0) samples.push(nowEpoch() - parseFloat(t.slice(i + 4)));
      }
      return;
    }
    if (c.keys && scanPresence(c, data, s, e)) return;
    onText(c, text(data, s, e));
  } else if (op === 9) {
    c.send(clientFrame(10, data.slice(s, e)));
  } else if (op === 8) {
    const code = e - s >= 2 ? (data[s] << 8) | data[s + 1] : 1005;
    const why = `${code} ${text(data, Math.min(e, s + 2), e)}`.trim();
    closeReasons[why] = (closeReasons[why] ?? 0) + 1;
    c.close();
  }
}

const _METAS = _enc.encode('{"metas":');
const _JOINS = _enc.encode('"joins":');
const _LEAVES = _enc.encode('"leaves":');

/** Position of `pattern` in `data[from..end)`, or -1. */
function find(data: Uint8Array, pattern: Uint8Array, from: number, end: number): number {
  for (let i = data.indexOf(pattern[0], from); i >= 0 && i + pattern.length <= end;) {
    if (startsWith(data, i, end, pattern)) return i;
    i = data.indexOf(pattern[0], i + 1);
  }
  return -1;
}

/** Position of the last `pattern` in `data[from..end)`, or -1. */
function findLast(data: Uint8Array, pattern: Uint8Array, from: number, end: number): number {
  for (let i = data.lastIndexOf(pattern[0], end - pattern.length); i >= from;) {
    if (startsWith(data, i, end, pattern)) return i;
    i = i > 0 ? data.lastIndexOf(pattern[0], i - 1) : -1;
  }
  return -1;
}

/**
 * Applies a `presence_state` or `presence_diff` frame to the client's list by scanning the
 * bytes for `"u<i>":{"metas":[` entries (no decoding, no JSON.parse: in a join storm every
 * joiner receives an O(N) state, and parsing it all would make the generator, not the server,
 * the bottleneck). Same work for every target. Returns false for any other frame.
 */
function scanPresence(c: Client, data: Uint8Array, s: number, e: number): boolean {
  const head = text(data, s, Math.min(e, s + 160));
  const diff = head.includes('"presence_diff"');
  if (!diff && !head.includes('"presence_state"')) return false;
  const joinsAt = diff ? find(data, _JOINS, s, e) : -1;
  // Every target writes `{"joins":{…},"leaves":{…}}`: look for joins from the start and for
  // leaves from the end, so a diff is scanned about once.
  const leavesAt = diff ? findLast(data, _LEAVES, s, e) : -1;
  let joined: Set<number> | undefined;
  let left: number[] | undefined;
  for (let p = data.indexOf(0x5b, s); p >= 0 && p < e; p = data.indexOf(0x5b, p + 1)) {
    // `[` of `"u123":{"metas":[`: the meta list of one key.
    if (p - 12 < s || data[p - 1] !== 0x3a || !startsWith(data, p - 9, p, _METAS)) continue;
    let k = p - 11; // the key's closing quote
    if (data[k] !== 0x22 || data[k + 1] !== 0x3a) continue;
    let index = 0, scale = 1;
    while (--k > s && data[k] >= 0x30 && data[k] <= 0x39) {
      index += (data[k] - 0x30) * scale;
      scale *= 10;
    }
    if (scale === 1 || data[k] !== 0x75 || data[k - 1] !== 0x22) continue;
    const inLeaves = leavesAt >= 0 && p > leavesAt && (joinsAt < leavesAt || p < joinsAt);
    if (inLeaves) (left ??= []).push(index);
    else {
      mark(c, index, true);
      if (diff && leavesAt >= 0) (joined ??= new Set()).add(index);
    }
  }
  for (const index of left ?? []) if (!joined?.has(index)) mark(c, index, false);
  c.presenceMsgs++;
  if (!c.completeAt && c.keyCount === stormExpected) {
    c.completeAt = nowEpoch();
    stormComplete++;
  }
  return true;
}

/**
 * Counts a crowd member's presence frames (`presence_state`, `presence_diff`, `occupancy`) in
 * bytes, and reads the users of each `occupancy`. Returns false for any other frame.
 */
function scanCrowd(c: Client, data: Uint8Array, s: number, e: number): boolean {
  const head = text(data, s, Math.min(e, s + 160));
  if (head.includes('"occupancy"')) {
    c.presenceBytes += e - s;
    const users = Number(/"users":(\d+)/.exec(text(data, s, e))?.[1] ?? 0);
    c.users = Math.max(c.users, users);
    if (!c.completeAt && c.users >= crowdExpected) {
      c.completeAt = nowEpoch();
      stormComplete++;
    }
    return true;
  }
  if (!head.includes('"presence_state"') && !head.includes('"presence_diff"')) return false;
  c.presenceBytes += e - s;
  c.presenceMsgs++;
  return true;
}

function onText(c: Client, t: string): void {
  if (c.proto === "eio") {
    if (t === "2") return c.sendText("3");
    if (t[0] === "0") return c.sendText("40");
    if (t.startsWith("40")) {
      c.state = OPEN;
      return c.waiter?.(true);
    }
    if (t.startsWith("430")) {
      c.state = LIVE;
      return c.waiter?.(true);
    }
    if (t.startsWith("41")) c.close();
    return;
  }
  const frame = JSON.parse(t);
  const event = frame[3];
  if (event === "phx_reply" && frame[1] === "1" && c.state === JOINING) {
    const ok = frame[4]?.status === "ok";
    if (ok) c.state = LIVE;
    return c.waiter?.(ok);
  }
}

function mark(c: Client, i: number, on: boolean): void {
  if (!(i >= 0 && i < c.keys!.length) || c.keys![i] === (on ? 1 : 0)) return;
  c.keys![i] = on ? 1 : 0;
  c.keyCount += on ? 1 : -1;
}

const _SSE_DATA = _enc.encode("data:");

/**
 * Counts the SSE events in `chunk` as deliveries: each has one `data:` line, found after a line
 * break (only line breaks are looked at, so a 10 KB event costs a few `indexOf` calls). A break
 * near the chunk's end is finished in the next chunk (`c.ssePartial`).
 */
function countSseEvents(c: Client, chunk: Uint8Array): void {
  let from = 0;
  if (c.ssePartial >= 0) {
    let j = c.ssePartial;
    while (j < _SSE_DATA.length && from < chunk.length && chunk[from] === _SSE_DATA[j]) {
      j++;
      from++;
    }
    c.ssePartial = -1;
    if (j === _SSE_DATA.length) deliveredSse(c);
    else if (from === chunk.length) return void (c.ssePartial = j);
  }
  for (let nl = chunk.indexOf(10, from); nl >= 0; nl = chunk.indexOf(10, nl + 1)) {
    let j = 0;
    let k = nl + 1;
    while (j < _SSE_DATA.length && k < chunk.length && chunk[k] === _SSE_DATA[j]) {
      j++;
      k++;
    }
    if (j === _SSE_DATA.length) deliveredSse(c);
    else if (k === chunk.length) c.ssePartial = j;
  }
}

function deliveredSse(c: Client): void {
  c.received++;
  stats.received++;
}

async function readLoop(c: Client, rest: Uint8Array): Promise<void> {
  const reader = new FrameReader((op, d, s, e) => onFrame(c, op, d, s, e));
  const buf = new Uint8Array(16 * 1024);
  try {
    if (c.proto === "sse") {
      stats.sseBytes += rest.length;
      countSseEvents(c, rest);
      for (;;) {
        const n = await c.conn.read(buf);
        if (n === null) break;
        stats.sseBytes += n;
        const before = stats.received;
        countSseEvents(c, buf.subarray(0, n));
        if (stats.received !== before) stats.lastAt = nowEpoch();
        if (waiters.size) checkWaiters();
      }
    } else {
      if (rest.length) reader.feed(rest);
      for (;;) {
        const n = await c.conn.read(buf);
        if (n === null) break;
        const before = stats.received;
        reader.feed(buf.subarray(0, n));
        if (stats.received !== before) stats.lastAt = nowEpoch();
        if (waiters.size) checkWaiters();
      }
    }
  } catch (err) {
    if (c.state !== CLOSED) {
      const why = `error ${(err as Error).name}`;
      closeReasons[why] = (closeReasons[why] ?? 0) + 1;
    }
  }
  if (c.state !== CLOSED) closeReasons.eof = (closeReasons.eof ?? 0) + 1;
  c.state = CLOSED;
  c.waiter?.(false);
}

interface ConnectArgs {
  host: string;
  port: number;
  proto: Proto;
  /** Request path; `{i}` is replaced by the client's index. */
  path: string;
  count: number;
  startIndex: number;
  topic: string;
  join: boolean;
  /** Join params; `{i}` in values is replaced by the client's index. */
  joinPayload?: Record<string, string>;
  /** Latency is sampled on every `sampleEvery`-th client (0: none). */
  sampleEvery?: number;
  /** Presence storm: decode every frame and track this many user keys. */
  stormKeys?: number;
  /** Crowd storm: count presence bytes; complete once told a count of this many users. */
  crowdUsers?: number;
  concurrency: number;
  timeoutMs: number;
}

async function openOne(a: ConnectArgs, i: number): Promise<void> {
  const path = a.path.replaceAll("{i}", String(i));
  const request = a.proto === "sse"
    ? sseRequest(a.host, a.port, path)
    : upgradeRequest(a.host, a.port, path);
  const h = await httpOpen(a.host, a.port, request, a.timeoutMs);
  const expected = a.proto === "sse" ? 200 : 101;
  if (h.status !== expected) {
    h.conn.close();
    throw new Error(`HTTP ${h.status} (expected ${expected}): ${h.head.split("\r\n")[0]}`);
  }
  const payload = Object.fromEntries(
    Object.entries(a.joinPayload ?? {}).map(([k, v]) => [k, v.replaceAll("{i}", String(i))]),
  );
  const sampled = (a.sampleEvery ?? 0) > 0 && i % a.sampleEvery! === 0;
  const c = new Client(i, h.conn, a.proto, sampled, a.topic, payload);
  if (a.stormKeys) c.keys = new Uint8Array(a.stormKeys);
  c.crowd = Boolean(a.crowdUsers);
  clients.push(c);
  if (a.proto === "sse") {
    c.state = LIVE;
    readLoop(c, h.rest);
    return;
  }
  const connected = a.proto === "eio" ? c.expect(a.timeoutMs) : Promise.resolve(true);
  if (a.proto !== "eio") c.state = OPEN;
  readLoop(c, h.rest);
  if (!await connected) throw new Error("no Socket.IO connect packet");
  if (a.join && !await join(c, a.timeoutMs)) throw new Error("join refused or timed out");
}

function join(c: Client, timeoutMs: number): Promise<boolean> {
  c.state = JOINING;
  const ok = c.expect(timeoutMs);
  c.sendText(c.joinFrame());
  return ok;
}

async function connect(a: ConnectArgs) {
  const start = performance.now();
  let next = 0, ok = 0, failed = 0;
  const errors: string[] = [];
  if (a.stormKeys) stormExpected = a.stormKeys;
  if (a.crowdUsers) crowdExpected = a.crowdUsers;
  const worker = async () => {
    while (next < a.count && performance.now() - start < a.timeoutMs) {
      const i = a.startIndex + next++;
      try {
        await openOne(a, i);
        ok++;
      } catch (err) {
        failed++;
        if (errors.length < 3) errors.push(String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, a.concurrency) }, worker));
  return { ok, failed, errors, ms: performance.now() - start };
}

/** Phoenix clients heartbeat every 25 s like the official client (spread over the period). */
let _hbTick = 0;
const _heartbeat = setInterval(() => {
  _hbTick++;
  for (let i = _hbTick % 25; i < clients.length; i += 25) {
    const c = clients[i];
    if (c.proto === "phoenix" && c.state >= OPEN && c.state < CLOSED) {
      c.sendText('[null,"hb","phoenix","heartbeat",{}]');
    }
  }
}, 1000);

const live = () => liveness.live;

interface PublishArgs {
  url: string;
  token?: string;
  topic: string;
  event: string;
  total: number;
  /** Messages per POST (an array body when > 1). */
  batch: number;
  /** Closed loop: keep at most this many messages published but not yet delivered locally. */
  window?: number;
  /** Open loop: messages per second. */
  ratePerSec?: number;
  maxInflight: number;
  timeoutMs: number;
}

async function publish(a: PublishArgs) {
  const start = performance.now();
  const deadline = start + a.timeoutMs;
  const subscribers = Math.max(1, live());
  const base = stats.received;
  const delivered = () => (stats.received - base) / subscribers;
  const inflight = new Set<Promise<void>>();
  let sent = 0, posts = 0, failures = 0, firstAt = 0;
  let failure = "";
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (a.token) headers.authorization = `Bearer ${a.token}`;
  const post = async (body: string, retry = true): Promise<void> => {
    try {
      const r = await fetch(a.url, { method: "POST", headers, body });
      const answer = await r.text();
      // wrangler dev's local proxy answers 503 when its connection to the Worker broke before
      // the request got through ("restarted mid-request"; it retries only GET and HEAD itself).
      if (retry && r.status === 503 && /restarted mid-request/.test(answer)) {
        return post(body, false);
      }
      if (r.status !== 202) {
        failures++;
        failure ||= `HTTP ${r.status}: ${answer.slice(0, 200)}`;
      }
    } catch (err) {
      // A kept-alive connection the server closed while idle (wrangler's proxy does after a
      // few seconds) fails before the request is read: send it once more on a new one.
      if (retry && /connection|reset|closed/i.test(String(err))) return post(body, false);
      failures++;
      failure ||= String(err);
    }
  };
  while (sent < a.total && performance.now() < deadline) {
    const n = Math.min(a.batch, a.total - sent);
    if (a.ratePerSec) {
      const due = start + (sent / a.ratePerSec) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    } else if (a.window) {
      await waitFor(() => sent - delivered() <= a.window! - n, deadline);
    }
    while (inflight.size >= a.maxInflight) await Promise.race(inflight);
    const t = nowEpoch();
    firstAt ||= t;
    const messages = [];
    for (let k = 0; k < n; k++) {
      const payload = { seq: sent + k, t, state: "operational", message: "All systems go" };
      messages.push({ topic: a.topic, event: a.event, payload });
    }
    const p = post(JSON.stringify(a.batch === 1 ? messages[0] : messages));
    inflight.add(p);
    p.finally(() => inflight.delete(p));
    sent += n;
    posts++;
  }
  await Promise.all(inflight);
  return { published: sent, posts, failures, failure, firstAt, lastAt: nowEpoch() };
}

async function waitDeliveries(a: { perSocket: number; timeoutMs: number }) {
  const subscribers = live();
  const expected = subscribers * a.perSocket;
  // Done when every subscriber still open has them all (one closed meanwhile gets no more).
  await waitFor(
    () => stats.received - liveness.receivedByClosed >= liveness.live * a.perSocket,
    performance.now() + a.timeoutMs,
  );
  let min = Infinity;
  for (const c of clients) if (c.state === LIVE) min = Math.min(min, c.received);
  return {
    received: stats.received,
    expected,
    subscribers,
    minPerSocket: subscribers ? min : 0,
    lastAt: stats.lastAt,
    /** Bytes the SSE clients read since the last reset (HTTP chunk framing included). */
    sseBytes: stats.sseBytes,
    closedMeanwhile: subscribers - liveness.live,
    closeReasons,
  };
}

function reset() {
  for (const c of clients) c.received = 0;
  liveness.receivedByClosed = 0;
  stats.received = 0;
  stats.lastAt = 0;
  stats.occupancy = 0;
  stats.sseBytes = 0;
  samples = [];
  return { live: live() };
}

async function stormJoin(a: { ratePerSec: number }) {
  const startAt = nowEpoch();
  const t0 = performance.now();
  let sent = 0;
  for (const c of clients) {
    if (c.state !== OPEN) continue;
    const due = t0 + (sent / a.ratePerSec) * 1000;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    c.state = JOINING;
    c.sendText(c.joinFrame());
    sent++;
  }
  return { sent, startAt, endAt: nowEpoch() };
}

async function stormWait(a: { timeoutMs: number; startAt: number }) {
  const storm = clients.filter((c) => c.keys || c.crowd);
  await waitFor(() => stormComplete >= storm.length, performance.now() + a.timeoutMs);
  const done = storm.filter((c) => c.completeAt).map((c) => c.completeAt - a.startAt);
  const msgs = storm.map((c) => c.presenceMsgs);
  const frames = storm.map((c) => c.frames);
  return {
    clients: storm.length,
    complete: done.length,
    completeMs: percentiles(done),
    lastCompleteAt: storm.reduce((m, c) => Math.max(m, c.completeAt), 0),
    presenceMsgs: percentiles(msgs),
    frames: percentiles(frames),
    keysMin: storm.reduce((m, c) => Math.min(m, c.keyCount), Infinity),
    presenceBytes: percentiles(storm.map((c) => c.presenceBytes)),
    presenceBytesTotal: storm.reduce((sum, c) => sum + c.presenceBytes, 0),
  };
}

/** Forgets closed clients; returns how many are left. */
function prune() {
  const open = clients.filter((c) => c.state !== CLOSED);
  const removed = clients.length - open.length;
  clients.length = 0;
  clients.push(...open);
  return { removed, left: open.length };
}

function closeAll() {
  for (const c of clients) c.close();
  const n = clients.length;
  clients.length = 0;
  stormComplete = 0;
  return { closed: n };
}

// deno-lint-ignore no-explicit-any
const handlers: Record<string, (args: any) => unknown> = {
  connect,
  publish,
  waitDeliveries,
  reset,
  stormJoin,
  stormWait,
  close: closeAll,
  prune,
  latency: () => percentiles(samples),
  /** The latency samples since the last reset, in ms rounded to 0.01. */
  samples: () => samples.map((v) => Math.round(v * 100) / 100),
  counts: () => ({ clients: clients.length, live: live(), ...stats, closeReasons }),
};

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
    }
  }
}

if (import.meta.main) {
  for await (const line of lines(Deno.stdin.readable)) {
    if (!line.trim()) continue;
    const { id, cmd, args } = JSON.parse(line);
    (async () => {
      try {
        const handler = handlers[cmd];
        if (!handler) throw new Error(`unknown command ${cmd}`);
        console.log(JSON.stringify({ id, ok: true, result: await handler(args ?? {}) }));
      } catch (err) {
        console.log(JSON.stringify({ id, ok: false, error: String((err as Error)?.stack ?? err) }));
      }
    })();
  }
  clearInterval(_heartbeat);
  closeAll();
  Deno.exit(0);
}
