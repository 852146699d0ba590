/**
 * A topic's count and the full member list, page by page, as the client shows them: while the
 * topic is a crowd (docs/crowds.md) the list holds only its visible members and the server's
 * `occupancy` event carries the count; otherwise the list is everyone and is counted here.
 *
 * @example
 * ```ts
 * import { presenceCount } from "./crowd.ts";
 * presenceCount([{ key: "ann", metas: [{}, {}] }]); // { users: 1, subscribers: 2, crowd: false }
 * ```
 * @module
 */
import type { PresenceCount, PresenceEntry } from "./wire.ts";

/** How many are on a topic: users (distinct keys), subscribers (connections), and whether the
 * topic is a crowd (then `list()` holds only its visible members). */
export interface PresenceCounts extends PresenceCount {
  crowd: boolean;
}

/** One page of a topic's members, in key order; `next` is the cursor of the page after. */
export interface PresencePage extends PresenceCount {
  members: PresenceEntry[];
  next: string | null;
}

/** The client push that asks for a page (`{cursor, limit}`), answered with a {@link PresencePage}. */
export const PRESENCE_PAGE_EVENT = "presence_page";

/** The largest page the server gives. */
export const MAX_PAGE_LIMIT = 200;

/** The count: the server's while the topic is a crowd, else the list's own. */
export function presenceCount(entries: PresenceEntry[], count?: PresenceCount): PresenceCounts {
  if (count) return { ...count, crowd: true };
  let subscribers = 0;
  for (const entry of entries) subscribers += entry.metas.length;
  return { users: entries.length, subscribers, crowd: false };
}

/** Reads an `occupancy` payload; undefined when it is not `{subscribers, users}` numbers. */
export function readOccupancy(payload: Record<string, unknown>): PresenceCount | undefined {
  const { subscribers, users } = payload;
  if (typeof subscribers !== "number" || typeof users !== "number") return undefined;
  return { subscribers, users };
}
