/**
 * Occupancy across the cluster, over the bus the node already has (no Redis reads): once a
 * second each node sends the counts of its topics that changed, as one ephemeral message on a
 * reserved topic (a heartbeat resends all of them, a new node asks for them), and each node adds
 * the live peers' counts to its own. `users` is the sum of each node's distinct users: a user
 * with tabs on two nodes counts twice. The same reports elect the cluster's webhook sender: the
 * longest-running live node ({@link ClusterOccupancy.isSender}).
 *
 * Cost in Redis commands: a report rides in the tick's envelope, so one `PUBLISH` per node per
 * second while its counts change (none while they do not), one per heartbeat per node.
 *
 * @example
 * ```ts
 * const cluster = new ClusterOccupancy({ hub, local: switchboard.occupancy, timers, heartbeatMs: 10_000 });
 * cluster.onTick((topics) => console.log("changed", topics));
 * cluster.of("status:acme"); // { subscribers: 1204, users: 1180 }
 * ```
 * @module
 */
import type { Hub, Subscriber } from "../core/hub.ts";
import { INTERNAL_TOPIC_PREFIX } from "../core/topic.ts";
import type { Broadcast } from "../core/broadcast.ts";
import {
  EMPTY_OCCUPANCY,
  type LocalOccupancy,
  type Occupancy,
  type OccupancyReader,
} from "../core/occupancy.ts";
import type { Clock, Timers } from "../core/time.ts";
import { defaultLogger, describeError, type Logger } from "../log.ts";

/** The reserved topic the reports travel on (no channel serves it; clients never see it). */
export const OCCUPANCY_TOPIC = `${INTERNAL_TOPIC_PREFIX}occupancy`;

/** Topics a report message carries at most (large clusters' snapshots go in several). */
const _TOPICS_PER_MESSAGE = 500;

/** Topics kept per peer at most: a peer's flood of topics cannot grow memory without bound. */
export const MAX_PEER_TOPICS = 100_000;

/** One report on the bus. */
interface _Report {
  /** The node. */
  n: string;
  /** When it started (ms): the oldest live node sends the webhooks. */
  since: number;
  /** topic → [subscribers, users]; [0, 0]: none left. */
  t: [string, number, number][];
  /** Part `[i, of]` of a full snapshot: the peer's counts are replaced once all arrived. */
  full?: [number, number];
  /** A node that just started: peers answer with a full snapshot. */
  hello?: true;
  /** A node stopping: its counts go at once. */
  bye?: true;
  /** The node can send webhooks (it has `WEBHOOK_URL`): only such nodes are elected. */
  w?: true;
}

interface _Peer {
  since: number;
  /** It can send webhooks. */
  sends: boolean;
  seenAt: number;
  counts: Map<string, Occupancy>;
  /** A full snapshot being received. */
  staging?: Map<string, Occupancy>;
}

/** Options of {@link ClusterOccupancy}. */
export interface ClusterOccupancyOptions {
  hub: Hub;
  /** This node's counts (the hub keeps them). */
  local: LocalOccupancy;
  timers: Timers;
  clock?: Clock;
  /** How often changes go out and listeners run (default 1000 ms). */
  tickMs?: number;
  /** Every node sends all its counts this often; a peer silent for 2.5 times it is dropped. */
  heartbeatMs: number;
  log?: Logger;
  /** This node can send webhooks (default true); see {@link ClusterOccupancy.isSender}. */
  sends?: boolean;
  /** No peers can exist (the in-memory broker): no reports, and no timer while idle. */
  single?: boolean;
  /**
   * How long after the bus is up this node waits for its peers' snapshots before it may send webhooks
   * (default `2 * tickMs`; 0 for a single node, which has no peers to hear).
   */
  warmupMs?: number;
}

/** The cluster's occupancy as this node sees it, and the election of the webhook sender. */
export class ClusterOccupancy implements OccupancyReader, Subscriber {
  readonly id = "cluster-occupancy";
  readonly #hub: Hub;
  readonly #local: LocalOccupancy;
  readonly #clock: Clock;
  readonly #peers = new Map<string, _Peer>();
  readonly #listeners: ((topics: Set<string>) => void)[] = [];
  /** Topics whose cluster counts changed since the last tick (from peers). */
  #dirty = new Set<string>();
  readonly #since: number;
  readonly #ttlMs: number;
  readonly #warmupMs: number;
  readonly #heartbeatMs: number;
  #lastFull = 0;
  #snapshotAsked = false;
  #hello = false;
  /** Since when the bus is up without a break (undefined: down). */
  #connectedAt?: number;
  #closed = false;
  readonly #timers: Timers;
  readonly #tickMs: number;
  readonly #single: boolean;
  readonly #sends: boolean;
  #stopTimer?: () => void;
  readonly #onError: (err: unknown) => void;

  constructor(options: ClusterOccupancyOptions) {
    this.#hub = options.hub;
    this.#local = options.local;
    this.#clock = options.clock ?? Date;
    this.#since = this.#clock.now();
    this.#heartbeatMs = options.heartbeatMs;
    const log = options.log ?? defaultLogger;
    this.#onError = (err) => log.warn("an occupancy report failed", { error: describeError(err) });
    this.#ttlMs = options.heartbeatMs * 2.5;
    this.#tickMs = options.tickMs ?? 1_000;
    this.#warmupMs = options.warmupMs ?? 2 * this.#tickMs;
    this.#timers = options.timers;
    this.#single = options.single ?? false;
    this.#sends = options.sends ?? true;
    this.#hub.add(OCCUPANCY_TOPIC, this);
    this.#local.onChange = () => this.wake();
    this.wake();
  }

  /**
   * Starts the tick timer if it stopped. A single node stops it while nothing changed (a
   * Worker's Durable Object is not kept busy by an idle timer); a change wakes it.
   */
  wake(): void {
    if (this.#stopTimer || this.#closed) return;
    this.#stopTimer = this.#timers.every(this.#tickMs, () => this.tick());
  }

  /** Subscribers and users of `topic` on this node and every live peer. */
  of(topic: string): Occupancy {
    const own = this.#local.of(topic);
    let { subscribers, users } = own;
    for (const peer of this.#peers.values()) {
      const counts = peer.counts.get(topic);
      if (counts) {
        subscribers += counts.subscribers;
        users += counts.users;
      }
    }
    return subscribers === 0 ? EMPTY_OCCUPANCY : { subscribers, users };
  }

  /** Live peers (other nodes heard within the TTL). */
  get peerCount(): number {
    return this.#peers.size;
  }

  /**
   * True when this node sends the cluster's webhooks: it can, it has heard its peers (past the
   * warmup) and none of the live ones that can started before it (ties: the smaller node id).
   * A node without `WEBHOOK_URL` is never elected, so a rolling change of the setting loses
   * nothing.
   */
  isSender(): boolean {
    if (!this.warmedUp) return false;
    const self = this.#hub.nodeId;
    if (!this.#sends) return false;
    for (const [id, peer] of this.#peers) {
      if (!peer.sends) continue;
      if (peer.since < this.#since || (peer.since === this.#since && id < self)) return false;
    }
    return true;
  }

  /**
   * True once the bus has been up long enough for this node to hear its peers' snapshots
   * (after a start or a break of the bus: the peers may have dropped it, and it them).
   */
  get warmedUp(): boolean {
    const at = this.#connectedAt;
    return at !== undefined && this.#clock.now() - at >= this.#warmupMs;
  }

  /** Calls `listener` every tick with the topics whose cluster counts changed (maybe none). */
  onTick(listener: (topics: Set<string>) => void): void {
    this.#listeners.push(listener);
  }

  /** Sends this node's changes, drops silent peers and tells the listeners; the timer calls it. */
  tick(): void {
    const now = this.#clock.now();
    if (!this.#hub.broker.state().connected) this.#connectedAt = undefined;
    else if (this.#connectedAt === undefined) {
      // (Re)connected: say hello, so the peers send their snapshots, and send ours.
      this.#connectedAt = now;
      this.#hello = true;
      this.#snapshotAsked = true;
    }
    const changed = this.#local.takeChanged();
    const dirty = this.#dirty;
    this.#dirty = new Set();
    for (const topic of changed) dirty.add(topic);
    if (this.#single) {
      // Nobody to report to.
    } else if (this.#snapshotAsked || now - this.#lastFull >= this.#heartbeatMs) {
      this.#sendFull(now);
    } else if (changed.length) {
      this.#send(changed.map((t) => this.#row(t)), {});
    }
    for (const [id, peer] of this.#peers) {
      if (now - peer.seenAt > this.#ttlMs) this.#drop(id, dirty);
    }
    for (const listener of this.#listeners) listener(dirty);
    // A single node has nobody to report to: with nothing changed the timer stops, also while
    // sockets stay connected (a hibernating Durable Object must not be kept awake by it).
    if (this.#single && dirty.size === 0) {
      this.#stopTimer?.();
      this.#stopTimer = undefined;
    }
  }

  /** Tells the peers this node is gone and stops the timer. */
  close(): void {
    this.#closed = true;
    this.#stopTimer?.();
    this.#stopTimer = undefined;
    if (!this.#single) this.#send([], { bye: true });
    this.#hub.remove(OCCUPANCY_TOPIC, this);
  }

  /** A peer's report (the hub delivers only other nodes' here: ours are sent "from" us). */
  deliver(b: Broadcast): void {
    const report = b.payload as unknown as _Report;
    if (typeof report?.n !== "string" || report.n === this.#hub.nodeId) return;
    if (report.bye) return this.#drop(report.n, this.#dirty);
    let peer = this.#peers.get(report.n);
    if (!peer || peer.since !== report.since) {
      if (peer) this.#drop(report.n, this.#dirty);
      peer = { since: report.since, sends: false, seenAt: 0, counts: new Map() };
      this.#peers.set(report.n, peer);
    }
    peer.seenAt = this.#clock.now();
    peer.sends = report.w === true;
    if (report.hello) this.#snapshotAsked = true;
    if (!Array.isArray(report.t)) return;
    if (report.full) return this.#stage(peer, report.t, report.full);
    for (const row of report.t) {
      const topic = this.#apply(peer.counts, row);
      if (topic !== undefined) this.#dirty.add(topic);
    }
  }

  #stage(peer: _Peer, rows: _Report["t"], [part, of]: [number, number]): void {
    if (part === 0) peer.staging = new Map();
    if (!peer.staging) return;
    for (const row of rows) this.#apply(peer.staging, row);
    if (part !== of - 1) return;
    const before = peer.counts;
    peer.counts = peer.staging;
    peer.staging = undefined;
    for (const topic of before.keys()) {
      if (!peer.counts.has(topic)) this.#dirty.add(topic);
    }
    for (const [topic, counts] of peer.counts) {
      const old = before.get(topic);
      if (old?.subscribers !== counts.subscribers || old?.users !== counts.users) {
        this.#dirty.add(topic);
      }
    }
  }

  /**
   * Writes one report row into `counts`; returns its topic (undefined for a malformed row). A
   * snapshot's rows go to staging, and only the topics whose counts differ are marked dirty
   * when it is complete ({@link #stage}); a change report's rows are changes.
   */
  #apply(counts: Map<string, Occupancy>, row: unknown): string | undefined {
    if (!Array.isArray(row) || typeof row[0] !== "string") return undefined;
    const [topic, subscribers, users] = row as [string, number, number];
    if (!(subscribers > 0)) counts.delete(topic);
    else if (counts.has(topic) || counts.size < MAX_PEER_TOPICS) {
      counts.set(topic, { subscribers, users: users > 0 ? users : 0 });
    }
    return topic;
  }

  #drop(id: string, dirty: Set<string>): void {
    const peer = this.#peers.get(id);
    if (!peer) return;
    this.#peers.delete(id);
    for (const topic of peer.counts.keys()) dirty.add(topic);
  }

  #row(topic: string): [string, number, number] {
    const { subscribers, users } = this.#local.of(topic);
    return [topic, subscribers, users];
  }

  #sendFull(now: number): void {
    this.#snapshotAsked = false;
    this.#lastFull = now;
    const rows = [...this.#local.topics()].map((t) => this.#row(t));
    const parts = Math.max(1, Math.ceil(rows.length / _TOPICS_PER_MESSAGE));
    for (let i = 0; i < parts; i++) {
      const slice = rows.slice(i * _TOPICS_PER_MESSAGE, (i + 1) * _TOPICS_PER_MESSAGE);
      this.#send(slice, { full: [i, parts] });
    }
  }

  #send(rows: _Report["t"], extra: Partial<_Report>): void {
    const report: _Report = { n: this.#hub.nodeId, since: this.#since, t: rows, ...extra };
    if (this.#sends) report.w = true;
    if (this.#hello) {
      report.hello = true;
      this.#hello = false;
    }
    try {
      // An internal topic: the peers get it, not this node.
      this.#hub.broadcast(OCCUPANCY_TOPIC, "report", report as never);
    } catch (err) {
      // Too large for the bus (topic names near the limit): the peers miss these counts until
      // the next heartbeat; delivery to clients is not affected.
      this.#onError(err);
    }
  }
}
