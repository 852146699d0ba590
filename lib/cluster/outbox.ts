/**
 * What a node has to tell the others at its next send, gathered over a tick: messages,
 * changed presence states (the newest per topic), catch-up requests (the earliest per node),
 * a re-send others asked for, and the heartbeat, directory, announce and sync flags. A send
 * takes it all as one batch; a failed send puts the batch back in front, bounded.
 *
 * @example
 * ```ts
 * const outbox = new Outbox();
 * outbox.messages.push({ index: 1, msg, json: JSON.stringify(msg) });
 * const batch = outbox.take(); // everything, the outbox empty again
 * outbox.requeue(batch); // the bus did not take it: next tick
 * ```
 * @module
 */
import type { PresenceState } from "../core/broker.ts";
import type { QueuedMessage } from "./bus.ts";
import type { CatchUpRequest } from "./envelope.ts";

/** Messages kept for retry while the bus cannot be reached (beyond: re-sent on request). */
export const RETRY_LIMIT = 10_000;

/** One send's worth of the outbox. */
export interface OutboxBatch {
  messages: QueuedMessage[];
  presence: Map<string, PresenceState>;
  requests: CatchUpRequest[];
  /** The lowest index another node asked this run to re-send from. */
  resendFrom?: number;
  directory: boolean;
  announce: boolean;
  sync: boolean;
}

/** What waits for the next send. */
export class Outbox {
  messages: QueuedMessage[] = [];
  presence = new Map<string, PresenceState>();
  #requests = new Map<string, CatchUpRequest>();
  #resendFrom?: number;
  heartbeatDue = true;
  directoryDue = true;
  /** The next envelope carries this node's full presence, announced (after an outage). */
  announce = false;
  /** The next envelope asks the others for their presence (no snapshots to read). */
  sync = false;
  /** Messages dropped from the retry queue so far (the others ask for them again). */
  dropped = 0;

  /** True when there is anything to send (a heartbeat counts). */
  get hasWork(): boolean {
    return this.messages.length > 0 || this.presence.size > 0 || this.heartbeatDue ||
      this.directoryDue || this.#requests.size > 0 || this.#resendFrom !== undefined;
  }

  /** Asks `q.n` to re-send from `q.from`: a new run of it, or an earlier position, wins. */
  request(q: CatchUpRequest): void {
    const known = this.#requests.get(q.n);
    if (!known || known.e !== q.e || q.from < known.from) this.#requests.set(q.n, q);
  }

  /** The others asked this run to re-send from `from`. */
  resend(from: number): void {
    this.#resendFrom = Math.min(this.#resendFrom ?? Infinity, from);
  }

  /** Everything, as one batch; the outbox is empty afterwards. */
  take(): OutboxBatch {
    const batch: OutboxBatch = {
      messages: this.messages,
      presence: this.presence,
      requests: [...this.#requests.values()],
      resendFrom: this.#resendFrom,
      directory: this.directoryDue,
      announce: this.announce,
      sync: this.sync,
    };
    this.messages = [];
    this.presence = new Map();
    this.#requests = new Map();
    this.#resendFrom = undefined;
    this.heartbeatDue = false;
    this.directoryDue = false;
    this.announce = false;
    this.sync = false;
    return batch;
  }

  /**
   * Puts a batch that the bus did not take back in front, for the next tick. Returns the
   * index of the newest message dropped past {@link RETRY_LIMIT}, if any (it stays in the sent
   * log, and the others ask for it).
   */
  requeue(batch: OutboxBatch): number | undefined {
    this.messages = batch.messages.concat(this.messages);
    let droppedUpTo: number | undefined;
    if (this.messages.length > RETRY_LIMIT) {
      const dropped = this.messages.splice(0, this.messages.length - RETRY_LIMIT);
      this.dropped += dropped.length;
      droppedUpTo = dropped.at(-1)!.index;
    }
    // Presence is state, not a stream: resend the newest state once the bus answers.
    for (const [topic, state] of batch.presence) {
      if (!this.presence.has(topic)) this.presence.set(topic, state);
    }
    // The clients' diffs went down with this batch: the receivers must derive them.
    this.announce ||= batch.announce || batch.presence.size > 0;
    this.sync ||= batch.sync;
    for (const q of batch.requests) {
      // Newer requests queued meanwhile win, unless the old one asks for more.
      const known = this.#requests.get(q.n);
      if (!known || q.from < known.from) this.#requests.set(q.n, q);
    }
    if (batch.resendFrom !== undefined) this.resend(batch.resendFrom);
    // The store may come back empty: register in the directory again at once.
    this.directoryDue = true;
    this.heartbeatDue = true;
    return droppedUpTo;
  }
}
