/**
 * Applies the server's Fossil deltas (docs/deltas.md): per topic it keeps the last payload's
 * JSON text and event, and turns a delta back into the payload with npm `fossil-delta`. The
 * feed (SSE) and the engine (channels) each hold one; neither passes a delta on to the tabs.
 *
 * The text of a full payload is `JSON.stringify` of the parsed payload: for JSON that
 * `JSON.stringify` wrote (the server's), parsing and writing again gives the same text, by the
 * ECMAScript spec (key order, number and string formatting), in every engine.
 *
 * @example
 * ```ts
 * const deltas = new DeltaDecoder();
 * deltas.full("status:acme", "status", { state: "operational" });
 * const next = deltas.apply("status:acme", "status", delta); // undefined: ask for a full one
 * ```
 * @module
 */
import { applyStringDelta } from "fossil-delta";
import { DELTA_EVENT, DELTA_FORMAT } from "../core/protocol.ts";

export { DELTA_EVENT, DELTA_FORMAT };

type Payload = Record<string, unknown>;

/**
 * Events that are not part of a topic's chain: presence and occupancy counts (the server leaves
 * them out) and the join reply (SSE `joined`). `reset` starts the chain over.
 */
const _OUTSIDE = /^(phx_|presence_state$|presence_diff$|occupancy$|joined$)/;

/** Per topic, the payload the next delta applies to. */
export class DeltaDecoder {
  readonly #bases = new Map<string, { event: string; json: string }>();
  /** Deltas applied so far (the status page shows it; tests read it). */
  applied = 0;

  /** A full message arrived on `topic`: it is the base of the next delta. */
  full(topic: string, event: string, payload: Payload): void {
    if (event === "reset") this.#bases.delete(topic);
    else if (!_OUTSIDE.test(event)) {
      this.#bases.set(topic, { event, json: JSON.stringify(payload) });
    }
  }

  /**
   * The payload a delta stands for, or undefined when it cannot be rebuilt (no base, another
   * event's base, a checksum mismatch): the caller then asks the server for a full one.
   */
  apply(topic: string, event: string, delta: string): Payload | undefined {
    const base = this.#bases.get(topic);
    this.#bases.delete(topic);
    if (!base || base.event !== event) return undefined;
    let json: string;
    let payload: unknown;
    try {
      json = applyStringDelta(base.json, delta);
      payload = JSON.parse(json);
    } catch {
      return undefined;
    }
    if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return undefined;
    this.#bases.set(topic, { event, json });
    this.applied++;
    return payload as Payload;
  }

  /** A `phx_delta` frame's payload `{event, delta}` rebuilt, or undefined (see {@link apply}). */
  applyFrame(topic: string, frame: Payload): { event: string; payload: Payload } | undefined {
    const { event, delta } = frame;
    if (typeof event !== "string" || typeof delta !== "string") return undefined;
    const payload = this.apply(topic, event, delta);
    return payload && { event, payload };
  }

  /** Forgets a topic (left, or its stream starts over). */
  forget(topic: string): void {
    this.#bases.delete(topic);
  }
}
