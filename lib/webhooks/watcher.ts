/**
 * Turns the cluster's occupancy and presence into webhook events, once per cluster: every node
 * follows what the receiver has been told (occupied topics, members per topic) from its own
 * view of the cluster, and only the elected sender ({@link ClusterOccupancy.isSender}: the
 * longest-running live node) sends the differences. When the sender dies, the next one already
 * knows what was told and goes on from there (the dead node's topics are vacated by it).
 *
 * A topic counts as occupied while it has subscribers or presences anywhere, so per topic the
 * receiver sees `channel_occupied`, then `member_added`/`member_removed`, then
 * `channel_vacated`; a presence leaves after the leave grace (a tab's handover sends nothing),
 * and changes within one tick (~1 s) are coalesced.
 *
 * @example
 * ```ts
 * new WebhookWatcher({ cluster, presence: switchboard.presence, sender });
 * ```
 * @module
 */
import type { PresenceTracker } from "../core/presence.ts";
import type { ClusterOccupancy } from "../cluster/occupancy.ts";
import type { WebhookEvent } from "./sender.ts";

/** Options of {@link WebhookWatcher}. */
export interface WebhookWatcherOptions {
  cluster: ClusterOccupancy;
  presence: PresenceTracker;
  /** Where the events go (the {@link WebhookSender} of this node). */
  sender: { enqueue(event: Omit<WebhookEvent, "id">): void };
}

const _NO_KEYS: ReadonlySet<string> = new Set();

/** Watches the cluster's topics; see the module doc. */
export class WebhookWatcher {
  readonly #options: WebhookWatcherOptions;
  /** Topics the receiver was told are occupied. */
  readonly #occupied = new Set<string>();
  /** Members the receiver was told of, per topic. */
  readonly #members = new Map<string, ReadonlySet<string>>();
  /** Topics to look at: counts changed, or presence changed (then `true`). */
  #dirty = new Map<string, boolean>();

  constructor(options: WebhookWatcherOptions) {
    this.#options = options;
    options.presence.onTopicChange = (topic) => {
      this.#dirty.set(topic, true);
      options.cluster.wake();
    };
    options.cluster.onTick((topics) => this.#tick(topics));
  }

  #tick(topics: Set<string>): void {
    const { cluster, presence, sender } = this.#options;
    for (const topic of topics) if (!this.#dirty.has(topic)) this.#dirty.set(topic, false);
    // Until this node heard its peers it cannot tell what is new: keep collecting.
    if (!cluster.warmedUp || this.#dirty.size === 0) return;
    const send = cluster.isSender();
    const dirty = this.#dirty;
    this.#dirty = new Map();
    for (const [topic, presenceChanged] of dirty) {
      const told = this.#members.get(topic) ?? _NO_KEYS;
      const keys = presenceChanged ? new Set(presence.keys(topic)) : told;
      const occupied = keys.size > 0 || cluster.of(topic).subscribers > 0;
      const events: Omit<WebhookEvent, "id">[] = [];
      if (occupied && !this.#occupied.has(topic)) {
        events.push({ name: "channel_occupied", topic });
        this.#occupied.add(topic);
      }
      for (const key of keys) {
        if (!told.has(key)) events.push({ name: "member_added", topic, user_id: key });
      }
      for (const key of told) {
        if (!keys.has(key)) events.push({ name: "member_removed", topic, user_id: key });
      }
      if (keys.size > 0) this.#members.set(topic, keys);
      else this.#members.delete(topic);
      if (!occupied && this.#occupied.delete(topic)) {
        events.push({ name: "channel_vacated", topic });
      }
      if (send) { for (const event of events) sender.enqueue(event); }
    }
  }
}
