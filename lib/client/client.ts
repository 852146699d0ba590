/**
 * The Switchboard client: one API for channels (join, push with replies, messages, presence)
 * and read-only feeds, over one connection per browser shared by its tabs (see `link.ts`).
 * Give it the type of the app's channel list and topics, params, events and payloads are
 * checked at compile time (see `typed.ts`).
 *
 * @example
 * ```ts
 * import { connect } from "/assets/switchboard-client.js";
 * const client = connect({ params: { user_id: "ann" } });
 * const record = client.channel("record:42", { name: "Ann" });
 * record.on("patch", (patch) => console.log(patch));
 * record.presence.onSync((entries, { tabs }) => console.log(entries.length, tabs));
 * await record.join();
 * await record.push("state", { state: "editing" });
 * const status = client.feed("status:acme", { events: ["joined", "status"] });
 * status.on("status", (payload) => console.log(payload));
 * ```
 * @module
 */
import type { ConnectionState } from "./feed.ts";
import { acquireLink, type LinkUser, type SharingMode } from "./link.ts";
import type {
  AnyChannel,
  ChannelFor,
  ChannelList,
  JoinParamsOf,
  MessageMapOf,
  PushMapOf,
  TopicOf,
} from "./typed.ts";
import { type EngineMessage, feedKey, type Payload, type PresenceEntry } from "./wire.ts";

/** A schema the client can validate an incoming payload with (a zod schema fits). */
export interface PayloadSchema {
  safeParse(value: unknown): { success: boolean; error?: unknown };
}

/** Options of {@link connect}. */
export interface ClientOptions<C extends ChannelList = never> {
  /** The Phoenix socket endpoint (default `/socket`; absolute, e.g. `ws://host/socket`, in Deno). */
  endpoint?: string;
  /** The SSE endpoint (default `/events`). */
  eventsUrl?: string;
  /** Polling endpoint prefix, the topic appended URL-encoded (default `/api/topics/`). */
  pollUrl?: string;
  /** Connect params, e.g. `{user_id}` in dev or `{token}`. */
  params?: Record<string, string>;
  /**
   * How tabs share the connection (default `auto`: SharedWorker, else a leader tab elected
   * with Web Locks, else none). `none`: this client has a connection of its own.
   */
  share?: "auto" | "worker" | "leader" | "none";
  /** The SharedWorker script (default `/assets/switchboard-worker.js`). */
  workerUrl?: string;
  /** WebSocket not up within this time: long-poll (default 2500 ms). */
  longPollFallbackMs?: number;
  /** A presence key that leaves and is back within this time is shown throughout (default 3000 ms). */
  presenceLeaveGraceMs?: number;
  /**
   * Ask for Fossil deltas (default true): channels and feeds whose channel allows them receive
   * small deltas instead of whole payloads after the first, and the client rebuilds the
   * payloads, so callbacks always see whole ones (docs/deltas.md).
   */
  deltas?: boolean;
  /** A leading tab silent this long (frozen) is taken over (default 4000 ms). */
  leaderTimeoutMs?: number;
  /**
   * Validate incoming channel messages with the channels' `messages` schemas: pass the app's
   * channel list itself (a runtime value; it brings zod into the bundle), or definitions of
   * your own. A message that fails is dropped and given to `onInvalid`.
   */
  validate?: readonly AnyChannel[];
  /** Called with each dropped invalid message (default: `console.warn`). */
  onInvalid?(info: { topic: string; event: string; payload: Payload; error: unknown }): void;
}

/** A refused join or a failed push: `status` is `error` or `timeout`, `response` the server's. */
export class ReplyError extends Error {
  constructor(readonly status: string, readonly response: Payload, what: string) {
    super(
      `${what}: ${status}${typeof response.reason === "string" ? ` (${response.reason})` : ""}${
        status === "timeout" ? "; the server did not answer in time, try again" : ""
      }`,
    );
    this.name = "ReplyError";
  }
}

/** Options of {@link Channel.push}. */
export interface PushOptions {
  /**
   * Also deliver the message to this browser's other tabs on the topic, as if it came from
   * the server: for events the channel broadcasts to everyone but the sender (`broadcastFrom`),
   * which would otherwise skip the other tabs, since they share the sender's connection. They
   * get it at once, whatever the server answers.
   */
  toOtherTabs?: boolean;
  /** Default 10 000 ms, as in the Phoenix client. */
  timeoutMs?: number;
}

/** The presence of a topic as this tab sees it. */
export interface ChannelPresence {
  /** One entry per key (user), each with one meta per connection (browser). */
  list(): PresenceEntry[];
  /** Called on each change with the entries and how many of this browser's tabs are here. */
  onSync(callback: (entries: PresenceEntry[], info: { tabs: number }) => void): () => void;
}

/** A channel of one tab; typed by the app's channel definition when the client is. */
export interface Channel<D = AnyChannel> {
  readonly topic: string;
  /** Joins (once per browser); resolves with the join reply, rejects with {@link ReplyError}. */
  join(): Promise<Payload>;
  /** Called after every successful (re)join with the reply, e.g. to re-sync after a handover. */
  onJoin(callback: (response: Payload) => void): () => void;
  push<E extends keyof PushMapOf<D> & string>(
    event: E,
    payload: PushMapOf<D>[E],
    options?: PushOptions,
  ): Promise<Payload>;
  on<E extends keyof MessageMapOf<D> & string>(
    event: E,
    callback: (payload: MessageMapOf<D>[E]) => void,
  ): () => void;
  readonly presence: ChannelPresence;
  /** The connection closed this channel (e.g. the server left it): called with the reason. */
  onClose(callback: (reason: string) => void): () => void;
  /** Leaves (the browser leaves the topic when its last tab does). */
  leave(): void;
}

/** One feed event: `id` is the stream cursor so far. */
export interface FeedMessage {
  event: string;
  topic: string;
  payload: Payload;
  id: string;
  /**
   * True when the feed was already open in another tab and this is its `joined` event, or a
   * later one, sent again so this tab starts from the same state (a page rendered with the
   * current state may ignore these).
   */
  replayed: boolean;
  /** It came from the server as a Fossil delta (the payload is the rebuilt one). */
  delta: boolean;
}

/** A read-only feed of one tab (SSE, then ETag polling), shared by the browser's tabs. */
export interface SharedFeed {
  readonly topic: string;
  readonly state: ConnectionState;
  on(event: string, callback: (message: FeedMessage) => void): () => void;
  /** The polling fallback's answers (`GET /api/topics/:topic`). */
  onPoll(callback: (body: unknown) => void): () => void;
  onState(callback: (state: ConnectionState) => void): () => void;
  /** Checks now (one poll, and a new stream attempt unless live); resolves true when it got through. */
  refresh(): Promise<boolean>;
  close(): void;
}

/** Options of {@link Client.feed}. */
export interface FeedRequest {
  /** Event names to receive (default `["joined", "reset", <the topic's messages>]`: pass them). */
  events: string[];
  /** Fall back to ETag polling (default true). */
  poll?: boolean;
}

/** A connected client. */
export interface Client<C extends ChannelList = never> {
  /** This tab's sharing mode now: `worker`, `leader`, `follower` or `none`. */
  readonly sharing: SharingMode;
  /** The browser's connection state (the WebSocket or long-poll of channels). */
  readonly state: ConnectionState;
  onState(callback: (state: ConnectionState) => void): () => void;
  channel<T extends TopicOf<C>>(
    topic: T,
    params?: JoinParamsOf<ChannelFor<C, T>>,
  ): Channel<ChannelFor<C, T>>;
  feed(topic: TopicOf<C>, request: FeedRequest): SharedFeed;
  /** Leaves everything this tab joined and closes its link. */
  close(): void;
}

function _listeners<A extends unknown[]>() {
  const set = new Set<(...args: A) => void>();
  return {
    add(callback: (...args: A) => void) {
      set.add(callback);
      return () => void set.delete(callback);
    },
    call(...args: A) {
      for (const callback of [...set]) {
        try {
          callback(...args);
        } catch (err) {
          console.error("a Switchboard client callback threw:", err);
        }
      }
    },
  };
}

function _matches(pattern: string, topic: string): boolean {
  return pattern.endsWith("*")
    ? topic.startsWith(pattern.slice(0, -1)) && topic.length > pattern.length - 1
    : topic === pattern;
}

/** Connects this tab (sharing the browser's connection); see the module documentation. */
export function connect<C extends ChannelList = never>(options: ClientOptions<C> = {}): Client<C> {
  const user: LinkUser = { onMessage: () => {}, onResync: () => {} };
  const handle = acquireLink({
    engine: {
      endpoint: options.endpoint ?? "/socket",
      eventsUrl: options.eventsUrl ?? "/events",
      pollUrl: options.pollUrl ?? "/api/topics/",
      params: options.params ?? {},
      longPollFallbackMs: options.longPollFallbackMs ?? 2500,
      presenceLeaveGraceMs: options.presenceLeaveGraceMs ?? 3000,
      deltas: options.deltas ?? true,
    },
    share: options.share ?? "auto",
    workerUrl: options.workerUrl ?? "/assets/switchboard-worker.js",
    leaderTimeoutMs: options.leaderTimeoutMs ?? 4000,
  }, user);
  const link = handle.link;
  const tab = link.tab;
  const validators = options.validate ?? [];
  const onInvalid = options.onInvalid ??
    ((info) => console.warn(`dropped an invalid "${info.event}" on ${info.topic}:`, info.error));
  let state: ConnectionState = { kind: "connecting" };
  const stateListeners = _listeners<[ConnectionState]>();
  // The engine may run in a worker, which does not always hear the browser go offline; every
  // tab does, and the network is the browser's: the tab's word wins while it is offline.
  const g = globalThis as unknown as {
    navigator?: { onLine?: boolean };
    addEventListener?: (type: string, listener: () => void) => void;
    removeEventListener?: (type: string, listener: () => void) => void;
  };
  let offlineSince: number | undefined = g.navigator?.onLine === false ? Date.now() : undefined;
  const shown = (s: ConnectionState): ConnectionState =>
    offlineSince === undefined ? s : { kind: "offline", since: offlineSince };
  const networkListeners = _listeners<[]>();
  const onOffline = () => {
    offlineSince ??= Date.now();
    stateListeners.call(shown(state));
    networkListeners.call();
  };
  const onOnline = () => {
    if (offlineSince === undefined) return;
    offlineSince = undefined;
    stateListeners.call(state);
    networkListeners.call();
  };
  g.addEventListener?.("offline", onOffline);
  g.addEventListener?.("online", onOnline);

  interface Pending {
    resolve(response: Payload): void;
    reject(error: ReplyError): void;
    timer: ReturnType<typeof setTimeout>;
  }

  interface ChannelImpl {
    kind: "channel";
    topic: string;
    params: Payload;
    joining: boolean;
    handle(msg: EngineMessage): void;
  }
  interface FeedImpl {
    kind: "feed";
    topic: string;
    key: string;
    events: string[];
    poll: boolean;
    /** Subscribed once already: a new subscription is a comeback (say `since`). */
    subscribed: boolean;
    lastId: string;
    handle(msg: EngineMessage): void;
  }
  const subs = new Map<number, ChannelImpl | FeedImpl>();
  const feedsByKey = new Map<string, Set<FeedImpl>>();

  const resubscribe = (cid: number, sub: ChannelImpl | FeedImpl) => {
    if (sub.kind === "channel") {
      if (sub.joining) {
        link.send({ t: "join", from: tab, cid, topic: sub.topic, params: sub.params });
      }
    } else {
      link.send({
        t: "feed",
        from: tab,
        cid,
        topic: sub.topic,
        events: sub.events,
        poll: sub.poll,
        since: sub.subscribed ? sub.lastId : undefined,
      });
      sub.subscribed = true;
    }
  };
  user.onResync = () => {
    for (const [cid, sub] of subs) resubscribe(cid, sub);
  };

  user.onMessage = (msg) => {
    if (msg.t === "state") {
      state = msg.state;
      stateListeners.call(shown(state));
      return;
    }
    if (msg.t === "feedEvent" || msg.t === "feedState" || msg.t === "feedPoll") {
      for (const feed of feedsByKey.get(msg.key) ?? []) feed.handle(msg);
      return;
    }
    if ("cid" in msg) {
      subs.get(msg.cid)?.handle(msg);
      return;
    }
    if (msg.t === "msg" || msg.t === "presence") {
      for (const sub of subs.values()) {
        if (sub.kind === "channel" && sub.topic === msg.topic) sub.handle(msg);
      }
    }
  };

  function channel(topic: string, params: Payload = {}): Channel {
    const cid = handle.nextId();
    const messageListeners = new Map<string, ReturnType<typeof _listeners<[Payload]>>>();
    const presenceListeners = _listeners<[PresenceEntry[], { tabs: number }]>();
    const joinListeners = _listeners<[Payload]>();
    const closeListeners = _listeners<[string]>();
    const pending = new Map<number, Pending>();
    const definition = validators.find((c) => _matches(c.topic, topic));
    let entries: PresenceEntry[] = [];
    let tabs = 1;
    let joinPromise: Promise<Payload> | undefined;
    let settleJoin: Pending | undefined;
    let nextRef = 1;

    const impl: ChannelImpl = {
      kind: "channel",
      topic,
      params,
      joining: false,
      handle(msg) {
        if (msg.t === "joined") {
          if (msg.status === "ok") {
            settleJoin?.resolve(msg.response);
            joinListeners.call(msg.response);
          } else {
            impl.joining = false; // the engine left the topic: join() again to retry
            settleJoin?.reject(new ReplyError(msg.status, msg.response, `join of ${topic}`));
          }
          settleJoin = undefined;
        } else if (msg.t === "reply") {
          const p = pending.get(msg.ref);
          if (!p) return;
          pending.delete(msg.ref);
          clearTimeout(p.timer);
          if (msg.status === "ok") p.resolve(msg.response);
          else p.reject(new ReplyError(msg.status, msg.response, `push to ${topic}`));
        } else if (msg.t === "msg") {
          const schema = definition?.messages?.[msg.event] as PayloadSchema | undefined;
          if (schema) {
            const result = schema.safeParse(msg.payload);
            if (!result.success) {
              return onInvalid({
                topic,
                event: msg.event,
                payload: msg.payload,
                error: result.error,
              });
            }
          }
          messageListeners.get(msg.event)?.call(msg.payload);
        } else if (msg.t === "presence") {
          entries = msg.entries;
          tabs = msg.tabs;
          presenceListeners.call(entries, { tabs });
        } else if (msg.t === "closed") {
          impl.joining = false;
          closeListeners.call(msg.reason);
        }
      },
    };
    subs.set(cid, impl);

    return {
      topic,
      join() {
        if (joinPromise && impl.joining) return joinPromise;
        impl.joining = true;
        joinPromise = new Promise<Payload>((resolve, reject) => {
          settleJoin = { resolve, reject, timer: 0 as unknown as ReturnType<typeof setTimeout> };
        });
        joinPromise.catch(() => {}); // a caller that does not await still sees it via onClose
        link.send({ t: "join", from: tab, cid, topic, params });
        return joinPromise;
      },
      onJoin: (callback) => joinListeners.add(callback),
      push(event, payload, pushOptions = {}) {
        const ref = nextRef++;
        const timeoutMs = pushOptions.timeoutMs ?? 10_000;
        return new Promise<Payload>((resolve, reject) => {
          // A reply lost in a handover must not leave the caller waiting forever.
          const timer = setTimeout(() => {
            pending.delete(ref);
            reject(new ReplyError("timeout", {}, `push "${event}" to ${topic}`));
          }, timeoutMs + 1_000);
          pending.set(ref, { resolve, reject, timer });
          link.send({
            t: "push",
            from: tab,
            cid,
            ref,
            event,
            payload: payload as Payload,
            toOtherTabs: pushOptions.toOtherTabs ?? false,
            timeoutMs,
          });
        });
      },
      on(event, callback) {
        let set = messageListeners.get(event);
        if (!set) messageListeners.set(event, set = _listeners<[Payload]>());
        return set.add(callback as (payload: Payload) => void);
      },
      presence: {
        list: () => entries,
        onSync: (callback) => presenceListeners.add(callback),
      },
      onClose: (callback) => closeListeners.add(callback),
      leave() {
        impl.joining = false;
        joinPromise = undefined;
        link.send({ t: "leave", from: tab, cid });
      },
    } as Channel;
  }

  function feed(topic: string, request: FeedRequest): SharedFeed {
    const cid = handle.nextId();
    const poll = request.poll ?? true;
    const key = feedKey(topic, request.events, poll);
    const eventListeners = new Map<string, ReturnType<typeof _listeners<[FeedMessage]>>>();
    const pollListeners = _listeners<[unknown]>();
    const feedStateListeners = _listeners<[ConnectionState]>();
    let feedState: ConnectionState = { kind: "connecting" };
    /** Back online: reconnecting until the engine has checked (its state may predate it). */
    let waking: { since: number } | undefined;
    const refreshes = new Map<number, (ok: boolean) => void>();
    let nextRef = 1;
    const impl: FeedImpl = {
      kind: "feed",
      topic,
      key,
      events: request.events,
      poll,
      subscribed: false,
      lastId: "",
      handle(msg) {
        if (msg.t === "feedEvent") {
          impl.lastId = msg.id;
          eventListeners.get(msg.event)?.call({
            event: msg.event,
            topic: msg.topic,
            payload: msg.payload,
            id: msg.id,
            replayed: msg.replayed ?? false,
            delta: msg.delta ?? false,
          });
        } else if (msg.t === "feedPoll") pollListeners.call(msg.body);
        else if (msg.t === "feedState") {
          feedState = msg.state;
          if (!waking) feedStateListeners.call(shown(feedState));
        } else if (msg.t === "refreshed") {
          refreshes.get(msg.ref)?.(msg.ok);
          refreshes.delete(msg.ref);
        }
      },
    };
    subs.set(cid, impl);
    let byKey = feedsByKey.get(key);
    if (!byKey) feedsByKey.set(key, byKey = new Set());
    byKey.add(impl);
    // Listeners are attached by the caller right after this returns: subscribe after that.
    queueMicrotask(() => subs.has(cid) && resubscribe(cid, impl));
    const api: SharedFeed = {
      topic,
      get state(): ConnectionState {
        return waking ? { kind: "reconnecting", since: waking.since } : shown(feedState);
      },
      on(event, callback) {
        let set = eventListeners.get(event);
        if (!set) eventListeners.set(event, set = _listeners<[FeedMessage]>());
        return set.add(callback);
      },
      onPoll: (callback) => pollListeners.add(callback),
      onState: (callback) => feedStateListeners.add(callback),
      refresh() {
        const ref = nextRef++;
        return new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => {
            refreshes.delete(ref);
            resolve(false);
          }, 15_000);
          refreshes.set(ref, (ok) => {
            clearTimeout(timer);
            resolve(ok);
          });
          link.send({ t: "refresh", from: tab, cid, ref });
        });
      },
      close() {
        offNetwork();
        subs.delete(cid);
        byKey.delete(impl);
        link.send({ t: "unfeed", from: tab, cid });
      },
    };
    const offNetwork = networkListeners.add(() => {
      if (offlineSince !== undefined) {
        waking = undefined;
        return feedStateListeners.call(api.state);
      }
      waking = { since: Date.now() };
      feedStateListeners.call(api.state);
      void api.refresh().then(() => {
        waking = undefined;
        feedStateListeners.call(api.state);
      });
    });
    return api;
  }

  return {
    get sharing() {
      return link.mode;
    },
    get state() {
      return shown(state);
    },
    onState: (callback) => stateListeners.add(callback),
    channel: channel as Client<C>["channel"],
    feed,
    close() {
      g.removeEventListener?.("offline", onOffline);
      g.removeEventListener?.("online", onOnline);
      for (const [cid, sub] of subs) {
        link.send(
          sub.kind === "channel" ? { t: "leave", from: tab, cid } : {
            t: "unfeed",
            from: tab,
            cid,
          },
        );
      }
      subs.clear();
      handle.release();
    },
  };
}
