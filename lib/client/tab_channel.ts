/**
 * A channel as one tab sees it: its join (once per browser, shared by the tabs), pushes with
 * their replies (bounded by a timeout, so a reply lost in a handover rejects), messages checked
 * against the channel's schemas, and presence.
 *
 * @example
 * ```ts
 * const record = openTabChannel({ subs, cid: 1, topic: "record:42", params: {}, validators: [] });
 * record.on("patch", (patch) => console.log(patch));
 * await record.join();
 * ```
 * @module
 */
import { type Listeners, listeners } from "./listeners.ts";
import type { ChannelSub, Subscriptions } from "./tab_subscriptions.ts";
import type { AnyChannel, MessageMapOf, PushMapOf } from "./typed.ts";
import type { Payload, PresenceCount, PresenceEntry } from "./wire.ts";
import {
  PRESENCE_PAGE_EVENT,
  presenceCount,
  type PresenceCounts,
  type PresencePage,
} from "./crowd.ts";

/** A schema the client can validate an incoming payload with (a zod schema fits). */
export interface PayloadSchema {
  safeParse(value: unknown): { success: boolean; error?: unknown };
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
  /**
   * Called on each change with the entries, how many of this browser's tabs are here, and the
   * count (in a crowd, the entries are only its visible members).
   */
  onSync(
    callback: (entries: PresenceEntry[], info: { tabs: number; count: PresenceCounts }) => void,
  ): () => void;
  /** Everyone on the topic: the server's count in a crowd (docs/crowds.md), else the list's. */
  count(): PresenceCounts;
  /**
   * One page of everyone on the topic, in key order: `cursor` is the previous page's `next`
   * (null for the first), `limit` 1 to 200 (default 50).
   */
  page(cursor?: string | null, limit?: number): Promise<PresencePage>;
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

/** An invalid message the client dropped. */
export interface InvalidMessage {
  topic: string;
  event: string;
  payload: Payload;
  error: unknown;
}

/** What {@link openTabChannel} needs. */
export interface TabChannelOptions {
  subs: Subscriptions;
  /** The channel's id, unique in the page. */
  cid: number;
  topic: string;
  params: Payload;
  /** Channel definitions whose `messages` schemas check incoming messages. */
  validators: readonly AnyChannel[];
  /** Called with each dropped invalid message (default: `console.warn`). */
  onInvalid?(info: InvalidMessage): void;
}

interface _Pending {
  resolve(response: Payload): void;
  reject(error: ReplyError): void;
}

/** A topic pattern of a channel definition (`record:*`) against a topic. */
function _matches(pattern: string, topic: string): boolean {
  return pattern.endsWith("*")
    ? topic.startsWith(pattern.slice(0, -1)) && topic.length > pattern.length - 1
    : topic === pattern;
}

/** Registers a channel of the tab with `subs` and returns its API (it joins on `join()`). */
export function openTabChannel(options: TabChannelOptions): Channel {
  const { subs, cid, topic, params } = options;
  const { link } = subs;
  const tab = link.tab;
  const onInvalid = options.onInvalid ??
    ((info) => console.warn(`dropped an invalid "${info.event}" on ${info.topic}:`, info.error));
  const messageListeners = new Map<string, Listeners<[Payload]>>();
  const presenceListeners = listeners<
    [PresenceEntry[], { tabs: number; count: PresenceCounts }]
  >();
  const joinListeners = listeners<[Payload]>();
  const closeListeners = listeners<[string]>();
  const pending = new Map<number, _Pending & { timer: ReturnType<typeof setTimeout> }>();
  const definition = options.validators.find((c) => _matches(c.topic, topic));
  let entries: PresenceEntry[] = [];
  let count: PresenceCount | undefined;
  let tabs = 1;
  let joinPromise: Promise<Payload> | undefined;
  let settleJoin: _Pending | undefined;
  let nextRef = 1;

  const sub: ChannelSub = {
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
          sub.joining = false; // the engine left the topic: join() again to retry
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
        count = msg.count;
        presenceListeners.call(entries, { tabs, count: presenceCount(entries, count) });
      } else if (msg.t === "closed") {
        sub.joining = false;
        closeListeners.call(msg.reason);
      }
    },
  };
  subs.add(cid, sub);

  const api = {
    topic,
    join() {
      if (joinPromise && sub.joining) return joinPromise;
      sub.joining = true;
      joinPromise = new Promise<Payload>((resolve, reject) => {
        settleJoin = { resolve, reject };
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
      if (!set) messageListeners.set(event, set = listeners<[Payload]>());
      return set.add(callback as (payload: Payload) => void);
    },
    presence: {
      list: () => entries,
      onSync: (callback) => presenceListeners.add(callback),
      count: () => presenceCount(entries, count),
      page: (cursor = null, limit = 50) =>
        api.push(PRESENCE_PAGE_EVENT as never, { cursor, limit } as never)
          .then((response) => response as unknown as PresencePage),
    },
    onClose: (callback) => closeListeners.add(callback),
    leave() {
      sub.joining = false;
      joinPromise = undefined;
      link.send({ t: "leave", from: tab, cid });
    },
  } as Channel;
  return api;
}
