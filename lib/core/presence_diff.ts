/**
 * Presence diffs as values: the empty state, the diff between two states, and two diffs merged.
 * Shared by the tracker (presence.ts) and crowds (crowd.ts).
 *
 * @example
 * ```ts
 * const diff = differenceOf({}, { ann: { metas: [{ phx_ref: "1" }] } }); // ann joined
 * mergeDiff(diff, { joins: emptyPresenceState(), leaves: { ann: { metas: [{ phx_ref: "1" }] } } });
 * diff; // { joins: {}, leaves: {} }: she joined and left
 * ```
 * @module
 */
import type { PresenceState } from "./broker.ts";

/** `presence_diff`'s payload: metas that joined and metas that left, by key. */
export interface PresenceDiff {
  joins: PresenceState;
  leaves: PresenceState;
}

/**
 * A state keyed by presence keys, which are user strings (`constructor`, `__proto__`…): an
 * object without a prototype, so no key reads an inherited member or sets the prototype.
 * JSON sees an ordinary object.
 */
export function emptyPresenceState(): PresenceState {
  return Object.create(null);
}

/** True when the diff changes nothing. */
export function isEmptyDiff(diff: PresenceDiff): boolean {
  return Object.keys(diff.joins).length === 0 && Object.keys(diff.leaves).length === 0;
}

/**
 * Adds `diff` to `into`; a meta that left in one and joined in the other (same `phx_ref`)
 * cancels out: a client that got both would drop it.
 */
export function mergeDiff(into: PresenceDiff, diff: PresenceDiff): void {
  const add = (side: PresenceState, other: PresenceState, from: PresenceState) => {
    for (const [key, { metas }] of Object.entries(from)) {
      for (const meta of metas) {
        const opposite = other[key]?.metas;
        const at = opposite?.findIndex((m) => m.phx_ref === meta.phx_ref) ?? -1;
        if (at < 0) {
          (side[key] ??= { metas: [] }).metas.push(meta);
          continue;
        }
        opposite!.splice(at, 1);
        if (opposite!.length === 0) delete other[key];
      }
    }
  };
  add(into.leaves, into.joins, diff.leaves);
  add(into.joins, into.leaves, diff.joins);
}

/** The diff that turns `before` into `after`, comparing metas by `phx_ref`. */
export function differenceOf(before: PresenceState, after: PresenceState): PresenceDiff {
  const refs = (state: PresenceState) =>
    new Set(Object.values(state).flatMap(({ metas }) => metas.map((m) => m.phx_ref)));
  const [had, has] = [refs(before), refs(after)];
  const pick = (state: PresenceState, keep: (ref: string) => boolean) => {
    const out = emptyPresenceState();
    for (const [key, { metas }] of Object.entries(state)) {
      const kept = metas.filter((m) => keep(m.phx_ref));
      if (kept.length) out[key] = { metas: kept };
    }
    return out;
  };
  return { joins: pick(after, (r) => !had.has(r)), leaves: pick(before, (r) => !has.has(r)) };
}
