/**
 * A resume's replay, paced by the connection's drain: the missed messages are written while
 * the client takes them (at most half the outbound budget unread at a time), never enqueued
 * whole past `MAX_OUTBOUND_BYTES`, so the slow-consumer cut never hits a replay that has not
 * started. Live messages that arrive meanwhile are held; when they alone pass the budget, the
 * client is too far behind: the replay gives up and the caller sends a `reset` instead.
 *
 * @example
 * ```ts
 * import type { Broadcast } from "./broadcast.ts";
 * import type { Connection } from "./connection.ts";
 * declare const connection: Connection;
 * declare const missed: Broadcast[];
 * const replay = new PacedReplay(connection, 2 << 20);
 * const outcome = await replay.send(missed, (b) => connection.sendBroadcast(b), () => false);
 * if (outcome === "overflow") {
 *   // send a reset with the current state, then the held messages past its position
 * }
 * ```
 * @module
 */
import { describeError, type Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { TopicCursor } from "../resume/cursor.ts";
import { judgedCursor } from "../resume/history.ts";
import type { Broadcast } from "./broadcast.ts";
import type { Connection } from "./connection.ts";
import type { Hub } from "./hub.ts";
import { approximateJsonBytes } from "./limits.ts";
import type { Payload } from "./message.ts";
import { ReplyReason } from "./protocol.ts";

/** How a paced replay ended: all sent, held live messages past the budget, or stopped. */
export type ReplayOutcome = "sent" | "overflow" | "stopped";

/** One replay of one topic on one connection, with the live messages held meanwhile. */
export class PacedReplay {
  /** Live broadcasts that arrived during the replay, in order. */
  readonly held: Broadcast[] = [];
  #heldBytes = 0;
  #overflow = false;
  #wake?: () => void;

  constructor(readonly connection: Connection, readonly budget: number) {}

  /** Holds a live broadcast until the replay is done. */
  hold(b: Broadcast): void {
    this.held.push(b);
    this.#heldBytes += approximateJsonBytes(b.payload) + (b.binary?.byteLength ?? 0);
    if (this.#heldBytes > this.budget && !this.#overflow) {
      this.#overflow = true;
      this.#wake?.();
    }
  }

  /**
   * Writes `messages` through `forward`, waiting for the client to take what was written
   * whenever more than half the budget is unread.
   */
  async send(
    messages: readonly Broadcast[],
    forward: (b: Broadcast) => void,
    stopped: () => boolean,
  ): Promise<ReplayOutcome> {
    const low = this.budget / 2;
    for (const b of messages) {
      // Bounded: each wait ends when the client reads, the connection closes (backlog 0), or
      // the held messages overflow; the connection's own timeouts end a client that vanished.
      while ((this.connection.backlog?.() ?? 0) > low) {
        if (stopped()) return "stopped";
        if (this.#overflow) return "overflow";
        await this.#drained();
      }
      if (stopped()) return "stopped";
      if (this.#overflow) return "overflow";
      forward(b);
    }
    return "sent";
  }

  #drained(): Promise<void> {
    const drained = this.connection.drained?.() ?? Promise.resolve();
    const woken = new Promise<void>((resolve) => this.#wake = resolve);
    return Promise.race([drained, woken]).finally(() => this.#wake = undefined);
  }
}

/** What {@link replayMissed} needs of the channel instance it replays for. */
export interface ReplayHost {
  readonly topic: string;
  readonly connection: Connection;
  /** The node: its hub, metrics, log, and the outbound budget (`MAX_OUTBOUND_BYTES`). */
  readonly node: {
    hub: Pick<Hub, "replay" | "head">;
    metrics: Metrics;
    log: Logger;
    options: { maxOutboundBytes: number };
  };
  stopped(): boolean;
  /** Writes a broadcast to the client as a live one would be. */
  forward(b: Broadcast): void;
  /** Sends the `reset` control event. */
  reset(reason: string, state: Payload): void;
  /** The channel's current state (`resetState`), when it has one. */
  freshState?: () => Promise<Payload> | Payload;
  /** Where live broadcasts go while the replay runs (undefined: straight to the client). */
  hold(replay: PacedReplay | undefined): void;
}

/**
 * Replays what a resuming client missed since `resume`, paced, then the live messages held
 * meanwhile, none twice. Past the window, a `reset` with `state` (the join reply); too far
 * behind for the budget, a `reset` with the current state.
 */
export async function replayMissed(
  host: ReplayHost,
  resume: TopicCursor,
  state: Payload,
): Promise<void> {
  const { topic, connection } = host;
  const { hub, metrics, log } = host.node;
  const replay = new PacedReplay(connection, host.node.options.maxOutboundBytes);
  host.hold(replay);
  const seen = new Map(resume.streams);
  const restart = (reason: string, fresh?: Payload) => {
    const head = hub.head(topic);
    connection.startTopic?.(topic, head);
    host.reset(reason, fresh ?? state);
    // A fresh state (read now) has the held messages up to the head in it already; the join
    // reply's state is older than all of them.
    if (fresh) { for (const [stream, seq] of head.streams) seen.set(stream, seq); }
  };
  try {
    // A position the client sent but the server cannot read: nothing to look up.
    const { messages, complete, heads } = resume.resetReason === undefined
      ? await hub.replay(topic, resume)
      : { messages: [], complete: false, heads: new Map() };
    if (host.stopped()) return;
    if (complete) {
      connection.startTopic?.(topic, judgedCursor(resume, heads));
      const outcome = await replay.send(messages, (b) => {
        seen.set(b.stream, b.seq);
        host.forward(b);
      }, host.stopped);
      if (outcome === "stopped") return;
      if (outcome === "overflow") {
        // Too far behind for the budget: the current state instead of the rest.
        const fresh = await host.freshState?.();
        if (host.stopped()) return;
        metrics.inc("switchboard_resume_resets_total");
        metrics.inc("switchboard_refused_total", { reason: "replay_too_far_behind" });
        restart(ReplyReason.tooFarBehind, fresh);
      }
    } else {
      metrics.inc("switchboard_resume_resets_total");
      restart(resume.resetReason ?? ReplyReason.historyWindowExceeded);
    }
  } catch (err) {
    log.error("a replay failed", { topic, error: describeError(err) });
    if (!host.stopped()) restart(ReplyReason.historyUnavailable);
  } finally {
    host.hold(undefined);
  }
  if (host.stopped()) return;
  for (const b of replay.held) {
    if (b.seq > 0 && (seen.get(b.stream) ?? 0) >= b.seq) continue;
    host.forward(b);
  }
}
