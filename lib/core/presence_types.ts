/**
 * The shapes of Phoenix presence, shared by the tracker and the brokers.
 * @module
 */
import type { Payload } from "./message.ts";

/** One presence entry: the user's meta plus its `phx_ref` (and `phx_ref_prev` after an update). */
export type PresenceMeta = Payload & { phx_ref: string; phx_ref_prev?: string };

/** `{key: {metas: [...]}}`, the shape of `presence_state` and of both halves of a diff. */
export type PresenceState = Record<string, { metas: PresenceMeta[] }>;
