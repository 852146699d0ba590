/**
 * A read-only feed as one tab sees it (SSE, then ETag polling, run by the engine and shared by
 * the browser's tabs): its events with their resume cursor, the polling answers, and its state,
 * shown `offline` while the browser is and `reconnecting` from the browser's comeback until the
 * engine has checked (its own state may predate it).
 *
 * @example
 * ```ts
 * const status = openTabFeed({ subs, network, cid: 2, topic: "status:acme", request: { events: ["status"] } });
 * status.on("status", (message) => console.log(message.payload));
 * ```
 * @module
 */
import type { ConnectionState } from "./feed.ts";
import { type Listeners, listeners } from "./listeners.ts";
import type { NetworkWatch } from "./network.ts";
import type { FeedSub, Subscriptions } from "./tab_subscriptions.ts";
import { feedKey, type Payload } from "./wire.ts";

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

/** Options of `client.feed(topic, request)`. */
export interface FeedRequest {
  /** Event names to receive (default `["joined", "reset", <the topic's messages>]`: pass them). */
  events: string[];
  /** Fall back to ETag polling (default true). */
  poll?: boolean;
}

/** What {@link openTabFeed} needs. */
export interface TabFeedOptions {
  subs: Subscriptions;
  network: NetworkWatch;
  /** The feed's id, unique in the page. */
  cid: number;
  topic: string;
  request: FeedRequest;
}

/** A refresh the engine did not answer within this long resolves false. */
const _REFRESH_TIMEOUT_MS = 15_000;

/** Registers a feed of the tab with `subs`, subscribes it, and returns its API. */
export function openTabFeed(options: TabFeedOptions): SharedFeed {
  const { subs, network, cid, topic, request } = options;
  const { link } = subs;
  const tab = link.tab;
  const poll = request.poll ?? true;
  const key = feedKey(topic, request.events, poll);
  const eventListeners = new Map<string, Listeners<[FeedMessage]>>();
  const pollListeners = listeners<[unknown]>();
  const stateListeners = listeners<[ConnectionState]>();
  let state: ConnectionState = { kind: "connecting" };
  /** Back online: reconnecting until the engine has checked (its state may predate it). */
  let waking: { since: number } | undefined;
  const refreshes = new Map<number, (ok: boolean) => void>();
  let nextRef = 1;
  const sub: FeedSub = {
    kind: "feed",
    topic,
    key,
    events: request.events,
    poll,
    subscribed: false,
    lastId: "",
    handle(msg) {
      if (msg.t === "feedEvent") {
        sub.lastId = msg.id;
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
        state = msg.state;
        if (!waking) stateListeners.call(network.shown(state));
      } else if (msg.t === "refreshed") {
        refreshes.get(msg.ref)?.(msg.ok);
        refreshes.delete(msg.ref);
      }
    },
  };
  subs.add(cid, sub);
  // Listeners are attached by the caller right after this returns: subscribe after that.
  queueMicrotask(() => subs.has(cid) && subs.subscribe(cid, sub));
  const api: SharedFeed = {
    topic,
    get state(): ConnectionState {
      return waking ? { kind: "reconnecting", since: waking.since } : network.shown(state);
    },
    on(event, callback) {
      let set = eventListeners.get(event);
      if (!set) eventListeners.set(event, set = listeners<[FeedMessage]>());
      return set.add(callback);
    },
    onPoll: (callback) => pollListeners.add(callback),
    onState: (callback) => stateListeners.add(callback),
    refresh() {
      const ref = nextRef++;
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          refreshes.delete(ref);
          resolve(false);
        }, _REFRESH_TIMEOUT_MS);
        refreshes.set(ref, (ok) => {
          clearTimeout(timer);
          resolve(ok);
        });
        link.send({ t: "refresh", from: tab, cid, ref });
      });
    },
    close() {
      offNetwork();
      subs.remove(cid);
      link.send({ t: "unfeed", from: tab, cid });
    },
  };
  const offNetwork = network.onChange(() => {
    if (network.offlineSince !== undefined) {
      waking = undefined;
      return stateListeners.call(api.state);
    }
    waking = { since: Date.now() };
    stateListeners.call(api.state);
    void api.refresh().then(() => {
      waking = undefined;
      stateListeners.call(api.state);
    });
  });
  return api;
}
