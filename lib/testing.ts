/**
 * Channel test helpers (Phoenix's `ChannelTest` is the model): test a channel in a few lines,
 * in-process, without a network. Connect as a user, join with params, push and await the
 * reply, wait for a broadcast or a push, read presence, and move a fake clock: `t.clock` is the
 * node's clock and timers, so `t.clock.advance(ms)` fires the presence batches, leave graces
 * and sweeps that fall due (see `tests/readme_channel_test.ts`).
 *
 * Clients go through the same session, channel server, hub and presence tracker as real
 * WebSocket clients; only the bytes are skipped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { channelTest } from "@switchboard/switchboard/testing";
 * import { recordChannel } from "./channels/record.ts";
 *
 * Deno.test("a patch reaches the others, not the sender", async () => {
 *   await using t = channelTest({ channels: [recordChannel] });
 *   const ann = t.connect({ user_id: "ann" });
 *   const bob = t.connect({ user_id: "bob" });
 *   assert.equal((await ann.join("record:1", { name: "Ann" })).status, "ok");
 *   await bob.join("record:1", { name: "Bob" });
 *   assert.deepEqual(await ann.push("record:1", "patch", { text: "hi" }), { status: "ok", response: {} });
 *   assert.deepEqual(await bob.nextEvent("record:1", "patch"), { text: "hi" });
 *   assert.equal(ann.events("record:1", "patch").length, 0);
 * });
 * ```
 * @module
 */
import type { Broadcast } from "./core/broadcast.ts";
import type { Broker } from "./core/broker.ts";
import type { ChannelDefinition } from "./core/channel.ts";
import type { Connection, TransportName } from "./core/connection.ts";
import type { Message, Payload } from "./core/message.ts";
import type { Identity } from "./core/session_services.ts";
import type { TokenClaims } from "./core/identity.ts";
import type { PresenceState } from "./core/presence.ts";
import { PhxEvent } from "./core/protocol.ts";
import type { Session } from "./core/session.ts";
import { Switchboard } from "./core/switchboard.ts";
import type { Clock, Timers } from "./core/time.ts";
import { type Config, loadConfig } from "./config.ts";
import { authenticateFor } from "./server.ts";
import type { Logger } from "./log.ts";

/** A timer a {@link FakeClock} holds until its time comes. */
interface _FakeTimer {
  at: number;
  /** The period of a repeating timer. */
  every?: number;
  fn: () => void;
  /** Order of creation: timers due at the same time fire in it. */
  seq: number;
}

/** More timer firings than this in one `advance` is a timer rescheduling itself without end. */
const _MAX_FIRINGS = 100_000;

/**
 * A clock that moves only when told to, and the node's timers on it: a channel test's node
 * schedules everything through it (presence batches and leave graces, the sweep that closes
 * idle and expired sessions), and {@link FakeClock.advance} fires what falls due, in order.
 * Nothing waits on real time.
 *
 * @example
 * ```ts
 * const clock = new FakeClock();
 * clock.after(2000, () => console.log("fired"));
 * clock.advance(2000); // logs "fired"
 * ```
 */
export class FakeClock implements Clock, Timers {
  #now: number;
  #timers: _FakeTimer[] = [];
  #seq = 0;

  constructor(start: number = Date.UTC(2030, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  every(ms: number, fn: () => void): () => void {
    return this.#add({ at: this.#now + Math.max(1, ms), every: Math.max(1, ms), fn });
  }

  after(ms: number, fn: () => void): () => void {
    return this.#add({ at: this.#now + Math.max(0, ms), fn });
  }

  /** Timers scheduled and not yet fired (repeating ones count until cancelled). */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /**
   * Moves the clock forward by `ms`, firing every timer that falls due on the way, each at its
   * own time (the clock reads that time while it runs), repeating ones as often as they fall.
   */
  advance(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) {
      throw new RangeError(`advance(${ms}): move the clock forward by a finite number of ms`);
    }
    const end = this.#now + ms;
    for (let fired = 0;; fired++) {
      const next = this.#timers.reduce<_FakeTimer | undefined>(
        (best, t) => !best || t.at < best.at || (t.at === best.at && t.seq < best.seq) ? t : best,
        undefined,
      );
      if (!next || next.at > end) break;
      if (fired >= _MAX_FIRINGS) {
        throw new Error(`advance(${ms}) fired ${_MAX_FIRINGS} timers: one reschedules itself`);
      }
      this.#now = next.at;
      if (next.every !== undefined) next.at += next.every;
      else this.#timers = this.#timers.filter((t) => t !== next);
      next.fn();
    }
    this.#now = end;
  }

  #add(timer: Omit<_FakeTimer, "seq">): () => void {
    const entry = { ...timer, seq: this.#seq++ };
    this.#timers.push(entry);
    return () => void (this.#timers = this.#timers.filter((t) => t !== entry));
  }
}

/** Options of {@link channelTest}. */
export interface ChannelTestOptions {
  // deno-lint-ignore no-explicit-any
  channels: ChannelDefinition<any>[];
  /** Environment variables, as `loadConfig` reads them (e.g. `{ PUSH_BURST: "5" }`). */
  env?: Record<string, string>;
  /**
   * The node's clock and timers (default: a new {@link FakeClock}): time moves only with
   * `t.clock.advance(ms)`, which fires the presence batches, leave graces and sweeps due.
   */
  clock?: FakeClock;
  /** Defaults to a logger that keeps lines in {@link ChannelTest.logs}. */
  log?: Logger;
  /** How long `push`, `join` and `nextEvent` wait before failing (default 2000 ms). */
  timeoutMs?: number;
  /** The node's broker (default: the memory broker), e.g. one that plays another node. */
  broker?: Broker;
}

/** Options of {@link ChannelTest.connect}. */
export interface TestConnectOptions {
  /** The transport the session says it uses (default `websocket`). */
  transport?: TransportName;
  /** A verified token's claims for the client (see {@link ChannelTest.connect}). */
  claims?: TokenClaims;
}

/** A reply as the client receives it. */
export interface TestReply {
  status: string;
  /** The response (`{}` for a binary reply, whose response is `bytes`). */
  response: Payload;
  /** A binary reply's response. */
  bytes?: Uint8Array;
}

/** One frame a test client received. */
export interface ReceivedFrame extends Message {
  /** True for fan-out broadcasts (`[null, null, …]`), false for pushes and replies. */
  broadcast: boolean;
}

/** A test run: the node, its clients and its clock. Dispose it (or `close()`) when done. */
export interface ChannelTest extends AsyncDisposable {
  readonly switchboard: Switchboard<Config>;
  /** Moves the node's time: `t.clock.advance(ms)` fires every timer that falls due. */
  readonly clock: FakeClock;
  /** Log lines written by the library during the test (`"error: a channel callback crashed"`). */
  readonly logs: string[];
  /**
   * Connects a client with connect params (the identity is `user_id`, as in dev mode). With
   * `claims`, the client holds them as a verified token's (`sub` is its user, `exp` ends its
   * session once the test's clock passes it, plus `TOKEN_LEEWAY_SECONDS`).
   */
  connect(params?: Record<string, string>, options?: TestConnectOptions): TestClient;
  /** Publishes as the HTTP API does. */
  publish(topic: string, event: string, payload: Payload): void;
  /** The topic's presence on this node, as `presence_state` sends it. */
  presence(topic: string): PresenceState;
  /** Sends pending presence diffs now instead of after the batch window. */
  flushPresence(): void;
  /** Ends every client and the node. */
  close(): Promise<void>;
}

/** Starts an in-process node serving `channels`, for channel tests. */
export function channelTest(options: ChannelTestOptions): ChannelTest {
  const clock = options.clock ?? new FakeClock();
  const logs: string[] = [];
  const keep = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    void logs.push(`${level}: ${message}${fields ? " " + JSON.stringify(fields) : ""}`);
  const log = options.log ??
    { debug: keep("debug"), info: keep("info"), warn: keep("warn"), error: keep("error") };
  const config = loadConfig({ NODE_ID: "test", ...options.env });
  const switchboard = new Switchboard({
    config,
    authenticate: authenticateFor(config),
    channels: options.channels,
    clock,
    timers: clock,
    log,
    broker: options.broker,
  });
  const timeoutMs = options.timeoutMs ?? 2000;
  const clients: TestClient[] = [];
  const close = async () => {
    for (const client of clients) client.disconnect();
    await switchboard.close();
  };
  return {
    switchboard,
    clock,
    logs,
    connect(params = {}, { transport = "websocket", claims } = {}) {
      const userId = claims?.sub ?? params.user_id ?? `anon-${clients.length + 1}`;
      const identity: Identity = claims ? { userId, claims } : { userId };
      const client = new TestClient({ switchboard, params, identity, transport, timeoutMs });
      clients.push(client);
      return client;
    },
    publish: (topic, event, payload) => void switchboard.publish(topic, event, payload),
    // As the wire carries it: plain objects (the tracker's own states have no prototype).
    presence: (topic) => JSON.parse(JSON.stringify(switchboard.presenceOf(topic))),
    flushPresence: () => switchboard.presence.flush(),
    close,
    [Symbol.asyncDispose]: close,
  };
}

interface _Waiter {
  match(frame: ReceivedFrame): boolean;
  resolve(frame: ReceivedFrame): void;
}

/** The in-process connection of a test client: it keeps every frame it is sent. */
class _TestConnection implements Connection {
  readonly frames: ReceivedFrame[] = [];
  readonly waiters = new Set<_Waiter>();
  closed?: { code: number; reason: string };

  constructor(readonly transport: TransportName) {}

  /** Binary frames reach WebSocket (v2) and SSE clients, not long-poll ones. */
  get binary(): boolean {
    return this.transport !== "longpoll";
  }

  sendMessage(msg: Message): void {
    const payload = msg.payloadJson === undefined ? msg.payload : JSON.parse(msg.payloadJson);
    this.#add({ ...msg, payload, payloadJson: undefined, broadcast: false });
  }

  sendBroadcast(b: Broadcast): void {
    const { topic, event, payload, binary } = b;
    this.#add({ joinRef: null, ref: null, topic, event, payload, binary, broadcast: true });
  }

  close(code: number, reason: string): void {
    this.closed ??= { code, reason };
  }

  #add(frame: ReceivedFrame): void {
    // Payloads are copied so a later mutation on the server side cannot change what arrived.
    const copy = { ...frame, payload: structuredClone(frame.payload) };
    this.frames.push(copy);
    for (const waiter of this.waiters) {
      if (!waiter.match(copy)) continue;
      this.waiters.delete(waiter);
      waiter.resolve(copy);
    }
  }
}

/** The fields of a {@link TestClient}. */
interface _TestClientInit {
  switchboard: Switchboard;
  params: Record<string, string>;
  identity: Identity;
  transport: TransportName;
  timeoutMs: number;
}

/** One connected test client: join, push, and what it received. */
export class TestClient {
  readonly session: Session;
  readonly #connection: _TestConnection;
  readonly #joinRefs = new Map<string, string>();
  readonly #timeoutMs: number;
  /** How many frames of each topic and event `nextEvent` has handed out. */
  readonly #taken = new Map<string, number>();
  #ref = 0;

  constructor(init: _TestClientInit) {
    this.#connection = new _TestConnection(init.transport);
    this.#timeoutMs = init.timeoutMs;
    this.session = init.switchboard.openSession({
      connection: this.#connection,
      params: init.params,
      identity: init.identity,
    });
  }

  /** Every frame received so far, in order. */
  get frames(): readonly ReceivedFrame[] {
    return this.#connection.frames;
  }

  /** How the server closed the connection, if it did. */
  get closedWith(): { code: number; reason: string } | undefined {
    return this.#connection.closed;
  }

  /** Joins a topic and resolves with the join reply. */
  join(topic: string, params: Payload = {}): Promise<TestReply> {
    const ref = this.#nextRef();
    this.#joinRefs.set(topic, ref);
    return this.#request({ joinRef: ref, ref, topic, event: PhxEvent.join, payload: params });
  }

  /** Leaves a topic and resolves with the reply. */
  leave(topic: string): Promise<TestReply> {
    return this.#request(this.#frame(topic, PhxEvent.leave, {}));
  }

  /**
   * Pushes an event on a joined topic and resolves with the reply (fails if none comes); bytes
   * are a binary push, as `channel.push(event, arrayBuffer)` sends.
   */
  push(topic: string, event: string, payload: Payload | Uint8Array = {}): Promise<TestReply> {
    if (!(payload instanceof Uint8Array)) return this.#request(this.#frame(topic, event, payload));
    return this.#request({ ...this.#frame(topic, event, {}), binary: payload });
  }

  /** Pushes an event without waiting for a reply (for events that do not reply). */
  send(topic: string, event: string, payload: Payload = {}): void {
    this.session.receive(this.#frame(topic, event, payload));
  }

  /** The payloads received so far for `event` on `topic` (pushes and broadcasts). */
  events(topic: string, event: string): Payload[] {
    return this.frames.filter((f) => f.topic === topic && f.event === event).map((f) => f.payload);
  }

  /**
   * Resolves with the payload of the first `event` on `topic` not yet taken by an earlier
   * `nextEvent` (waiting for it if it has not arrived), so a test reads events in order.
   */
  async nextEvent(topic: string, event: string): Promise<Payload> {
    const key = `${topic}\n${event}`;
    const taken = this.#taken.get(key) ?? 0;
    this.#taken.set(key, taken + 1);
    const matching = () => this.frames.filter((f) => f.topic === topic && f.event === event);
    const seen = matching();
    if (seen.length > taken) return seen[taken].payload;
    // Frames are recorded before waiters look, so the one that makes the count pass is ours.
    const frame = await this.#wait(
      (f) => f.topic === topic && f.event === event && matching().length === taken + 1,
      `event "${event}" on ${topic}`,
    );
    return frame.payload;
  }

  /** Disconnects, as a closed socket would (channels terminate, presences leave). */
  disconnect(): void {
    this.session.close("disconnect");
  }

  #frame(topic: string, event: string, payload: Payload): Message {
    const joinRef = this.#joinRefs.get(topic) ?? null;
    return { joinRef, ref: this.#nextRef(), topic, event, payload };
  }

  async #request(msg: Message): Promise<TestReply> {
    const reply = this.#wait(
      (f) => f.event === PhxEvent.reply && f.ref === msg.ref && f.topic === msg.topic,
      `reply to "${msg.event}" on ${msg.topic}`,
    );
    this.session.receive(msg);
    const frame = await reply;
    if (frame.binary === undefined) return frame.payload as unknown as TestReply;
    return { status: String(frame.payload.status), response: {}, bytes: frame.binary };
  }

  #wait(match: (f: ReceivedFrame) => boolean, what: string): Promise<ReceivedFrame> {
    const existing = this.frames.find(match);
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      const waiter: _Waiter = {
        match,
        resolve: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
      };
      const timer = setTimeout(() => {
        this.#connection.waiters.delete(waiter);
        const got = this.frames.map((f) => `${f.topic} ${f.event}`).join(", ") || "nothing";
        reject(new Error(`no ${what} within ${this.#timeoutMs} ms; received: ${got}`));
      }, this.#timeoutMs);
      this.#connection.waiters.add(waiter);
    });
  }

  #nextRef(): string {
    return String(++this.#ref);
  }
}
