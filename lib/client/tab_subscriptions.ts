/**
 * The channels and feeds of one client in a tab, by id (`cid`, unique in the page), and how an
 * engine message reaches them: feed messages by feed key, replies and join answers by id,
 * channel messages and presence by topic. When the engine changes (a new leader, a restarted
 * worker) every subscription is sent again ({@link Subscriptions.resync}), feeds with the
 * cursor they reached so the engine resumes them.
 *
 * @example
 * ```ts
 * const subs = new Subscriptions(link);
 * link.onMessage = (msg) => subs.route(msg);
 * link.onResync = () => subs.resync();
 * ```
 * @module
 */
import type { Link } from "./link.ts";
import type { EngineMessage, Payload } from "./wire.ts";

/** A channel of the tab, as the registry sees it. */
export interface ChannelSub {
  kind: "channel";
  topic: string;
  params: Payload;
  /** Joined or joining: sent again on a resync. */
  joining: boolean;
  handle(msg: EngineMessage): void;
}

/** A feed of the tab, as the registry sees it. */
export interface FeedSub {
  kind: "feed";
  topic: string;
  key: string;
  events: string[];
  poll: boolean;
  /** Subscribed once already: a new subscription is a comeback (say `since`). */
  subscribed: boolean;
  /** The resume cursor: the id of the last event this tab got. */
  lastId: string;
  handle(msg: EngineMessage): void;
}

/** The subscriptions of one client; see the module documentation. */
export class Subscriptions {
  readonly #subs = new Map<number, ChannelSub | FeedSub>();
  readonly #feedsByKey = new Map<string, Set<FeedSub>>();

  constructor(readonly link: Link) {}

  /** Registers a channel or feed under its id. */
  add(cid: number, sub: ChannelSub | FeedSub): void {
    this.#subs.set(cid, sub);
    if (sub.kind !== "feed") return;
    let byKey = this.#feedsByKey.get(sub.key);
    if (!byKey) this.#feedsByKey.set(sub.key, byKey = new Set());
    byKey.add(sub);
  }

  /** True while `cid` is registered. */
  has(cid: number): boolean {
    return this.#subs.has(cid);
  }

  /** Forgets `cid` (it tells the engine nothing). */
  remove(cid: number): void {
    const sub = this.#subs.get(cid);
    this.#subs.delete(cid);
    if (sub?.kind !== "feed") return;
    const byKey = this.#feedsByKey.get(sub.key);
    byKey?.delete(sub);
    if (byKey?.size === 0) this.#feedsByKey.delete(sub.key);
  }

  /** Sends `sub`'s subscription to the engine: a join while joining, a feed with its cursor. */
  subscribe(cid: number, sub: ChannelSub | FeedSub): void {
    const tab = this.link.tab;
    if (sub.kind === "channel") {
      if (sub.joining) {
        this.link.send({ t: "join", from: tab, cid, topic: sub.topic, params: sub.params });
      }
    } else {
      this.link.send({
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
  }

  /** The engine changed: sends every subscription again. */
  resync(): void {
    for (const [cid, sub] of this.#subs) this.subscribe(cid, sub);
  }

  /** Hands an engine message (but `state`, the client's own) to the subscriptions it is for. */
  route(msg: EngineMessage): void {
    if (msg.t === "feedEvent" || msg.t === "feedState" || msg.t === "feedPoll") {
      for (const feed of this.#feedsByKey.get(msg.key) ?? []) feed.handle(msg);
      return;
    }
    if ("cid" in msg) {
      this.#subs.get(msg.cid)?.handle(msg);
      return;
    }
    if (msg.t === "msg" || msg.t === "presence") {
      for (const sub of this.#subs.values()) {
        if (sub.kind === "channel" && sub.topic === msg.topic) sub.handle(msg);
      }
    }
  }

  /** Leaves every channel and feed (the engine drops what no other tab uses) and forgets them. */
  leaveAll(): void {
    const tab = this.link.tab;
    for (const [cid, sub] of this.#subs) {
      this.link.send(
        sub.kind === "channel" ? { t: "leave", from: tab, cid } : { t: "unfeed", from: tab, cid },
      );
    }
    this.#subs.clear();
    this.#feedsByKey.clear();
  }
}
