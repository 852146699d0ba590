/**
 * Presence with Phoenix semantics: per topic, key → metas, each meta with a unique `phx_ref`;
 * changes go out as `presence_diff` broadcasts, batched per topic over a short window.
 *
 * @example
 * ```ts
 * const presence = new PresenceTracker(hub, { batchMs: 20 });
 * presence.track("record:1", "instance-1", "ann", { name: "Ann", state: "viewing" });
 * presence.list("record:1"); // { ann: { metas: [{ name: "Ann", state: "viewing", phx_ref: "…" }] } }
 * ```
 * @module
 */
import type { Hub } from "./hub.ts";
import type { Payload } from "./message.ts";
import type { PresenceMeta, PresenceState } from "./broker.ts";

export type { PresenceMeta, PresenceState } from "./broker.ts";

/** Options of {@link PresenceTracker}. */
export interface PresenceOptions {
  /** Diffs of one topic within this window go out as one `presence_diff` (0: next tick). */
  batchMs: number;
  /**
   * How long the leave of a key's last meta on this node is held (0: sent at once). When the
   * key is tracked again on the topic within it, the leave goes out in the same diff as the
   * new join, so clients never see the key gone (a tab handing its connection to another).
   */
  leaveGraceMs?: number;
}

interface _Diff {
  joins: PresenceState;
  leaves: PresenceState;
}

/** A key's last metas on this node after they were untracked, until their leave goes out. */
interface _Lingering {
  metas: PresenceMeta[];
  timer: ReturnType<typeof setTimeout>;
}

/** The node's presence: who is on each topic here and on the other nodes, and their diffs. */
export class PresenceTracker {
  /** topic → key → owner id → meta */
  readonly #topics = new Map<string, Map<string, Map<string, PresenceMeta>>>();
  readonly #pending = new Map<string, _Diff>();
  /** Encoded states, valid until the topic's next diff goes out or another node changes it. */
  readonly #stateCache = new Map<string, string>();
  /** Other nodes' presences, as their brokers report them: node → topic → state. */
  readonly #remote = new Map<string, Map<string, PresenceState>>();
  /**
   * topic → key → metas whose leave is held (see {@link PresenceOptions.leaveGraceMs}). They
   * are still listed and replicated: clients and other nodes were not told they left.
   */
  readonly #lingering = new Map<string, Map<string, _Lingering>>();
  #timer?: ReturnType<typeof setTimeout>;
  #refCounter = 0;
  /**
   * Told of each topic whose cluster-wide state changed (a diff sent here, another node's state
   * applied or dropped): the webhooks' member events watch it (hook; default none).
   */
  onTopicChange?: (topic: string) => void;
  readonly #refPrefix: string;

  constructor(readonly hub: Hub, readonly options: PresenceOptions) {
    this.#refPrefix = `${hub.nodeId}.${Date.now().toString(36)}.`;
    hub.broker.onPresence({
      state: (nodeId, topic, state, announce) => this.#setRemote(nodeId, topic, state, announce),
      nodeDown: (nodeId) => this.#dropNode(nodeId),
      resync: () => {
        for (const topic of this.localTopics()) {
          hub.broker.replicatePresence(topic, this.#localList(topic));
        }
      },
    });
  }

  /** Tracks `key` on `topic` for one owner (a channel instance); returns the new `phx_ref`. */
  track(topic: string, ownerId: string, key: string, meta: Payload): string {
    const owners = this.#owners(topic, key, true)!;
    if (owners.has(ownerId)) {
      throw new Error(`"${key}" is already tracked on ${topic} by this channel; use update`);
    }
    const entry = { ...meta, phx_ref: this.#nextRef() } as PresenceMeta;
    owners.set(ownerId, entry);
    const diff = this.#diff(topic);
    (diff.joins[key] ??= { metas: [] }).metas.push(entry);
    // Back within the grace: the held leave rides with this join, which clients apply first.
    this.#releaseLeave(topic, key);
    return entry.phx_ref;
  }

  /**
   * Replaces the owner's meta for `key`: one diff with the new meta (new `phx_ref`,
   * `phx_ref_prev` = old) in joins and the old meta in leaves. Returns the new ref.
   */
  update(topic: string, ownerId: string, key: string, meta: Payload): string {
    const owners = this.#owners(topic, key, false);
    const old = owners?.get(ownerId);
    if (!owners || !old) throw new Error(`"${key}" is not tracked on ${topic} by this channel`);
    const { phx_ref: _ref, phx_ref_prev: _prev, ...fields } = meta;
    const entry = {
      ...fields,
      phx_ref: this.#nextRef(),
      phx_ref_prev: old.phx_ref,
    } as PresenceMeta;
    owners.set(ownerId, entry);
    const diff = this.#diff(topic);
    (diff.joins[key] ??= { metas: [] }).metas.push(entry);
    (diff.leaves[key] ??= { metas: [] }).metas.push(old);
    return entry.phx_ref;
  }

  /**
   * Removes the owner's meta for `key`; a no-op when it was not tracked. The leave of the key's
   * last meta here is held for `leaveGraceMs` (the channel's, else the tracker's option).
   */
  untrack(
    topic: string,
    ownerId: string,
    key: string,
    options: { leaveGraceMs?: number } = {},
  ): void {
    const keys = this.#topics.get(topic);
    const owners = keys?.get(key);
    const old = owners?.get(ownerId);
    if (!keys || !owners || !old) return;
    owners.delete(ownerId);
    if (owners.size === 0) keys.delete(key);
    if (keys.size === 0) this.#topics.delete(topic);
    const graceMs = options.leaveGraceMs ?? this.options.leaveGraceMs ?? 0;
    // Only the last meta's leave shows as the key going away; other leaves go out at once.
    if (owners.size === 0 && graceMs > 0) this.#holdLeave(topic, key, old, graceMs);
    else (this.#diff(topic).leaves[key] ??= { metas: [] }).metas.push(old);
  }

  /** The current meta of one owner for `key`, if tracked. */
  get(topic: string, ownerId: string, key: string): PresenceMeta | undefined {
    return this.#topics.get(topic)?.get(key)?.get(ownerId);
  }

  /** The full presence state of a topic on every node, as `presence_state` sends it. */
  list(topic: string): PresenceState {
    const state = this.#localList(topic);
    for (const topics of this.#remote.values()) {
      for (const [key, { metas }] of Object.entries(topics.get(topic) ?? {})) {
        (state[key] ??= { metas: [] }).metas.push(...metas);
      }
    }
    return state;
  }

  /**
   * {@link list} as JSON, encoded once per batch window and topic: every join of a busy topic
   * pushes it, and re-encoding it per joiner would cost O(N²) in a join storm. A joiner gets
   * the changes since this snapshot in the window's diff, which it is subscribed to.
   */
  stateJson(topic: string): string {
    let json = this.#stateCache.get(topic);
    if (json === undefined) {
      json = JSON.stringify(this.list(topic));
      this.#stateCache.set(topic, json);
    }
    return json;
  }

  /** Topics with presences tracked on this node (held leaves included). */
  localTopics(): string[] {
    return [...new Set([...this.#topics.keys(), ...this.#lingering.keys()])];
  }

  /** Sends every pending diff now (held leaves stay held until their grace ends). */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const [topic, diff] of pending) {
      this.#stateCache.delete(topic);
      this.hub.broadcast(topic, "presence_diff", { ...diff });
      this.hub.broker.replicatePresence(topic, this.#localList(topic));
      this.onTopicChange?.(topic);
    }
  }

  /**
   * Sends every held leave and pending diff now and stops the timers: the node is going away,
   * and its presences must leave with it, not a grace later.
   */
  close(): void {
    for (const [topic, keys] of [...this.#lingering]) {
      for (const key of [...keys.keys()]) this.#releaseLeave(topic, key);
    }
    this.flush();
  }

  #localList(topic: string): PresenceState {
    const state = emptyPresenceState();
    for (const [key, { metas }] of this.#lingering.get(topic) ?? []) {
      state[key] = { metas: [...metas] };
    }
    for (const [key, owners] of this.#topics.get(topic) ?? []) {
      (state[key] ??= { metas: [] }).metas.push(...owners.values());
    }
    return state;
  }

  /** Keeps `meta` listed for `graceMs`; its leave goes out on a re-track or when time is up. */
  #holdLeave(topic: string, key: string, meta: PresenceMeta, graceMs: number): void {
    let keys = this.#lingering.get(topic);
    if (!keys) this.#lingering.set(topic, keys = new Map());
    const held = keys.get(key);
    if (held) {
      // Not reached today (a track releases the held leave first); kept so no meta is lost.
      held.metas.push(meta);
      return;
    }
    const timer = setTimeout(() => this.#releaseLeave(topic, key), graceMs);
    keys.set(key, { metas: [meta], timer });
  }

  /** Moves the held leave of `key` (if any) into the topic's pending diff. */
  #releaseLeave(topic: string, key: string): void {
    const keys = this.#lingering.get(topic);
    const held = keys?.get(key);
    if (!keys || !held) return;
    clearTimeout(held.timer);
    keys.delete(key);
    if (keys.size === 0) this.#lingering.delete(topic);
    (this.#diff(topic).leaves[key] ??= { metas: [] }).metas.push(...held.metas);
  }

  /**
   * Replaces another node's state of a topic. That node broadcasts the clients' diff itself,
   * so nothing is sent here.
   */
  #setRemote(nodeId: string, topic: string, state: PresenceState, announce: boolean): void {
    this.#stateCache.delete(topic);
    let topics = this.#remote.get(nodeId);
    if (!topics) this.#remote.set(nodeId, topics = new Map());
    const before = topics.get(topic) ?? {};
    if (Object.keys(state).length === 0) topics.delete(topic);
    else topics.set(topic, state);
    if (topics.size === 0) this.#remote.delete(nodeId);
    this.onTopicChange?.(topic);
    if (!announce) return;
    const diff = _difference(before, state);
    if (Object.keys(diff.joins).length || Object.keys(diff.leaves).length) {
      this.hub.deliverLocal(topic, "presence_diff", { ...diff });
    }
  }

  /** A node died without a goodbye: its presences leave, told to this node's clients only. */
  #dropNode(nodeId: string): void {
    const topics = this.#remote.get(nodeId);
    if (!topics) return;
    this.#remote.delete(nodeId);
    for (const [topic, leaves] of topics) {
      this.#stateCache.delete(topic);
      this.hub.deliverLocal(topic, "presence_diff", { joins: emptyPresenceState(), leaves });
      this.onTopicChange?.(topic);
    }
  }

  #owners(topic: string, key: string, create: boolean): Map<string, PresenceMeta> | undefined {
    let keys = this.#topics.get(topic);
    if (!keys) {
      if (!create) return undefined;
      this.#topics.set(topic, keys = new Map());
    }
    let owners = keys.get(key);
    if (!owners && create) keys.set(key, owners = new Map());
    return owners;
  }

  #diff(topic: string): _Diff {
    let diff = this.#pending.get(topic);
    if (!diff) {
      this.#pending.set(
        topic,
        diff = { joins: emptyPresenceState(), leaves: emptyPresenceState() },
      );
      this.#timer ??= setTimeout(() => this.flush(), this.options.batchMs);
    }
    return diff;
  }

  #nextRef(): string {
    return this.#refPrefix + (++this.#refCounter).toString(36);
  }
}

/**
 * A state keyed by presence keys, which are user strings (`constructor`, `__proto__`…): an
 * object without a prototype, so no key reads an inherited member or sets the prototype.
 * JSON sees an ordinary object.
 */
export function emptyPresenceState(): PresenceState {
  return Object.create(null);
}

/** The diff that turns `before` into `after`, comparing metas by `phx_ref`. */
function _difference(before: PresenceState, after: PresenceState): _Diff {
  const refs = (state: PresenceState) =>
    new Set(Object.values(state).flatMap(({ metas }) => metas.map((m) => m.phx_ref)));
  const [had, has] = [refs(before), refs(after)];
  const pick = (state: PresenceState, keep: (ref: string) => boolean) => {
    const out = emptyPresenceState();
    for (const [key, { metas }] of Object.entries(state)) {
      const kept = metas.filter((m) => keep(m.phx_ref));
      if (kept.length) out[key] = { metas: kept };
    }
    return out;
  };
  return { joins: pick(after, (r) => !had.has(r)), leaves: pick(before, (r) => !has.has(r)) };
}
