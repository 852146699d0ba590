/**
 * The server API's commands on every node: `disconnect` (a user's sessions end, their old
 * tokens are refused) and `unsubscribe` (a user leaves one topic). The node that takes the
 * request applies it at once and answers with its own count; the command goes to the others as
 * one ephemeral message on a reserved topic (one `PUBLISH` with Redis). Both are idempotent:
 * repeating one finds nothing more to end.
 *
 * @example
 * ```ts
 * const control = new ClusterControl({ hub, local: switchboard });
 * control.disconnect("ann"); // sessions ended on this node; the others follow
 * ```
 * @module
 */
import type { Broadcast } from "../core/broadcast.ts";
import type { Hub, Subscriber } from "../core/hub.ts";
import { INTERNAL_TOPIC_PREFIX } from "../core/topic.ts";
import { defaultLogger, describeError, type Logger } from "../log.ts";

/** The reserved topic the commands travel on (no channel serves it). */
export const CONTROL_TOPIC = `${INTERNAL_TOPIC_PREFIX}control`;

/** What a node does for a command: its own sessions only; returns how many were affected. */
export interface LocalControl {
  disconnectLocal(userId: string): number;
  unsubscribeLocal(userId: string, topic: string): number;
}

/** Options of {@link ClusterControl}. */
export interface ClusterControlOptions {
  hub: Hub;
  local: LocalControl;
  log?: Logger;
}

interface _Command {
  disconnect?: string;
  unsubscribe?: { user_id: string; topic: string };
}

/** Applies commands here and sends them to the other nodes. */
export class ClusterControl implements Subscriber {
  readonly id = "cluster-control";
  readonly #hub: Hub;
  readonly #local: LocalControl;
  readonly #log: Logger;

  constructor(options: ClusterControlOptions) {
    this.#hub = options.hub;
    this.#local = options.local;
    this.#log = options.log ?? defaultLogger;
    this.#hub.add(CONTROL_TOPIC, this);
  }

  /** Disconnects `userId` on every node; returns the sessions ended on this one. */
  disconnect(userId: string): number {
    this.#send({ disconnect: userId });
    return this.#local.disconnectLocal(userId);
  }

  /** Removes `userId` from `topic` on every node; returns the sessions that left it here. */
  unsubscribe(userId: string, topic: string): number {
    this.#send({ unsubscribe: { user_id: userId, topic } });
    return this.#local.unsubscribeLocal(userId, topic);
  }

  /** Another node's command. */
  deliver(b: Broadcast): void {
    const command = b.payload as _Command;
    if (typeof command.disconnect === "string") this.#local.disconnectLocal(command.disconnect);
    const u = command.unsubscribe;
    if (typeof u?.user_id === "string" && typeof u.topic === "string") {
      this.#local.unsubscribeLocal(u.user_id, u.topic);
    }
  }

  /** Stops listening for commands. */
  close(): void {
    this.#hub.remove(CONTROL_TOPIC, this);
  }

  #send(command: _Command): void {
    try {
      // An internal topic: the other nodes get it, not this one.
      this.#hub.broadcast(CONTROL_TOPIC, "command", command as never);
    } catch (err) {
      // Too large for the bus (a user id or topic near the limits): this node still applies it.
      this.#log.error("a server API command could not reach the other nodes", {
        error: describeError(err),
      });
    }
  }
}
