/**
 * The engine: the one connection of a browser, serving all its tabs. It holds the official
 * `phoenix` Socket (WebSocket, then long-poll) for channels and one feed (SSE, then ETag
 * polling) per topic, joins a topic once however many tabs joined it, leaves it when its last
 * tab leaves, sends replies to the tab that asked and messages to every tab on the topic.
 *
 * It resumes without loss or duplicates: every join asks for a `cursor`, and a rejoin (after a
 * reconnect, or in a new engine after a handover) sends the cursor of the first join; the
 * server replays what came since, and the engine skips the replayed messages it already
 * delivered, which it recognises by fingerprint (see {@link ResumeState}).
 *
 * It runs in a SharedWorker (`shared_worker.ts`), in the leading tab, or in a lone tab
 * (`link.ts`); it only sends and receives plain messages.
 *
 * @example
 * ```ts
 * const engine = new Engine(options, (msg) => deliver(msg));
 * engine.handle({ t: "join", from: "tab1", cid: 1, topic: "record:42", params: { name: "Ann" } });
 * ```
 * @module
 */
import { LongPoll, Presence } from "phoenix";
import { FixedHeartbeatSocket } from "./fixed_heartbeat.ts";
import { DELTA_EVENT, DELTA_FORMAT, DeltaDecoder } from "./delta.ts";
import { type ConnectionState, type Feed, openFeed } from "./feed.ts";
import { connectPhoenix, type PhoenixConnection, type SocketLike } from "./phoenix_helpers.ts";
import { readOccupancy } from "./crowd.ts";
import {
  type EngineMessage,
  type EngineOptions,
  feedKey,
  fingerprint,
  type Payload,
  type PresenceCount,
  type PresenceEntry,
  ResumeState,
  type TabMessage,
} from "./wire.ts";

interface PhoenixPush {
  receive(status: string, callback: (response: Payload) => void): PhoenixPush;
}
interface PhoenixChannel {
  join(): PhoenixPush;
  leave(): PhoenixPush;
  push(event: string, payload: Payload, timeout?: number): PhoenixPush;
  on(event: string, callback: (payload: Payload) => void): number;
  onClose(callback: () => void): void;
  onMessage: (event: string, payload: Payload, ref: unknown, joinRef: unknown) => Payload;
}
interface PhoenixSocket extends SocketLike {
  channel(topic: string, params: () => Payload): PhoenixChannel;
  disconnect(): void;
}
interface PhoenixPresence {
  onSync(callback: () => void): void;
  list<T>(by: (key: string, presence: { metas: Payload[] }) => T): T[];
}

/** What one channel or feed of a tab is subscribed to. */
type SubTarget = { kind: "channel"; topic: string } | { kind: "feed"; key: string };

/** A subscriber: one channel (or feed) of one tab. */
interface Sub {
  tab: string;
  cid: number;
}

interface TopicEntry {
  topic: string;
  channel: PhoenixChannel;
  subs: Map<string, Sub>;
  params: Payload;
  joined?: { status: "ok" | "error"; response: Payload };
  /** Replayed messages still to skip: fingerprint → count. */
  skip: Map<number, number>;
  /** The last join was sent with a cursor (a resume). */
  resumed: boolean;
  presence: PresenceEntry[];
  /** Keys gone from presence, still shown until their grace ends: key → entry and timer. */
  departing: Map<string, { entry: PresenceEntry; timer: ReturnType<typeof setTimeout> }>;
  hasPresence: boolean;
  /** The last `occupancy` since the last `presence_state`: the topic is a crowd. */
  count?: PresenceCount;
}

interface FeedEntry {
  key: string;
  topic: string;
  feed: Feed;
  subs: Map<string, Sub>;
  /** The last `joined` event and what came after it, for tabs that arrive later. */
  recent: { event: string; topic: string; payload: Payload; id: string }[];
  lastPoll?: unknown;
}

/** Most feed events kept for tabs that subscribe later (the join and what came after). */
const _MAX_RECENT = 100;

const _subKey = (tab: string, cid: number) => `${tab}/${cid}`;

/** Events the engine handles itself instead of passing them on as channel messages. */
const _INTERNAL = /^(phx_|chan_reply_|presence_state$|presence_diff$|occupancy$)/;

/** A browser's one connection, shared by its tabs (the module comment above says how). */
export class Engine {
  readonly resume: ResumeState;
  #connection?: PhoenixConnection<PhoenixSocket>;
  #state: ConnectionState = { kind: "connecting" };
  readonly #topics = new Map<string, TopicEntry>();
  readonly #feeds = new Map<string, FeedEntry>();
  /** `tab/cid` → the topic or feed key it is subscribed to. */
  readonly #subs = new Map<string, SubTarget>();
  readonly #tabs = new Set<string>();
  #closed = false;
  /** The channels' delta bases, when the engine asks for deltas. */
  readonly #deltas?: DeltaDecoder;

  constructor(
    readonly options: EngineOptions,
    readonly emit: (msg: EngineMessage) => void,
    resume?: ResumeState,
  ) {
    this.resume = resume ?? new ResumeState();
    if (options.deltas) this.#deltas = new DeltaDecoder();
  }

  /** Deltas applied so far, on channels and open feeds (docs/deltas.md). */
  get deltasApplied(): number {
    let n = this.#deltas?.applied ?? 0;
    for (const entry of this.#feeds.values()) n += entry.feed.deltasApplied;
    return n;
  }

  /** The tabs the engine has heard from and not seen leave. */
  get tabs(): ReadonlySet<string> {
    return this.#tabs;
  }

  /** Handles one message from a tab. */
  handle(msg: TabMessage): void {
    if (this.#closed) return;
    if (msg.t === "bye") return this.dropTab(msg.from);
    this.#tabs.add(msg.from);
    switch (msg.t) {
      case "join":
        return this.#join(msg.from, msg.cid, msg.topic, msg.params);
      case "leave":
        return this.#unsubscribe(msg.from, msg.cid);
      case "push":
        return this.#push(msg);
      case "feed":
        return this.#feed(msg);
      case "unfeed":
        return this.#unsubscribe(msg.from, msg.cid);
      case "refresh": {
        const sub = this.#subs.get(_subKey(msg.from, msg.cid));
        const entry = sub?.kind === "feed" ? this.#feeds.get(sub.key) : undefined;
        if (!entry) {
          return this.#out({
            t: "refreshed",
            to: [msg.from],
            cid: msg.cid,
            ref: msg.ref,
            ok: false,
          });
        }
        void entry.feed.refresh().then((ok) =>
          this.#out({ t: "refreshed", to: [msg.from], cid: msg.cid, ref: msg.ref, ok })
        );
      }
    }
  }

  /** Forgets a tab that closed: leaves what only it had joined. */
  dropTab(tab: string): void {
    this.#tabs.delete(tab);
    for (const key of [...this.#subs.keys()]) {
      if (key.startsWith(`${tab}/`)) this.#unsubscribe(tab, Number(key.slice(tab.length + 1)));
    }
  }

  /** Closes the connection and every feed (the tabs are told nothing: they move on). */
  close(): void {
    this.#closed = true;
    for (const entry of this.#feeds.values()) entry.feed.close();
    for (const entry of this.#topics.values()) {
      for (const { timer } of entry.departing.values()) clearTimeout(timer);
    }
    this.#connection?.socket.disconnect();
  }

  #out(msg: EngineMessage): void {
    this.resume.observe(msg);
    this.emit(msg);
  }

  #socket(): PhoenixSocket {
    // The fixed heartbeat: a Cloudflare node object answers it without waking.
    this.#connection ??= connectPhoenix<PhoenixSocket>({ Socket: FixedHeartbeatSocket, LongPoll }, {
      endpoint: this.options.endpoint,
      params: this.options.params,
      longPollFallbackMs: this.options.longPollFallbackMs,
      onState: (state) => {
        this.#state = state;
        if (!this.#closed) this.#out({ t: "state", to: [...this.#tabs], state });
      },
    });
    return this.#connection.socket;
  }

  #join(tab: string, cid: number, topic: string, params: Payload): void {
    const key = _subKey(tab, cid);
    const known = this.#subs.get(key);
    if (known && (known.kind !== "channel" || known.topic !== topic)) this.#unsubscribe(tab, cid);
    let entry = this.#topics.get(topic);
    if (entry && JSON.stringify(entry.params) !== JSON.stringify(params)) {
      // New params for a joined topic: the last join wins, as in Phoenix, for every tab.
      entry = this.#reopen(entry, params);
    }
    entry ??= this.#openTopic(topic, params);
    entry.subs.set(key, { tab, cid });
    this.#subs.set(key, { kind: "channel", topic });
    this.#out({ t: "state", to: [tab], state: this.#state });
    if (entry.joined) {
      this.#out({ t: "joined", to: [tab], cid, ...entry.joined });
      if (entry.hasPresence) this.#sendPresence(entry);
    }
  }

  /** Leaves the topic's channel and joins it again (resuming) with `params`, for the same tabs. */
  #reopen(entry: TopicEntry, params: Payload): TopicEntry {
    this.#topics.delete(entry.topic);
    entry.joined = undefined;
    entry.channel.leave();
    for (const { timer } of entry.departing.values()) clearTimeout(timer);
    this.#deltas?.forget(entry.topic);
    const fresh = this.#openTopic(entry.topic, params);
    for (const [k, sub] of entry.subs) fresh.subs.set(k, sub);
    return fresh;
  }

  #openTopic(topic: string, params: Payload): TopicEntry {
    const socket = this.#socket();
    const entry: TopicEntry = {
      topic,
      params,
      subs: new Map(),
      skip: new Map(),
      resumed: false,
      presence: [],
      departing: new Map(),
      hasPresence: false,
      channel: undefined as unknown as PhoenixChannel,
    };
    // Evaluated on every (re)join: resume from the first join's position when there is one.
    const channel = entry.channel = socket.channel(topic, () => {
      const known = this.resume.topics.get(topic);
      const resumable = known && JSON.stringify(known.params) === JSON.stringify(entry.params);
      entry.skip = resumable ? new Map(known.log) : new Map();
      entry.resumed = Boolean(resumable);
      const params = { ...entry.params, cursor: resumable ? known.cursor : "" };
      return this.#deltas ? { ...params, delta: DELTA_FORMAT } : params;
    });
    channel.onMessage = (event, payload) => {
      // Before its join reply, a message is the previous instance's, still on its way (after
      // a rejoin on this socket): the new instance replays it from the cursor.
      if (this.#topics.get(topic) !== entry || !entry.joined) return payload;
      if (event === DELTA_EVENT) {
        // One that cannot be applied: join again from the cursor (the server replays in full,
        // and what was delivered already is skipped).
        const rebuilt = this.#deltas?.applyFrame(topic, payload);
        if (rebuilt) this.#message(entry, rebuilt.event, rebuilt.payload);
        else this.#reopen(entry, entry.params);
      } else if (!_INTERNAL.test(event)) {
        // Replayed ones too (skipped below): the server counts them as the client's latest.
        this.#deltas?.full(topic, event, payload);
        this.#message(entry, event, payload);
      } else if (event === "occupancy") this.#occupancy(entry, payload);
      return payload;
    };
    // Bound before Presence's own: a full state ends a crowd before the list is synced.
    channel.on("presence_state", () => {
      entry.count = undefined;
    });
    const presence = new Presence(channel) as PhoenixPresence;
    presence.onSync(() => {
      if (this.#topics.get(topic) !== entry) return;
      entry.hasPresence = true;
      this.#syncPresence(entry, presence.list((key, { metas }) => ({ key, metas })));
    });
    channel.join()
      .receive("ok", (response) => this.#joined(entry, "ok", response))
      .receive("error", (response) => this.#joined(entry, "error", response));
    channel.onClose(() => {
      if (this.#topics.get(topic) !== entry) return;
      // Closed by the server (not by us: we remove the entry first).
      this.#topics.delete(topic);
      for (const [key, sub] of entry.subs) {
        this.#subs.delete(key);
        this.#out({ t: "closed", to: [sub.tab], cid: sub.cid, reason: "closed by the server" });
      }
    });
    this.#topics.set(topic, entry);
    return entry;
  }

  #joined(entry: TopicEntry, status: "ok" | "error", response: Payload): void {
    if (this.#topics.get(entry.topic) !== entry) return;
    const { cursor, ...rest } = response;
    if (status === "ok" && typeof cursor === "string") {
      const fresh = !entry.resumed; // a resume keeps the first join's position and log
      this.#out({
        t: "cursor",
        to: [],
        topic: entry.topic,
        cursor,
        params: entry.params,
        fresh,
      });
      if (fresh) entry.skip.clear();
    }
    entry.joined = { status, response: rest };
    for (const sub of entry.subs.values()) {
      this.#out({ t: "joined", to: [sub.tab], cid: sub.cid, status, response: rest });
    }
    if (status === "error") {
      // Refused: stop here instead of the Phoenix client's endless retries (1, 2, 5, 10 s…);
      // each tab has its answer and may join again.
      this.#topics.delete(entry.topic);
      entry.channel.leave();
      for (const [key, sub] of entry.subs) {
        this.#subs.delete(key);
        const reason = typeof rest.reason === "string" ? rest.reason : "join refused";
        this.#out({ t: "closed", to: [sub.tab], cid: sub.cid, reason });
      }
      this.#out({ t: "forget", to: [], topic: entry.topic });
    }
  }

  #message(entry: TopicEntry, event: string, payload: Payload): void {
    const fp = fingerprint(event, payload);
    const left = entry.skip.get(fp);
    if (left) { // delivered before the resume: the replay brings it again
      if (left === 1) entry.skip.delete(fp);
      else entry.skip.set(fp, left - 1);
      return;
    }
    if (event === "reset") entry.skip.clear();
    this.#out({ t: "msg", to: this.#tabsOn(entry.subs), topic: entry.topic, event, payload, fp });
  }

  #push(msg: Extract<TabMessage, { t: "push" }>): void {
    const sub = this.#subs.get(_subKey(msg.from, msg.cid));
    const entry = sub?.kind === "channel" ? this.#topics.get(sub.topic) : undefined;
    const answer = (status: string, response: Payload) =>
      this.#out({ t: "reply", to: [msg.from], cid: msg.cid, ref: msg.ref, status, response });
    if (!entry) return answer("error", { reason: "not joined" });
    entry.channel.push(msg.event, msg.payload, msg.timeoutMs)
      .receive("ok", (r) => answer("ok", r))
      .receive("error", (r) => answer("error", r))
      .receive("timeout", () => answer("timeout", {}));
    if (msg.toOtherTabs) {
      // The server sends it to everyone but this connection: the other tabs get it from here.
      // It is logged like any message, since a replay from the cursor brings it back.
      const to = this.#tabsOn(entry.subs).filter((tab) => tab !== msg.from);
      const fp = fingerprint(msg.event, msg.payload);
      this.#out({ t: "msg", to, topic: entry.topic, event: msg.event, payload: msg.payload, fp });
    }
  }

  #tabsOn(subs: Map<string, Sub>): string[] {
    return [...new Set([...subs.values()].map((s) => s.tab))];
  }

  #syncPresence(entry: TopicEntry, list: PresenceEntry[]): void {
    const now = new Set(list.map((e) => e.key));
    for (const [key, gone] of entry.departing) {
      if (now.has(key)) { // back within the grace: it never left for the tabs
        clearTimeout(gone.timer);
        entry.departing.delete(key);
      }
    }
    for (const before of entry.presence) {
      if (now.has(before.key) || entry.departing.has(before.key)) continue;
      const timer = setTimeout(() => {
        entry.departing.delete(before.key);
        this.#sendPresence(entry);
      }, this.options.presenceLeaveGraceMs);
      entry.departing.set(before.key, { entry: before, timer });
    }
    entry.presence = list;
    this.#sendPresence(entry);
  }

  #sendPresence(entry: TopicEntry): void {
    const shown = [...entry.presence, ...[...entry.departing.values()].map((d) => d.entry)];
    const to = this.#tabsOn(entry.subs);
    const { topic, count } = entry;
    this.#out({ t: "presence", to, topic, entries: shown, tabs: to.length, count });
  }

  /** A crowd's count (docs/crowds.md): the tabs get it with the visible list. */
  #occupancy(entry: TopicEntry, payload: Payload): void {
    const count = readOccupancy(payload);
    if (!count) return;
    entry.count = count;
    if (entry.hasPresence) this.#sendPresence(entry);
  }

  #feed(msg: Extract<TabMessage, { t: "feed" }>): void {
    const { from: tab, cid, topic, events, poll } = msg;
    const key = feedKey(topic, events, poll);
    const subKey = _subKey(tab, cid);
    const known = this.#subs.get(subKey);
    if (known && (known.kind !== "feed" || known.key !== key)) this.#unsubscribe(tab, cid);
    let entry = this.#feeds.get(key);
    if (!entry) {
      const created: FeedEntry = entry = {
        key,
        topic,
        subs: new Map(),
        recent: [],
        feed: undefined as unknown as Feed,
      };
      const sep = this.options.eventsUrl.includes("?") ? "&" : "?";
      const extra = Object.entries(this.options.params)
        .map(([k, v]) => `&${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("");
      created.feed = openFeed({
        url: `${this.options.eventsUrl}${sep}topic=${encodeURIComponent(topic)}${extra}`,
        events,
        deltas: this.options.deltas,
        cursor: this.resume.feeds.get(key),
        onEvent: (e) => {
          if (this.#feeds.get(key) !== created) return;
          if (e.event === "joined") created.recent = [];
          if (created.recent.length < _MAX_RECENT) created.recent.push(e);
          this.#out({ t: "feedEvent", to: this.#tabsOn(created.subs), key, ...e });
        },
        onState: (state) => {
          if (this.#feeds.get(key) !== created) return;
          this.#out({ t: "feedState", to: this.#tabsOn(created.subs), key, state });
        },
        poll: poll
          ? {
            url: `${this.options.pollUrl}${encodeURIComponent(topic)}`,
            onData: (body) => {
              created.lastPoll = body;
              this.#out({ t: "feedPoll", to: this.#tabsOn(created.subs), key, body });
            },
          }
          : undefined,
      });
      this.#feeds.set(key, created);
    }
    entry.subs.set(subKey, { tab, cid });
    this.#subs.set(subKey, { kind: "feed", key });
    this.#out({ t: "feedState", to: [tab], key, state: entry.feed.state });
    // A first subscription gets the stream's state so far, marked as replayed; a tab coming
    // back (after a handover) gets what came after the last event it saw, as new.
    const first = msg.since === undefined;
    const seen = first ? -1 : entry.recent.findIndex((e) => e.id === msg.since);
    for (const e of entry.recent.slice(seen + 1)) {
      this.#out({ t: "feedEvent", to: [tab], key, ...e, replayed: first });
    }
    if (entry.lastPoll !== undefined) {
      this.#out({ t: "feedPoll", to: [tab], key, body: entry.lastPoll });
    }
  }

  #unsubscribe(tab: string, cid: number): void {
    const key = _subKey(tab, cid);
    const sub = this.#subs.get(key);
    if (!sub) return;
    this.#subs.delete(key);
    if (sub.kind === "channel") {
      const entry = this.#topics.get(sub.topic);
      if (!entry) return;
      entry.subs.delete(key);
      if (entry.subs.size > 0) {
        if (entry.hasPresence) this.#sendPresence(entry); // the tab count changed
        return;
      }
      this.#topics.delete(sub.topic);
      for (const { timer } of entry.departing.values()) clearTimeout(timer);
      this.#deltas?.forget(sub.topic);
      entry.channel.leave();
      // Left on purpose: a later join starts live, not from this join's cursor.
      this.#out({ t: "forget", to: [], topic: sub.topic });
    } else {
      const entry = this.#feeds.get(sub.key);
      if (!entry) return;
      entry.subs.delete(key);
      if (entry.subs.size > 0) return;
      this.#feeds.delete(sub.key);
      entry.feed.close();
      this.#out({ t: "forget", to: [], key: sub.key });
    }
  }
}
