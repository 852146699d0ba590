/**
 * The other nodes as one node hears them on the bus: their run, the newest presence state
 * applied, when they were last heard. A node not heard from within the TTL is dead, and its
 * presences leave; a goodbye or a new run drops the old run's at once. Bus-neutral: a
 * bus that keeps presence snapshots (Redis) feeds them in with {@link PeerDirectory.snapshot}.
 *
 * @example
 * ```ts
 * const nodes = new PeerDirectory({ ttlMs: 25_000, clock: Date });
 * nodes.presence = handlers;
 * nodes.heard(envelope); // applies its presence, notes it alive
 * nodes.expire();        // drops the silent ones
 * ```
 * @module
 */
import type { Clock } from "../core/time.ts";
import type { PresenceReplicaHandlers, PresenceState } from "../core/broker.ts";
import type { BusEnvelope } from "./envelope.ts";

interface _Node {
  runId: string;
  seq: number;
  lastSeen: number;
}

/** The fields of {@link PeerDirectory}. */
export interface PeerDirectoryInit {
  /** A node not heard from (on the bus) within this long is dead. */
  ttlMs: number;
  clock: Clock;
}

/** The other nodes of the cluster as this node hears them. */
export class PeerDirectory {
  readonly #nodes = new Map<string, _Node>();
  presence?: PresenceReplicaHandlers;
  readonly ttlMs: number;
  readonly clock: Clock;

  constructor(init: PeerDirectoryInit) {
    this.ttlMs = init.ttlMs;
    this.clock = init.clock;
  }

  /** Other nodes alive as far as this node knows. */
  get size(): number {
    return this.#nodes.size;
  }

  /**
   * Takes an envelope from another node: goodbyes and restarts drop the old run's presences,
   * newer presence states are applied. Returns true when the node (run) was not known before.
   */
  heard(envelope: BusEnvelope): boolean {
    const now = this.clock.now();
    const known = this.#nodes.get(envelope.n);
    if (envelope.bye || (known && known.runId !== envelope.e)) this.#drop(envelope.n);
    if (envelope.bye) return false;
    let node = this.#nodes.get(envelope.n);
    const isNew = !node;
    if (!node) this.#nodes.set(envelope.n, node = { runId: envelope.e, seq: 0, lastSeen: now });
    node.lastSeen = now;
    if (envelope.p && envelope.s > node.seq) {
      node.seq = envelope.s;
      for (const [topic, state] of Object.entries(envelope.p)) {
        this.presence?.state(envelope.n, topic, state, envelope.a === true);
      }
    }
    return isNew;
  }

  /**
   * Applies a node's whole presence snapshot (as of its envelope `seq`), unless a newer state
   * was applied meanwhile or the node is known under another run.
   */
  snapshot(
    nodeId: string,
    meta: { epoch: string; seq: number },
    states: Record<string, PresenceState>,
  ): void {
    const known = this.#nodes.get(nodeId);
    if (known && (known.runId !== meta.epoch || known.seq >= meta.seq)) return;
    const node = known ?? { runId: meta.epoch, seq: 0, lastSeen: this.clock.now() };
    node.seq = meta.seq;
    this.#nodes.set(nodeId, node);
    for (const [topic, state] of Object.entries(states)) {
      this.presence?.state(nodeId, topic, state, true);
    }
  }

  /** Drops the nodes not heard from within the TTL (their presences leave). */
  expire(): void {
    const now = this.clock.now();
    for (const [nodeId, node] of this.#nodes) {
      if (now - node.lastSeen > this.ttlMs) this.#drop(nodeId);
    }
  }

  #drop(nodeId: string): void {
    if (!this.#nodes.delete(nodeId)) return;
    this.presence?.nodeDown(nodeId);
  }
}
