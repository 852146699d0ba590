/**
 * The backend's server API on one node (`POST /api/disconnect`, `POST /api/unsubscribe`): end
 * a user's sessions, or take the user off one topic, whatever the transport. The cluster layer
 * (`lib/cluster/control.ts`) runs these on every node.
 *
 * @example
 * ```ts
 * const ended = disconnectUser(sessions, "ann"); // how many of Ann's sessions closed here
 * const left = unsubscribeUser(sessions, "ann", "record:42");
 * ```
 * @module
 */
import type { Session } from "./session.ts";

/** Ends every open session of `userId` (clients are told why); returns how many. */
export function disconnectUser(sessions: Iterable<Session>, userId: string): number {
  let count = 0;
  for (const session of [...sessions]) {
    if (session.userId !== userId || session.closed) continue;
    session.disconnect();
    count++;
  }
  return count;
}

/** Takes `userId`'s sessions off `topic`; returns how many sessions left it. */
export function unsubscribeUser(
  sessions: Iterable<Session>,
  userId: string,
  topic: string,
): number {
  let count = 0;
  for (const session of sessions) {
    if (session.userId === userId && session.unsubscribe(topic)) count++;
  }
  return count;
}
