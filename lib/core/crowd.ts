/**
 * Presence for crowds. Up to a channel's `crowdThreshold` distinct keys a topic's presence is
 * Phoenix's (full `presence_state`, every `presence_diff`). Above it the topic is a *crowd*:
 *
 * - a joiner's `presence_state` is the topic's **visible set** (the first `crowdVisible` keys
 *   present, plus keys the channel marks always visible, bounded) and the joiner's own keys;
 * - `presence_diff` goes out only when the visible set changes (and only with visible keys);
 * - everyone gets the count as an `occupancy` event `{subscribers, users}` (metas and distinct
 *   keys), at most once a second and only when it changed;
 * - below `crowdThreshold × 0.8` (hysteresis) the topic is an ordinary room again, and every
 *   client gets the full `presence_state`.
 *
 * Each node decides from the cluster's members (its own and the other nodes' replicated
 * states) and tells only its own clients: in crowd mode no diff crosses the bus, and a node's
 * state of a crowd topic is replicated at most once a second, only the key-hash buckets that
 * changed (crowd_buckets.ts).
 *
 * The full list is read page by page ({@link pageOf}): keys in code-unit order, the cursor being
 * the last key of the previous page, so a key present throughout is returned exactly once.
 *
 * @example
 * ```ts
 * import { CrowdPresence } from "./crowd.ts";
 * declare const crowd: CrowdPresence;
 * crowd.changed("record:1", { joins: {}, leaves: {} }); // true while record:1 is a crowd
 * ```
 * @module
 */
import type { Payload } from "./message.ts";
import type { PresenceMeta, PresenceState } from "./broker.ts";
import { ControlEvent, PhxEvent, ReplyReason } from "./protocol.ts";
import { emptyPresenceState, isEmptyDiff, type PresenceDiff } from "./presence_diff.ts";
import type { Occupancy } from "./occupancy.ts";

/** A channel's crowd settings (see `crowdThreshold` and friends in `channel.ts`). */
export interface CrowdSettings {
  /** Above this many distinct keys the topic is a crowd. */
  threshold: number;
  /** Ordinary visible slots of a crowd (always-visible keys get as many again). */
  visible: number;
  /** Marks a meta whose key stays visible while the topic is a crowd (an editor). */
  alwaysVisible?: (meta: Payload) => boolean;
}

/**
 * The crowd settings of a channel with presence (undefined: without presence, never a crowd).
 *
 * @example
 * ```ts
 * crowdSettingsOf({ presence: true, crowdThreshold: 500 }); // { threshold: 500, visible: 20 }
 * ```
 */
export function crowdSettingsOf(channel: {
  presence?: unknown;
  crowdThreshold?: number;
  crowdVisible?: number;
  crowdAlwaysVisible?(meta: Payload): boolean;
}): CrowdSettings | undefined {
  if (!channel.presence) return undefined;
  const settings: CrowdSettings = {
    threshold: channel.crowdThreshold ?? DEFAULT_CROWD_THRESHOLD,
    visible: channel.crowdVisible ?? DEFAULT_CROWD_VISIBLE,
  };
  const mark = channel.crowdAlwaysVisible;
  if (mark) settings.alwaysVisible = (meta) => mark.call(channel, meta);
  return settings;
}

// A crowd's count has the shape of every occupancy count (occupancy.ts): one type for both.
export type { Occupancy } from "./occupancy.ts";

/** A presence diff, as the tracker batches it. */
export type CrowdDiff = PresenceDiff;

/** What the crowd logic reads of the tracker: the cluster's members of a topic. */
export interface CrowdMembers {
  /** Every key present, the earliest present first (this node's, then the other nodes'). */
  keys(topic: string): Iterable<string>;
  /** The key's metas on every node (empty: not present). */
  metasOf(topic: string, key: string): PresenceMeta[];
  counts(topic: string): Occupancy;
  /** The full state, for the `presence_state` that ends crowd mode. */
  list(topic: string): PresenceState;
}

/** What the crowd logic needs to reach clients and other nodes. */
export interface CrowdOutput {
  /** Sends to this node's subscribers of the topic only. */
  deliverLocal(topic: string, event: string, payload: Payload): void;
  /** Sends this node's state of the topic to the other nodes. */
  replicate(topic: string): void;
  now(): number;
  /** Runs `fn` once after `ms` (the node's timers, so a test's fake clock drives the ticks). */
  after(ms: number, fn: () => void): () => void;
}

/** One page of {@link CrowdPresence.pageOf}. */
export interface PresencePage extends Occupancy {
  /** Members in key order. */
  members: { key: string; metas: PresenceMeta[] }[];
  /** The cursor of the next page; null: this was the last. */
  next: string | null;
}

/** Default of a channel's `crowdThreshold`. */
export const DEFAULT_CROWD_THRESHOLD = 150;
/** Default of a channel's `crowdVisible`. */
export const DEFAULT_CROWD_VISIBLE = 20;
/** A crowd turns back into a room below this share of its threshold. */
export const CROWD_EXIT_SHARE = 0.8;
/** Occupancy events and crowd replication of one topic: at most one per this many ms. */
export const OCCUPANCY_INTERVAL_MS = 1_000;
/** The largest page a client may ask for. */
export const MAX_PAGE_LIMIT = 200;

/** A client's push asking for a page of members (`presence_page`). */
export const PRESENCE_PAGE_EVENT = "presence_page";
/** Members per page when the client names no `limit`. */
export const DEFAULT_PAGE_LIMIT = 50;
/** The longest cursor taken (a cursor is a presence key). */
export const MAX_CURSOR_LENGTH = 1_024;

/**
 * Reads a `presence_page` push `{cursor?, limit?}`: the page request, or what was wrong.
 *
 * @example
 * ```ts
 * parsePageRequest({ cursor: "ann", limit: 10 }); // { ok: true, cursor: "ann", limit: 10 }
 * parsePageRequest({ limit: 5000 }).ok; // false
 * ```
 */
export function parsePageRequest(
  payload: Payload,
): { ok: true; cursor: string | null; limit: number } | {
  ok: false;
  field: string;
  error: string;
} {
  const { cursor = null, limit = DEFAULT_PAGE_LIMIT } = payload;
  if (cursor !== null && (typeof cursor !== "string" || cursor.length > MAX_CURSOR_LENGTH)) {
    return {
      ok: false,
      field: "cursor",
      error: `cursor must be null or the \`next\` of the previous page ` +
        `(a string of at most ${MAX_CURSOR_LENGTH} characters)`,
    };
  }
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1) {
    return {
      ok: false,
      field: "limit",
      error: `limit must be a whole number from 1 to ${MAX_PAGE_LIMIT}`,
    };
  }
  if (limit > MAX_PAGE_LIMIT) {
    return {
      ok: false,
      field: "limit",
      error: `limit ${limit} is over ${MAX_PAGE_LIMIT}: ask for fewer per page`,
    };
  }
  return { ok: true, cursor, limit };
}

/**
 * The reply to a `presence_page` push: ok with a {@link PresencePage}, or an error naming what
 * was wrong with the request.
 *
 * @example
 * ```ts
 * declare const presence: { page(topic: string, cursor: string | null, limit: number): PresencePage };
 * answerPageRequest(presence, "record:1", { limit: 50 }).response.next; // cursor of page 2
 * ```
 */
export function answerPageRequest(
  presence: { page(topic: string, cursor: string | null, limit: number): PresencePage },
  topic: string,
  payload: Payload,
): { status: "ok" | "error"; response: Payload } {
  const request = parsePageRequest(payload);
  if (!request.ok) {
    const errors = [{ field: request.field, message: request.error }];
    return { status: "error", response: { reason: ReplyReason.invalidPayload, errors } };
  }
  return { status: "ok", response: { ...presence.page(topic, request.cursor, request.limit) } };
}

/** Topics whose sorted keys are kept for paging. */
const _SORTED_KEPT = 64;

interface _Crowd {
  settings: CrowdSettings;
  /** Keys shown to every client, in the order they became visible. */
  visible: Set<string>;
  /** How many of `visible` hold an always-visible slot. */
  pinned: Set<string>;
  /** The visible set's state as JSON, until the next change. */
  json?: string;
  /** Counts at the last change or tick (what a joiner is told). */
  counts: Occupancy;
  sent?: Occupancy;
  /** When the last tick ran: ticks (occupancy, replication) are a second apart at least. */
  tickAt: number;
  replicateDue: boolean;
  /** Cancels the scheduled tick. */
  cancelTick?: () => void;
}

/** The crowd regime of a node's presence topics; the tracker calls it on every change. */
export class CrowdPresence {
  readonly #crowds = new Map<string, _Crowd>();
  /** topic → keys in order, for paging: sorted once, then kept in step with every diff. */
  readonly #sorted = new Map<string, string[]>();

  constructor(
    readonly members: CrowdMembers,
    readonly output: CrowdOutput,
    readonly settingsOf: (topic: string) => CrowdSettings | undefined,
  ) {}

  /** True while `topic` is a crowd on this node. */
  isCrowd(topic: string): boolean {
    return this.#crowds.has(topic);
  }

  /**
   * The topic's members changed by `diff` (a local batch, or another node's new state): decides
   * the regime and, in crowd mode, tells the clients what they should see. Returns true when
   * the diff was handled here (the caller must not send it as it is).
   */
  changed(topic: string, diff: CrowdDiff): boolean {
    this.#keepSorted(topic, diff);
    const crowd = this.#crowds.get(topic);
    if (!crowd) {
      const settings = this.settingsOf(topic);
      if (!settings) return false;
      const counts = this.members.counts(topic);
      if (counts.users <= settings.threshold) return false;
      this.#enter(topic, settings, counts);
      return true;
    }
    // Counting is O(members): it waits for the tick, once a second, and so does leaving.
    const out = this.#refresh(topic, crowd, diff);
    if (!isEmptyDiff(out)) {
      this.output.deliverLocal(topic, PhxEvent.presenceDiff, { ...out });
    }
    this.#schedule(topic, crowd);
    return true;
  }

  /**
   * Asks for the topic's state to be replicated: now for a room, at most once a second for a
   * crowd (every join of a crowd must not cross the bus).
   */
  replicate(topic: string): void {
    const crowd = this.#crowds.get(topic);
    if (!crowd) return this.output.replicate(topic);
    crowd.replicateDue = true;
    this.#schedule(topic, crowd);
  }

  /**
   * The `presence_state` JSON for a joiner of a crowd holding `ownKeys`: the visible set and
   * the joiner's own keys. Undefined when the topic is not a crowd.
   */
  stateJson(topic: string, ownKeys: Iterable<string> = []): string | undefined {
    const crowd = this.#crowds.get(topic);
    if (!crowd) return undefined;
    crowd.json ??= JSON.stringify(this.#visibleState(topic, crowd));
    let extra = "";
    for (const key of ownKeys) {
      if (crowd.visible.has(key)) continue;
      const metas = this.members.metasOf(topic, key);
      if (metas.length) extra += `${extra ? "," : ""}${JSON.stringify(key)}:${_metasJson(metas)}`;
    }
    if (!extra) return crowd.json;
    return crowd.json === "{}" ? `{${extra}}` : `{${extra},${crowd.json.slice(1)}`;
  }

  /** The count a joiner of a crowd is told (undefined: not a crowd). */
  occupancy(topic: string): Occupancy | undefined {
    const crowd = this.#crowds.get(topic);
    return crowd && { ...crowd.counts };
  }

  /**
   * One page of the topic's members in key order, after `cursor` (the previous page's `next`;
   * null or "" for the first page), at most `limit` (1 to {@link MAX_PAGE_LIMIT}).
   */
  pageOf(topic: string, cursor: string | null, limit: number): PresencePage {
    let sorted = this.#sorted.get(topic);
    if (!sorted) {
      sorted = [...this.members.keys(topic)].sort(_compare);
      this.#sorted.set(topic, sorted);
      // Kept in step with each change (see #keepSorted), for a few topics only.
      if (this.#sorted.size > _SORTED_KEPT) this.#sorted.delete(this.#sorted.keys().next().value!);
    }
    let at = cursor ? _firstAfter(sorted, cursor) : 0;
    const members: PresencePage["members"] = [];
    // A key may have left since the list was sorted: skip it, the page still fills.
    while (at < sorted.length && members.length < limit) {
      const key = sorted[at++];
      const metas = this.members.metasOf(topic, key);
      if (metas.length) members.push({ key, metas });
    }
    const last = members.at(-1)?.key;
    const next = at < sorted.length && last !== undefined ? last : null;
    // A crowd's count as of its last tick: counting a crowd on every page would be O(members).
    const counts = this.#crowds.get(topic)?.counts ?? this.members.counts(topic);
    return { members, next, ...counts };
  }

  /** Sends what is due now and stops the timers (the node is going away). */
  close(): void {
    for (const [topic, crowd] of this.#crowds) {
      crowd.cancelTick?.();
      crowd.cancelTick = undefined;
      if (crowd.replicateDue) this.output.replicate(topic);
      crowd.replicateDue = false;
    }
  }

  /** Applies a diff to the topic's sorted keys, if it has them: O(log n) to find, no re-sort. */
  #keepSorted(topic: string, diff: CrowdDiff): void {
    const sorted = this.#sorted.get(topic);
    if (!sorted) return;
    for (const key of Object.keys(diff.leaves)) {
      if (this.members.metasOf(topic, key).length) continue; // it has other metas still
      const at = _firstAfter(sorted, key) - 1;
      if (sorted[at] === key) sorted.splice(at, 1);
    }
    for (const key of Object.keys(diff.joins)) {
      const at = _firstAfter(sorted, key);
      if (sorted[at - 1] !== key) sorted.splice(at, 0, key);
    }
  }

  #enter(topic: string, settings: CrowdSettings, counts: Occupancy): void {
    const crowd: _Crowd = {
      settings,
      visible: new Set(),
      pinned: new Set(),
      counts,
      tickAt: -Infinity,
      replicateDue: false,
    };
    this.#crowds.set(topic, crowd);
    for (const key of this.members.keys(topic)) this.#pinIfMarked(topic, crowd, key);
    this.#fill(topic, crowd);
    // Every client had the full list: from now on it holds the visible set.
    this.output.deliverLocal(topic, PhxEvent.presenceState, this.#visibleState(topic, crowd));
    this.#schedule(topic, crowd);
  }

  #leave(topic: string, crowd: _Crowd): void {
    crowd.cancelTick?.();
    this.#crowds.delete(topic);
    if (crowd.replicateDue) this.output.replicate(topic);
    this.output.deliverLocal(topic, PhxEvent.presenceState, this.members.list(topic));
  }

  /** Updates the visible set after `diff`; returns the diff the clients should see. */
  #refresh(topic: string, crowd: _Crowd, diff: CrowdDiff): CrowdDiff {
    const before = new Set(crowd.visible);
    const gone = new Set<string>();
    for (const key of Object.keys(diff.leaves)) {
      if (crowd.visible.has(key) && this.members.metasOf(topic, key).length === 0) {
        crowd.visible.delete(key);
        crowd.pinned.delete(key);
        gone.add(key);
      }
    }
    for (const key of Object.keys(diff.joins)) this.#pinIfMarked(topic, crowd, key);
    this.#fill(topic, crowd);
    const out: CrowdDiff = { joins: emptyPresenceState(), leaves: emptyPresenceState() };
    for (const key of crowd.visible) {
      if (!before.has(key)) out.joins[key] = { metas: this.members.metasOf(topic, key) };
      else if (diff.joins[key]) out.joins[key] = diff.joins[key];
      // Also for a key just made visible: its own clients hold it (with the metas that left).
      if (diff.leaves[key]) out.leaves[key] = diff.leaves[key];
    }
    for (const key of gone) if (diff.leaves[key]) out.leaves[key] = diff.leaves[key];
    if (!isEmptyDiff(out)) crowd.json = undefined;
    return out;
  }

  /** Makes `key` visible when one of its metas is marked always visible (slots allowing). */
  #pinIfMarked(topic: string, crowd: _Crowd, key: string): void {
    const mark = crowd.settings.alwaysVisible;
    if (!mark || crowd.pinned.has(key) || crowd.pinned.size >= crowd.settings.visible) return;
    if (!this.members.metasOf(topic, key).some((meta) => _marked(mark, meta))) return;
    crowd.pinned.add(key);
    crowd.visible.add(key);
  }

  /** Fills the ordinary slots with the earliest keys present that are not visible yet. */
  #fill(topic: string, crowd: _Crowd): void {
    const slots = crowd.settings.visible + crowd.pinned.size;
    if (crowd.visible.size >= slots) return;
    for (const key of this.members.keys(topic)) {
      if (crowd.visible.size >= slots) break;
      crowd.visible.add(key);
    }
  }

  #visibleState(topic: string, crowd: _Crowd): PresenceState {
    const state = emptyPresenceState();
    for (const key of crowd.visible) state[key] = { metas: this.members.metasOf(topic, key) };
    return state;
  }

  /** Runs the topic's tick once the interval since the last tick has passed. */
  #schedule(topic: string, crowd: _Crowd): void {
    if (crowd.cancelTick !== undefined) return;
    const wait = Math.max(0, crowd.tickAt + OCCUPANCY_INTERVAL_MS - this.output.now());
    crowd.cancelTick = this.output.after(wait, () => this.#tick(topic, crowd));
  }

  #tick(topic: string, crowd: _Crowd): void {
    crowd.cancelTick = undefined;
    if (this.#crowds.get(topic) !== crowd) return;
    crowd.tickAt = this.output.now();
    if (crowd.replicateDue) {
      crowd.replicateDue = false;
      this.output.replicate(topic);
    }
    crowd.counts = this.members.counts(topic);
    if (crowd.counts.users < Math.floor(crowd.settings.threshold * CROWD_EXIT_SHARE)) {
      return this.#leave(topic, crowd);
    }
    const { sent, counts } = crowd;
    if (sent && sent.users === counts.users && sent.subscribers === counts.subscribers) return;
    crowd.sent = { ...counts };
    this.output.deliverLocal(topic, ControlEvent.occupancy, { ...counts });
  }
}

/** A channel's `crowdAlwaysVisible` that throws marks nothing (and breaks no presence). */
function _marked(mark: (meta: Payload) => boolean, meta: Payload): boolean {
  try {
    return mark(meta) === true;
  } catch {
    return false;
  }
}

function _compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The index of the first key after `cursor` in `sorted`. */
function _firstAfter(sorted: string[], cursor: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] <= cursor) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function _metasJson(metas: PresenceMeta[]): string {
  return JSON.stringify({ metas });
}
