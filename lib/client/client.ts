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
import type { SharingMode } from "./link.ts";
import { acquireLink, type LinkUser } from "./page_link.ts";
import { listeners } from "./listeners.ts";
import { NetworkWatch } from "./network.ts";
import { type Channel, type InvalidMessage, openTabChannel } from "./tab_channel.ts";
import { type FeedRequest, openTabFeed, type SharedFeed } from "./tab_feed.ts";
import { Subscriptions } from "./tab_subscriptions.ts";
import type { AnyChannel, ChannelFor, ChannelList, JoinParamsOf, TopicOf } from "./typed.ts";
import type { Payload } from "./wire.ts";

export {
  type Channel,
  type ChannelPresence,
  type InvalidMessage,
  type PayloadSchema,
  type PushOptions,
  ReplyError,
} from "./tab_channel.ts";
export type { FeedMessage, FeedRequest, SharedFeed } from "./tab_feed.ts";

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
  onInvalid?(info: InvalidMessage): void;
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
  const subs = new Subscriptions(handle.link);
  const network = new NetworkWatch();
  let state: ConnectionState = { kind: "connecting" };
  const stateListeners = listeners<[ConnectionState]>();
  // Added first: the client's state is told before its feeds react to the network.
  network.onChange(() => stateListeners.call(network.shown(state)));
  user.onResync = () => subs.resync();
  user.onMessage = (msg) => {
    if (msg.t !== "state") return subs.route(msg);
    state = msg.state;
    stateListeners.call(network.shown(state));
  };

  const channel = (topic: string, params: Payload = {}): Channel =>
    openTabChannel({
      subs,
      cid: handle.nextId(),
      topic,
      params,
      validators: options.validate ?? [],
      onInvalid: options.onInvalid,
    });

  return {
    get sharing() {
      return handle.link.mode;
    },
    get state() {
      return network.shown(state);
    },
    onState: (callback) => stateListeners.add(callback),
    channel: channel as Client<C>["channel"],
    feed: (topic, request) => openTabFeed({ subs, network, cid: handle.nextId(), topic, request }),
    close() {
      network.close();
      subs.leaveAll();
      handle.release();
    },
  };
}
