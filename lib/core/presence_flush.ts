/**
 * Sends one topic's batched `presence_diff` without letting it break the node: a diff too
 * large for the cluster bus goes out split per key, a key too large alone reaches this node's
 * clients only, and any other failure stays with its topic (reported, never thrown out of the
 * flush timer, where it would be an uncaught exception that ends the process).
 *
 * @example
 * ```ts
 * import type { Hub } from "./hub.ts";
 * declare const hub: Hub;
 * const diff = { joins: {}, leaves: {} };
 * sendPresenceDiff({ hub, topic: "room:1", diff, onError: (err, at) => console.error(at, err) });
 * ```
 * @module
 */
import { MessageTooLargeError, type PresenceState } from "./broker.ts";
import type { Hub } from "./hub.ts";
import { emptyPresenceState, type PresenceDiff } from "./presence_diff.ts";
import { PhxEvent } from "./protocol.ts";

/** Where a failure of the presence tracker was contained: its step, topic and key. */
export interface PresenceFailurePlace {
  step: string;
  topic: string;
  key?: string;
}

/**
 * Told of a failure contained in a flush (a diff, or one key of it, that could not go out; a
 * replication that threw) or in a broker callback: the node logs and counts it.
 */
export type PresenceErrorHandler = (err: unknown, at: PresenceFailurePlace) => void;

/**
 * Runs `fn`; a failure goes to `onError` (the console when none) instead of being thrown:
 * from a timer or a broker's loop it would end the process.
 */
export function guarded(
  onError: PresenceErrorHandler | undefined,
  at: PresenceFailurePlace,
  fn: () => void,
): void {
  try {
    fn();
  } catch (err) {
    reportPresenceError(onError, err, at);
  }
}

/** Hands a contained failure to `onError`, or to the console when there is none. */
export function reportPresenceError(
  onError: PresenceErrorHandler | undefined,
  err: unknown,
  at: PresenceFailurePlace,
): void {
  (onError ?? ((e, where) => console.error("presence failed", where, e)))(err, at);
}

/** What {@link sendPresenceDiff} sends, and whom it tells of a split or a failure. */
export interface PresenceDiffSend {
  hub: Hub;
  topic: string;
  diff: PresenceDiff;
  /** Told of a failure of the whole diff or of one key's part (default: the console). */
  onError?: PresenceErrorHandler;
  /** Told when the diff was too large for the bus and goes out per key. */
  onSplit?: (topic: string) => void;
}

/** Broadcasts `diff` on `topic`, split per key when the whole is too large for the bus. */
export function sendPresenceDiff(send: PresenceDiffSend): void {
  const { hub, topic, diff } = send;
  const failed = (err: unknown, key?: string) => {
    reportPresenceError(send.onError, err, { step: "diff", topic, key });
  };
  try {
    hub.broadcast(topic, PhxEvent.presenceDiff, { ...diff });
    return;
  } catch (err) {
    if (!(err instanceof MessageTooLargeError)) return failed(err);
  }
  send.onSplit?.(topic);
  // Each key's joins and leaves stay together: a handover (leave and re-join) is one diff.
  const keys = new Set([...Object.keys(diff.joins), ...Object.keys(diff.leaves)]);
  for (const key of keys) {
    const part: PresenceDiff = { joins: _only(diff.joins, key), leaves: _only(diff.leaves, key) };
    try {
      hub.broadcast(topic, PhxEvent.presenceDiff, { ...part });
    } catch (err) {
      failed(err, key);
      // Too large for the bus even alone: this node's clients still see it.
      if (err instanceof MessageTooLargeError) {
        try {
          hub.deliverLocal(topic, PhxEvent.presenceDiff, { ...part });
        } catch (local) {
          failed(local, key);
        }
      }
    }
  }
}

function _only(state: PresenceState, key: string): PresenceState {
  const out = emptyPresenceState();
  if (state[key]) out[key] = state[key];
  return out;
}
