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

/** One presence entry: the user's meta plus its `phx_ref` (and `phx_ref_prev` after an update). */
export type PresenceMeta = Payload & { phx_ref: string; phx_ref_prev?: string };

/** `{key: {metas: [...]}}`, the shape of `presence_state` and of both halves of a diff. */
export type PresenceState = Record<string, { metas: PresenceMeta[] }>;

/** Options of {@link PresenceTracker}. */
export interface PresenceOptions {
  /** Diffs of one topic within this window go out as one `presence_diff` (0: next tick). */
  batchMs: number;
}

interface _Diff {
  joins: PresenceState;
  leaves: PresenceState;
}

/** See the module documentation. */
export class PresenceTracker {
  /** topic → key → owner id → meta */
  readonly #topics = new Map<string, Map<string, Map<string, PresenceMeta>>>();
  readonly #pending = new Map<string, _Diff>();
  #timer?: ReturnType<typeof setTimeout>;
  #refCounter = 0;
  readonly #refPrefix: string;

  constructor(readonly hub: Hub, readonly options: PresenceOptions) {
    this.#refPrefix = `${hub.nodeId}.${Date.now().toString(36)}.`;
  }

  /** Tracks `key` on `topic` for one owner (a channel instance); returns the new `phx_ref`. */
  track(topic: string, ownerId: string, key: string, meta: Payload): string {
    const owners = this.#owners(topic, key, true)!;
    if (owners.has(ownerId)) {
      throw new Error(`"${key}" is already tracked on ${topic} by this channel; use update`);
    }
    const entry = { ...meta, phx_ref: this.#nextRef() } as PresenceMeta;
    owners.set(ownerId, entry);
    this.#diff(topic).joins[key] ??= { metas: [] };
    this.#diff(topic).joins[key].metas.push(entry);
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

  /** Removes the owner's meta for `key`; a no-op when it was not tracked. */
  untrack(topic: string, ownerId: string, key: string): void {
    const keys = this.#topics.get(topic);
    const owners = keys?.get(key);
    const old = owners?.get(ownerId);
    if (!keys || !owners || !old) return;
    owners.delete(ownerId);
    if (owners.size === 0) keys.delete(key);
    if (keys.size === 0) this.#topics.delete(topic);
    (this.#diff(topic).leaves[key] ??= { metas: [] }).metas.push(old);
  }

  /** The current meta of one owner for `key`, if tracked. */
  get(topic: string, ownerId: string, key: string): PresenceMeta | undefined {
    return this.#topics.get(topic)?.get(key)?.get(ownerId);
  }

  /** The full presence state of a topic, as `presence_state` sends it. */
  list(topic: string): PresenceState {
    const state: PresenceState = {};
    for (const [key, owners] of this.#topics.get(topic) ?? []) {
      state[key] = { metas: [...owners.values()] };
    }
    return state;
  }

  /** Sends every pending diff now. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const [topic, diff] of pending) this.hub.broadcast(topic, "presence_diff", { ...diff });
  }

  /** Flushes pending diffs and stops the batch timer. */
  close(): void {
    this.flush();
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
      this.#pending.set(topic, diff = { joins: {}, leaves: {} });
      this.#timer ??= setTimeout(() => this.flush(), this.options.batchMs);
    }
    return diff;
  }

  #nextRef(): string {
    return this.#refPrefix + (++this.#refCounter).toString(36);
  }
}
