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
import { guarded, sendPresenceDiff } from "./presence_flush.ts";
import { PresenceBytes } from "./presence_bytes.ts";
import type { Payload } from "./message.ts";
import type { PresenceMeta, PresenceState } from "./broker.ts";
import { plainTimers, type Timers } from "./time.ts";
import {
  differenceOf,
  emptyPresenceState,
  isEmptyDiff,
  mergeDiff,
  type PresenceDiff,
} from "./presence_diff.ts";
import {
  bucketOf,
  BucketSender,
  bucketTopic,
  CROWD_BUCKETS,
  parseBucketTopic,
} from "./crowd_buckets.ts";
import { CrowdPresence, type Occupancy, type PresencePage } from "./crowd.ts";
import type { PresenceOptions } from "./presence_options.ts";

export type { PresenceMeta, PresenceState } from "./broker.ts";
export { emptyPresenceState } from "./presence_diff.ts";
export type { PresenceOptions } from "./presence_options.ts";

/** A key's last metas on this node after they were untracked, until their leave goes out. */
interface _Lingering {
  metas: PresenceMeta[];
  cancel: () => void;
}

/** The node's presence: who is on each topic here and on the other nodes, and their diffs. */
export class PresenceTracker {
  /** topic → key → owner id → meta */
  readonly #topics = new Map<string, Map<string, Map<string, PresenceMeta>>>();
  readonly #pending = new Map<string, PresenceDiff>();
  /** Encoded states, valid until the topic's next diff goes out or another node changes it. */
  readonly #stateCache = new Map<string, string>();
  /** Other nodes' presences, as their brokers report them: node → topic → state. */
  readonly #remote = new Map<string, Map<string, PresenceState>>();
  /** Crowd topics whose state other nodes send in buckets (crowd_buckets.ts) → buckets held. */
  readonly #bucketed = new Map<string, number>();
  readonly #buckets = new BucketSender();
  /**
   * Other nodes' changes of crowd topics, applied with the next batch: a node entering a crowd
   * sends its whole state emptied and its buckets, maybe in several envelopes; taken together,
   * nothing seems to leave and come back.
   */
  readonly #remotePending = new Map<string, { diff: PresenceDiff; deliver: boolean }>();
  /**
   * topic → key → metas whose leave is held (see {@link PresenceOptions.leaveGraceMs}). They
   * are still listed and replicated: clients and other nodes were not told they left.
   */
  readonly #lingering = new Map<string, Map<string, _Lingering>>();
  /** Cancels the pending batch's flush. */
  #cancelFlush?: () => void;
  readonly #timers: Timers;
  /** The bytes of this node's metas per topic, within the bus line. */
  readonly #bytes = new PresenceBytes((topic) => {
    const line = this.hub.broker.maxMessageBytes;
    // A crowd's state is replicated in buckets, each its own message (crowd_buckets.ts).
    return line && this.#crowd.isCrowd(topic) ? line * CROWD_BUCKETS : line;
  });
  #refCounter = 0;
  /** Told of each topic whose cluster-wide state changed: the webhooks' member events. */
  onTopicChange?: (topic: string) => void;
  readonly #refPrefix: string;
  /** Crowd mode (crowd.ts): it reads the members through this tracker. */
  readonly #crowd: CrowdPresence;

  constructor(readonly hub: Hub, readonly options: PresenceOptions) {
    this.#refPrefix = `${hub.nodeId}.${Date.now().toString(36)}.`;
    this.#timers = options.timers ?? plainTimers;
    this.#crowd = new CrowdPresence(
      {
        keys: (topic) => this.#keys(topic),
        metasOf: (topic, key) => this.#metasOf(topic, key),
        counts: (topic) => this.counts(topic),
        list: (topic) => this.list(topic),
      },
      {
        deliverLocal: (topic, event, payload) => hub.deliverLocal(topic, event, payload),
        replicate: (topic) => this.#replicate(topic),
        now: () => hub.clock.now(),
        after: (ms, fn) => this.#timers.after(ms, fn),
      },
      options.crowdSettings ?? (() => undefined),
    );
    // The broker calls these from its own loops: a failure stays with its topic (issue 21).
    hub.broker.onPresence({
      state: (nodeId, topic, state, announce) =>
        this.#guard("remote state", topic, () => this.#setRemote(nodeId, topic, state, announce)),
      nodeDown: (nodeId) => this.#guard("node down", "", () => this.#dropNode(nodeId)),
      resync: () => {
        for (const topic of this.localTopics()) {
          this.#guard("resync", topic, () => this.#replicate(topic, true));
        }
      },
    });
  }

  /** Tracks `key` on `topic` for one owner (a channel instance); returns the new `phx_ref`. */
  track(topic: string, ownerId: string, key: string, meta: Payload): string {
    if (this.#owners(topic, key, false)?.has(ownerId)) {
      throw new Error(`"${key}" is already tracked on ${topic} by this channel; use update`);
    }
    const entry = { ...meta, phx_ref: this.#nextRef() } as PresenceMeta;
    this.#bytes.claim(topic, entry); // issue 21: refused here, before anything changes
    this.#owners(topic, key, true)!.set(ownerId, entry);
    const diff = this.#diff(topic);
    (diff.joins[key] ??= { metas: [] }).metas.push(entry);
    // Back within the grace: the held leave rides with this join, which clients apply first.
    this.#releaseLeave(topic, key);
    return entry.phx_ref;
  }

  /** Puts back a meta from before a wake (Cloudflare hibernation): its `phx_ref`, no diff. */
  restore(topic: string, ownerId: string, key: string, meta: PresenceMeta): void {
    this.#owners(topic, key, true)!.set(ownerId, meta);
    this.#stateCache.delete(topic);
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
    this.#bytes.claim(topic, entry, old);
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
    else {
      this.#bytes.unclaim(topic, old);
      (this.#diff(topic).leaves[key] ??= { metas: [] }).metas.push(old);
    }
  }

  /** The current meta of one owner for `key`, if tracked. */
  get(topic: string, ownerId: string, key: string): PresenceMeta | undefined {
    return this.#topics.get(topic)?.get(key)?.get(ownerId);
  }

  /** The full presence state of a topic on every node, as `presence_state` sends it. */
  list(topic: string): PresenceState {
    const state = this.#localList(topic);
    for (const remote of this.#remoteStates(topic)) {
      for (const [key, { metas }] of Object.entries(remote)) {
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
  stateJson(topic: string, ownKeys?: Iterable<string>): string {
    // A crowd's joiner gets the visible set and its own keys, not the whole list.
    const crowd = this.#crowd.stateJson(topic, ownKeys);
    if (crowd !== undefined) return crowd;
    let json = this.#stateCache.get(topic);
    if (json === undefined) {
      json = JSON.stringify(this.list(topic));
      this.#stateCache.set(topic, json);
    }
    return json;
  }

  /** True while `topic` is a crowd here (see crowd.ts). */
  isCrowd(topic: string): boolean {
    return this.#crowd.isCrowd(topic);
  }

  /** The count a crowd's joiner is told; undefined when the topic is not a crowd. */
  occupancy(topic: string): Occupancy | undefined {
    return this.#crowd.occupancy(topic);
  }

  /** One page of the topic's members in key order (see {@link CrowdPresence.pageOf}). */
  page(topic: string, cursor: string | null, limit: number): PresencePage {
    return this.#crowd.pageOf(topic, cursor, limit);
  }

  /** The distinct keys present on `topic` on every node (those of {@link list}, no metas). */
  keys(topic: string): Iterable<string> {
    return this.#keys(topic);
  }

  /** Metas (subscribers) and distinct keys (users) of a topic on every node. */
  counts(topic: string): Occupancy {
    let users = 0;
    for (const _key of this.#keys(topic)) users++;
    let subscribers = 0;
    for (const owners of this.#topics.get(topic)?.values() ?? []) subscribers += owners.size;
    for (const held of this.#lingering.get(topic)?.values() ?? []) subscribers += held.metas.length;
    for (const remote of this.#remoteStates(topic)) {
      for (const { metas } of Object.values(remote)) subscribers += metas.length;
    }
    return { subscribers, users };
  }

  /** After {@link restore}: crowds are crowds again, their clients get the visible set. */
  resumeCrowds(): void {
    const none = { joins: emptyPresenceState(), leaves: emptyPresenceState() };
    for (const topic of this.localTopics()) this.#crowd.changed(topic, none);
  }

  /** Topics with presences tracked on this node (held leaves included). */
  localTopics(): string[] {
    return [...new Set([...this.#topics.keys(), ...this.#lingering.keys()])];
  }

  /** Sends every pending diff now (held leaves stay held until their grace ends). */
  flush(): void {
    this.#cancelFlush?.();
    this.#cancelFlush = undefined;
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const [topic, diff] of pending) {
      this.#stateCache.delete(topic);
      // One topic's failure stays with it (issue 21: it used to end the process).
      this.#guard("diff", topic, () => {
        // A crowd tells its clients what changed in the visible set, on each node by itself.
        if (this.#crowd.changed(topic, diff)) return;
        const { onError, onSplit } = this.options;
        sendPresenceDiff({ hub: this.hub, topic, diff, onError, onSplit });
      });
      this.#guard("replicate", topic, () => this.#crowd.replicate(topic));
      this.onTopicChange?.(topic);
    }
    const remote = [...this.#remotePending];
    this.#remotePending.clear();
    for (const [topic, { diff, deliver }] of remote) {
      this.#guard("remote diff", topic, () => {
        if (this.#crowd.changed(topic, diff) || !deliver) return;
        if (!isEmptyDiff(diff)) this.hub.deliverLocal(topic, "presence_diff", { ...diff });
      });
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
    this.#crowd.close();
  }

  /** Every key of a topic, once: this node's (earliest tracked first), then the others'. */
  *#keys(topic: string): Generator<string> {
    const local = this.#topics.get(topic);
    const held = this.#lingering.get(topic);
    if (local) yield* local.keys();
    for (const key of held?.keys() ?? []) if (!local?.has(key)) yield key;
    if (this.#remote.size === 0) return;
    const seen = new Set<string>();
    for (const remote of this.#remoteStates(topic)) {
      for (const key of Object.keys(remote)) {
        if (local?.has(key) || held?.has(key) || seen.has(key)) continue;
        seen.add(key);
        yield key;
      }
    }
  }

  /** A key's metas on every node (empty: not present). */
  #metasOf(topic: string, key: string): PresenceMeta[] {
    const metas = [...this.#lingering.get(topic)?.get(key)?.metas ?? []];
    metas.push(...this.#topics.get(topic)?.get(key)?.values() ?? []);
    const bucket = this.#bucketed.has(topic) ? bucketTopic(topic, bucketOf(key)) : undefined;
    for (const topics of this.#remote.values()) {
      const entry = topics.get(topic)?.[key] ?? (bucket && topics.get(bucket)?.[key]);
      if (entry) metas.push(...entry.metas);
    }
    return metas;
  }

  /** Each other node's state of a topic: whole, or in buckets while it is a crowd there. */
  *#remoteStates(topic: string): Generator<PresenceState> {
    const bucketed = this.#bucketed.has(topic);
    for (const topics of this.#remote.values()) {
      const whole = topics.get(topic);
      if (whole) yield whole;
      for (let b = 0; bucketed && b < CROWD_BUCKETS; b++) {
        const part = topics.get(bucketTopic(topic, b));
        if (part) yield part;
      }
    }
  }

  /**
   * Sends this node's state of a topic to the others: whole for a room; for a crowd, the
   * buckets that changed (crowd_buckets.ts). `all`: every bucket (a resync after an outage).
   */
  #replicate(topic: string, all = false): void {
    const broker = this.hub.broker;
    const local = this.#localList(topic);
    if (!this.#crowd.isCrowd(topic)) {
      for (const [name, state] of this.#buckets.clear(topic)) broker.replicatePresence(name, state);
      return broker.replicatePresence(topic, local);
    }
    if (all) this.#buckets.clear(topic);
    for (const [name, state] of this.#buckets.changed(topic, local)) {
      broker.replicatePresence(name, state);
    }
  }

  /** Runs `fn`; a failure is reported with its step and topic instead of thrown. */
  #guard(step: string, topic: string, fn: () => void): void {
    guarded(this.options.onError, { step, topic }, fn);
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
    const cancel = this.#timers.after(graceMs, () => this.#releaseLeave(topic, key));
    keys.set(key, { metas: [meta], cancel });
  }

  /** Moves the held leave of `key` (if any) into the topic's pending diff. */
  #releaseLeave(topic: string, key: string): void {
    const keys = this.#lingering.get(topic);
    const held = keys?.get(key);
    if (!keys || !held) return;
    held.cancel();
    keys.delete(key);
    if (keys.size === 0) this.#lingering.delete(topic);
    for (const meta of held.metas) this.#bytes.unclaim(topic, meta);
    (this.#diff(topic).leaves[key] ??= { metas: [] }).metas.push(...held.metas);
  }

  /**
   * Replaces another node's state of a topic (or of one bucket of a crowd topic). For a room
   * that node broadcasts the clients' diff itself; for a crowd it does not, so this node tells
   * its own clients (crowd.ts decides what they see).
   */
  #setRemote(nodeId: string, name: string, state: PresenceState, announce: boolean): void {
    const bucket = parseBucketTopic(name);
    const topic = bucket?.topic ?? name;
    this.#stateCache.delete(topic);
    let topics = this.#remote.get(nodeId);
    if (!topics) this.#remote.set(nodeId, topics = new Map());
    const before = topics.get(name);
    const empty = Object.keys(state).length === 0;
    if (empty) topics.delete(name);
    else topics.set(name, state);
    if (topics.size === 0) this.#remote.delete(nodeId);
    if (bucket) this.#countBucket(topic, (empty ? 0 : 1) - (before ? 1 : 0));
    this.onTopicChange?.(topic);
    const diff = differenceOf(before ?? {}, state);
    if (bucket || this.#crowd.isCrowd(topic)) return this.#queueRemote(topic, diff, true);
    // A room: its node broadcast the diff (unless it resends its state); it may make a crowd.
    if (this.#crowd.changed(topic, diff) || !announce) return;
    if (!isEmptyDiff(diff)) {
      this.hub.deliverLocal(topic, "presence_diff", { ...diff });
    }
  }

  /** Adds another node's change of a crowd topic to the next batch (see #remotePending). */
  #queueRemote(topic: string, diff: PresenceDiff, deliver: boolean): void {
    let queued = this.#remotePending.get(topic);
    if (!queued) {
      queued = { diff: { joins: emptyPresenceState(), leaves: emptyPresenceState() }, deliver };
      this.#remotePending.set(topic, queued);
      this.#cancelFlush ??= this.#timers.after(this.options.batchMs, () => this.flush());
    }
    queued.deliver ||= deliver;
    mergeDiff(queued.diff, diff);
  }

  /** Keeps {@link #bucketed} in step: `delta` buckets of `topic` more (or fewer) held. */
  #countBucket(topic: string, delta: number): void {
    const held = (this.#bucketed.get(topic) ?? 0) + delta;
    if (held > 0) this.#bucketed.set(topic, held);
    else this.#bucketed.delete(topic);
  }

  /** A node died without a goodbye: its presences leave, told to this node's clients only. */
  #dropNode(nodeId: string): void {
    const topics = this.#remote.get(nodeId);
    if (!topics) return;
    this.#remote.delete(nodeId);
    // A crowd's buckets leave as one diff of their topic.
    const byTopic = new Map<string, PresenceState>();
    for (const [name, state] of topics) {
      const topic = parseBucketTopic(name)?.topic ?? name;
      if (topic !== name) this.#countBucket(topic, -1);
      let leaves = byTopic.get(topic);
      if (!leaves) byTopic.set(topic, leaves = emptyPresenceState());
      Object.assign(leaves, state);
    }
    for (const [topic, leaves] of byTopic) {
      this.#stateCache.delete(topic);
      this.onTopicChange?.(topic);
      if (this.#crowd.changed(topic, { joins: emptyPresenceState(), leaves })) continue;
      this.hub.deliverLocal(topic, "presence_diff", { joins: emptyPresenceState(), leaves });
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

  #diff(topic: string): PresenceDiff {
    let diff = this.#pending.get(topic);
    if (!diff) {
      this.#pending.set(
        topic,
        diff = { joins: emptyPresenceState(), leaves: emptyPresenceState() },
      );
      this.#cancelFlush ??= this.#timers.after(this.options.batchMs, () => this.flush());
    }
    return diff;
  }

  #nextRef(): string {
    return this.#refPrefix + (++this.#refCounter).toString(36);
  }
}
