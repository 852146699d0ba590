/**
 * Occupancy on one node: per topic, how many subscribers (channel instances, every transport)
 * and how many distinct users among them. The hub reports each subscribe and unsubscribe here;
 * the cluster view (`lib/cluster/occupancy.ts`) adds the other nodes' counts. Topics whose
 * counts changed are remembered until {@link LocalOccupancy.takeChanged} is called, so the
 * cluster sends only what changed.
 *
 * @example
 * ```ts
 * const local = new LocalOccupancy();
 * local.joined("status:acme", "ann");
 * local.joined("status:acme", "ann"); // a second tab
 * local.of("status:acme"); // { subscribers: 2, users: 1 }
 * local.takeChanged(); // ["status:acme"]
 * ```
 * @module
 */

/** The `occupancy` event's payload and `GET /api/occupancy`'s counts. */
export interface Occupancy {
  /** Subscribers of the topic (one per joined channel instance, whatever the transport). */
  subscribers: number;
  /** Distinct user ids among them. */
  users: number;
}

/** Reads a topic's occupancy: this node's, or the cluster's (`lib/cluster/occupancy.ts`). */
export interface OccupancyReader {
  of(topic: string): Occupancy;
}

/**
 * What the cluster layer plugs into a node (`lib/extensions.ts`); the defaults serve this node
 * only. `/api/occupancy` and the server API go through it.
 */
export interface NodeExtensions {
  /** Counts of a topic (the default: this node's). */
  occupancy: OccupancyReader;
  /** Disconnects `userId` everywhere; returns how many sessions ended on this node. */
  disconnect(userId: string): number;
  /** Removes `userId` from `topic` everywhere; returns how many sessions left it on this node. */
  unsubscribe(userId: string, topic: string): number;
  /** Stops the extension's timers (after the sessions ended, before the broker stops). */
  close?(): void | Promise<void>;
}

/** Nobody there. */
export const EMPTY_OCCUPANCY: Readonly<Occupancy> = Object.freeze({ subscribers: 0, users: 0 });

interface _Topic {
  subscribers: number;
  /** user id → subscriptions of that user on this topic. */
  users: Map<string, number>;
}

/** The occupancy of this node's topics (memory: one entry per subscribed user and topic). */
export class LocalOccupancy implements OccupancyReader {
  readonly #topics = new Map<string, _Topic>();
  #changed = new Set<string>();
  /** Told when a change comes after none was pending (the cluster view wakes its timer). */
  onChange?: () => void;

  /** A subscriber of `topic` (held by `userId`) was added. */
  joined(topic: string, userId: string): void {
    let entry = this.#topics.get(topic);
    if (!entry) this.#topics.set(topic, entry = { subscribers: 0, users: new Map() });
    entry.subscribers++;
    entry.users.set(userId, (entry.users.get(userId) ?? 0) + 1);
    this.#change(topic);
  }

  /** A subscriber of `topic` (held by `userId`) was removed. */
  left(topic: string, userId: string): void {
    const entry = this.#topics.get(topic);
    if (!entry) return;
    entry.subscribers--;
    const held = (entry.users.get(userId) ?? 1) - 1;
    if (held > 0) entry.users.set(userId, held);
    else entry.users.delete(userId);
    if (entry.subscribers <= 0) this.#topics.delete(topic);
    this.#change(topic);
  }

  /** The counts of `topic` on this node. */
  of(topic: string): Occupancy {
    const entry = this.#topics.get(topic);
    return entry ? { subscribers: entry.subscribers, users: entry.users.size } : EMPTY_OCCUPANCY;
  }

  /** Topics with subscribers on this node. */
  topics(): IterableIterator<string> {
    return this.#topics.keys();
  }

  /** True when `topic` has a subscriber of `userId` on this node. */
  has(topic: string, userId: string): boolean {
    return this.#topics.get(topic)?.users.has(userId) ?? false;
  }

  /** The topics whose counts changed since the last call (each once), and forgets them. */
  takeChanged(): string[] {
    if (this.#changed.size === 0) return [];
    const changed = [...this.#changed];
    this.#changed = new Set();
    return changed;
  }

  #change(topic: string): void {
    const first = this.#changed.size === 0;
    this.#changed.add(topic);
    if (first) this.onChange?.();
  }
}
