/**
 * The messages between a tab and the engine that holds the browser's one connection (in a
 * SharedWorker, in the leading tab, or in the tab itself). Plain objects: they cross
 * `MessagePort`s and `BroadcastChannel`s by structured clone.
 * @module
 */
import type { ConnectionState } from "./feed.ts";

/** A JSON object payload. */
export type Payload = Record<string, unknown>;

/** One presence key with its metas, as in Phoenix's `presence_state`. */
export interface PresenceEntry {
  key: string;
  metas: Payload[];
}

/** A crowd's count as the server's `occupancy` event carries it (docs/crowds.md). */
export interface PresenceCount {
  /** Connections (presence metas). */
  subscribers: number;
  /** Distinct presence keys. */
  users: number;
}

/** How the engine is set up; every tab sharing an engine passes the same. */
export interface EngineOptions {
  /** The Phoenix socket endpoint, e.g. `/socket` (absolute in a worker: it has no page URL). */
  endpoint: string;
  /** The SSE endpoint, e.g. `/events`. */
  eventsUrl: string;
  /** The polling endpoint prefix; the topic is appended URL-encoded, e.g. `/api/topics/`. */
  pollUrl: string;
  /** Connect params (`user_id`, `token`). */
  params: Record<string, string>;
  /** WebSocket not up within this time: long-poll (default 2500 ms). */
  longPollFallbackMs: number;
  /** A key that leaves presence and comes back within this time is shown throughout. */
  presenceLeaveGraceMs: number;
  /** Ask for Fossil deltas on channels and feeds, and apply them (docs/deltas.md). */
  deltas: boolean;
}

/** Tab → engine. `from` is the tab's id, `cid` its own id for a channel or feed. */
export type TabMessage =
  | { t: "join"; from: string; cid: number; topic: string; params: Payload }
  | { t: "leave"; from: string; cid: number }
  | {
    t: "push";
    from: string;
    cid: number;
    ref: number;
    event: string;
    payload: Payload;
    toOtherTabs: boolean;
    timeoutMs: number;
  }
  | {
    t: "feed";
    from: string;
    cid: number;
    topic: string;
    events: string[];
    poll: boolean;
    /** Subscribing again (a new engine): the last id this tab got, if any. */
    since?: string;
  }
  | { t: "unfeed"; from: string; cid: number }
  | { t: "refresh"; from: string; cid: number; ref: number }
  | { t: "bye"; from: string };

/**
 * Engine → tabs. `to` lists the tabs it is for (topic-wide messages go once to all the tabs on
 * the topic). `fp` fingerprints a channel message for de-duplication after a resume.
 */
export type EngineMessage =
  & { to: string[] }
  & (
    | { t: "state"; state: ConnectionState }
    | { t: "joined"; cid: number; status: "ok" | "error"; response: Payload }
    | { t: "reply"; cid: number; ref: number; status: string; response: Payload }
    | { t: "msg"; topic: string; event: string; payload: Payload; fp: number; from?: string }
    | {
      t: "presence";
      topic: string;
      entries: PresenceEntry[];
      tabs: number;
      /** The server's count while the topic is a crowd (then `entries` is its visible set). */
      count?: PresenceCount;
    }
    | { t: "closed"; cid: number; reason: string }
    | { t: "cursor"; topic: string; cursor: string; params: Payload; fresh: boolean }
    | { t: "forget"; topic?: string; key?: string }
    | {
      t: "feedEvent";
      key: string;
      event: string;
      topic: string;
      payload: Payload;
      id: string;
      /** Sent again to a tab that subscribed for the first time after it came. */
      replayed?: boolean;
      /** It came from the server as a Fossil delta (the payload is the rebuilt one). */
      delta?: boolean;
    }
    | { t: "feedState"; key: string; state: ConnectionState }
    | { t: "feedPoll"; key: string; body: unknown }
    | { t: "refreshed"; cid: number; ref: number; ok: boolean }
  );

/** A 53-bit hash of a message (cyrb53): cheap to keep thousands of, equal for equal messages. */
export function fingerprint(event: string, payload: Payload | ArrayBuffer): number {
  let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
  const mix = (code: number) => {
    h1 = Math.imul(h1 ^ code, 2654435761);
    h2 = Math.imul(h2 ^ code, 1597334677);
  };
  const text = `${event}\u0000`;
  for (let i = 0; i < text.length; i++) mix(text.charCodeAt(i));
  if (payload instanceof ArrayBuffer) { // a Phoenix v2 binary frame: hash its bytes
    mix(0x10000);
    for (const byte of new Uint8Array(payload)) mix(byte);
  } else {
    const json = JSON.stringify(payload);
    for (let i = 0; i < json.length; i++) mix(json.charCodeAt(i));
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** The feed key of a topic and event list: tabs asking for the same share one stream. */
export function feedKey(topic: string, events: string[], poll: boolean): string {
  return `${topic}\u0000${events.join(",")}\u0000${poll ? 1 : 0}`;
}

/** Most messages a topic's resume log keeps; past it a resume would reset anyway. */
export const MAX_LOG = 10_000;

/** What a topic needs to resume after a handover: the join cursor and what came since. */
export interface TopicResume {
  params: Payload;
  /** The position the current join started from (its reply's `cursor`). */
  cursor: string;
  /** Fingerprint → how many such messages were delivered since `cursor`. */
  log: Map<number, number>;
  size: number;
}

/** A {@link ResumeState} as it crosses a BroadcastChannel. */
export interface ResumeSnapshot {
  topics: Map<string, TopicResume>;
  feeds: Map<string, string>;
}

/**
 * The resume state of an engine: kept by the engine itself and mirrored by every tab that
 * watches its messages (leader mode), so whichever tab takes over knows where to resume.
 */
export class ResumeState {
  readonly topics = new Map<string, TopicResume>();
  /** Feed key → last SSE id. */
  readonly feeds = new Map<string, string>();

  /** A copy to send to a tab that starts following (BroadcastChannel clones Maps). */
  snapshot(): ResumeSnapshot {
    return { topics: new Map(this.topics), feeds: new Map(this.feeds) };
  }

  /** Replaces this state with a leader's snapshot. */
  restore(snapshot: ResumeSnapshot): void {
    this.topics.clear();
    this.feeds.clear();
    for (const [topic, value] of snapshot.topics) this.topics.set(topic, value);
    for (const [key, id] of snapshot.feeds) this.feeds.set(key, id);
  }

  /** Applies one engine message. */
  observe(msg: EngineMessage): void {
    if (msg.t === "cursor") {
      const known = this.topics.get(msg.topic);
      if (msg.fresh || !known) {
        this.topics.set(msg.topic, {
          params: msg.params,
          cursor: msg.cursor,
          log: new Map(),
          size: 0,
        });
      } else known.params = msg.params;
    } else if (msg.t === "msg") {
      const topic = this.topics.get(msg.topic);
      if (!topic) return;
      if (msg.event === "reset") { // the window was exceeded: nothing before now replays
        topic.log.clear();
        topic.size = 0;
        return;
      }
      if (topic.size >= MAX_LOG) return;
      topic.log.set(msg.fp, (topic.log.get(msg.fp) ?? 0) + 1);
      topic.size++;
    } else if (msg.t === "forget") { // left on purpose: a later join starts live
      if (msg.topic !== undefined) this.topics.delete(msg.topic);
      if (msg.key !== undefined) this.feeds.delete(msg.key);
    } else if (msg.t === "feedEvent" && msg.id && !msg.replayed) {
      this.feeds.set(msg.key, msg.id);
    }
  }
}
