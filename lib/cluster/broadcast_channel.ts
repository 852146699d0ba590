/**
 * The BroadcastChannel broker: the isolates of one process (`deno serve --parallel`, one isolate
 * per core) act as one server for clients. It is the replication of `replication.ts` over a
 * `BroadcastChannel` instead of Redis pub/sub: the same envelopes, catch-up and presence
 * replication, heartbeats and goodbyes. There is no shared store: every isolate receives every
 * message, so its own history, last messages and presence mirror are complete; an isolate that
 * (re)joins asks the others for their presence.
 *
 * What crosses the channel per broadcast: one envelope per tick per isolate (all broadcasts of
 * that tick), a string the runtime copies to each other isolate, which parses it and delivers
 * to its own subscribers.
 *
 * @example
 * ```ts
 * const broker = new BroadcastChannelBroker({ nodeId: "w1" });
 * const switchboard = new Switchboard({ config, channels, broker });
 * ```
 * @module
 */
import { NO_SHARED_STORE } from "../core/broker_memory.ts";
import type { HistoryLimits } from "../resume/history.ts";
import type { Logger } from "../log.ts";
import type { Clock, Timers } from "../core/time.ts";
import type { BusBatch, ClusterBus, SubscriptionHandlers } from "./bus.ts";
import { ReplicatingBroker } from "./replication.ts";

/** Options of {@link BroadcastChannelBroker}. */
export interface BroadcastChannelBrokerOptions {
  /** This isolate's id (unique per isolate). */
  nodeId: string;
  /** The channel's name: isolates with the same name act as one server (default `switchboard`). */
  name?: string;
  /** Heartbeat interval (default 1 000 ms: it costs nothing but a message between isolates). */
  pingMs?: number;
  /** An isolate not heard from this long is gone and its presences leave (default 3 000 ms). */
  nodeTtlMs?: number;
  clock?: Clock;
  timers?: Timers;
  log?: Logger;
  history?: HistoryLimits;
}

/** A BroadcastChannel as the bus; nothing is stored beside it. */
export class BroadcastChannelBus implements ClusterBus {
  readonly kind = "broadcast-channel";
  /** A BroadcastChannel does not deliver a message to the channel that posted it. */
  readonly echoes = false;
  readonly snapshots = false;
  #channel?: BroadcastChannel;

  constructor(readonly name: string) {}

  start(): Promise<void> {
    return Promise.resolve();
  }

  send(batch: BusBatch): Promise<void> {
    const channel = this.#channel;
    if (!channel) return Promise.reject(new Error("the BroadcastChannel is not open"));
    for (const json of batch.envelopes) channel.postMessage(json);
    return Promise.resolve();
  }

  subscribe(handlers: SubscriptionHandlers): void {
    this.#channel?.close();
    const channel = new BroadcastChannel(this.name);
    channel.onmessage = (event) => handlers.message(String(event.data));
    channel.onmessageerror = (event) => handlers.failed(event);
    this.#channel = channel;
    queueMicrotask(() => handlers.subscribed());
  }

  unsubscribe(): Promise<void> {
    if (this.#channel) this.#channel.onmessage = null;
    return Promise.resolve();
  }

  goodbye(byeJson: string): Promise<void> {
    this.#channel?.postMessage(byeJson);
    this.#channel?.close();
    this.#channel = undefined;
    return Promise.resolve();
  }

  // No shared store: every isolate receives every message and keeps its own copy.
  readonly fetchLast = NO_SHARED_STORE.fetchLast;
  readonly fetchHeads = NO_SHARED_STORE.fetchHeads;
  readonly fetchRecent = NO_SHARED_STORE.fetchRecent;
}

/** Joins the nodes of one process's isolates through a `BroadcastChannel`, as one server. */
export class BroadcastChannelBroker extends ReplicatingBroker {
  constructor(options: BroadcastChannelBrokerOptions) {
    super(new BroadcastChannelBus(options.name ?? "switchboard"), {
      nodeId: options.nodeId,
      pingMs: options.pingMs ?? 1_000,
      nodeTtlMs: options.nodeTtlMs ?? 3_000,
      // No directory to refresh: the bus keeps none.
      directoryMs: 3_600_000,
      // Nothing in between the isolates limits a message's size but memory: the API body limit
      // and the frame limit bound what enters.
      maxMessageBytes: 64 << 20,
      envelopeBytes: 1 << 20,
      clock: options.clock,
      timers: options.timers,
      log: options.log,
      history: options.history,
    });
  }
}
