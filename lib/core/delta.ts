/**
 * Fossil delta compression of broadcasts, for subscribers that ask for it (`delta: "fossil"` in
 * the join payload, `?delta=fossil` on SSE). A topic's numbered messages form a chain: each
 * message's delta is `createStringDelta(previousJson, json)` of npm `fossil-delta`, where both
 * are the exact JSON texts of the payloads (`JSON.stringify`, as every transport writes them).
 *
 * The work is done once per publish, not per subscriber: the hub links each new message to the
 * topic's previous one ({@link chainDelta}; the topic keeps that one's text only), and the delta
 * is made the first time a subscriber asks for it. Each subscriber remembers which message it
 * received last ({@link DeltaReceiver}); only when that is exactly the new message's base does
 * it get the shared delta. Anything else (its first message, after a resume, a reset, a gap, a
 * push, an intercepted or binary message, a delta no smaller than the payload) sends the full
 * payload. docs/deltas.md describes the frames.
 *
 * @example
 * ```ts
 * const receiver = new DeltaReceiver();
 * const delta = receiver.take(broadcast); // undefined: send the full payload
 * if (delta === undefined) connection.sendBroadcast(broadcast);
 * else connection.sendDelta?.(broadcast, delta);
 * ```
 * @module
 */
import { createStringDelta } from "fossil-delta";
import type { Broadcast, BroadcastDelta } from "./broadcast.ts";
import type { Payload } from "./message.ts";
import { ControlEvent, DELTA_EVENT, DELTA_FORMAT, PhxEvent } from "./protocol.ts";
import type { Serializer } from "./serializer.ts";

export { DELTA_EVENT, DELTA_FORMAT };

/** One numbered message's payload text, made once and only when a delta needs it. */
export class PayloadText {
  #json?: string;
  constructor(readonly message: Broadcast) {}

  /** The payload's JSON, as every transport writes it. */
  get json(): string {
    return this.#json ??= JSON.stringify(this.message.payload);
  }
}

/** Unnumbered events the client keeps out of a topic's chain (docs/deltas.md). */
const _OUTSIDE_CHAIN = new Set<string>([PhxEvent.presenceDiff, ControlEvent.occupancy]);

/** A message and the one before it on its topic: the delta between them, made at most once. */
export class DeltaLink implements BroadcastDelta {
  /** undefined: not made yet; null: the full payload is to be sent. */
  #json?: string | null;

  constructor(readonly base: PayloadText, readonly target: PayloadText) {}

  /**
   * The delta as a JSON string literal (what the frames embed), or null when it would not be
   * smaller than the payload's JSON, or cannot travel as text (see {@link fossilDeltaJson}).
   */
  get deltaJson(): string | null {
    if (this.#json === undefined) {
      this.#json = fossilDeltaJson(this.base.json, this.target.json);
    }
    return this.#json;
  }
}

/**
 * `createStringDelta(base, target)` as a JSON string literal, or null when it is not shorter
 * than `target` or holds U+FFFD: the library decodes the delta's bytes as UTF-8, and a literal
 * run that cuts a multi-byte character in two would come out replaced, so it could not be
 * applied (a target that holds U+FFFD itself is sent in full too, to be safe).
 */
export function fossilDeltaJson(base: string, target: string): string | null {
  const delta = createStringDelta(base, target);
  if (delta.includes("\uFFFD")) return null;
  const json = JSON.stringify(delta);
  return json.length < target.length ? json : null;
}

/**
 * The hub's hook, called for every message of a topic in delivery order: links `b` to the
 * topic's previous numbered message when both are JSON messages of the same event, and returns
 * what the topic keeps for the next one. Presence (unnumbered) messages pass the chain by.
 */
export function chainDelta(
  previous: PayloadText | undefined,
  b: Broadcast,
): PayloadText | undefined {
  if (b.seq === 0) return previous;
  if (b.binary !== undefined) return undefined;
  const text = new PayloadText(b);
  if (previous && previous.message.event === b.event) b.delta = new DeltaLink(previous, text);
  return text;
}

/** Which message one subscriber received last on its topic, to know whether a delta fits. */
export class DeltaReceiver {
  #stream = "";
  #seq = 0;

  /**
   * The delta (JSON string literal) to send instead of `b`'s payload, or undefined for the full
   * payload; either way `b` becomes what the subscriber received last. Call it only for a
   * message that is sent as it is.
   */
  take(b: Broadcast): string | undefined {
    if (b.seq === 0) {
      // The client leaves presence and occupancy out of the chain; anything else unnumbered
      // breaks it.
      if (!_OUTSIDE_CHAIN.has(b.event)) this.forget();
      return undefined;
    }
    const base = b.delta?.base.message;
    const fits = base !== undefined && base.stream === this.#stream && base.seq === this.#seq;
    if (b.binary !== undefined) this.forget();
    else {
      this.#stream = b.stream;
      this.#seq = b.seq;
    }
    return fits ? b.delta!.deltaJson ?? undefined : undefined;
  }

  /** The client received something else on the topic (a push, a reset): the next is full. */
  forget(): void {
    this.#stream = "";
    this.#seq = 0;
  }
}

/** What {@link takeDeltaParam} found in a join payload. */
export type DeltaParam =
  | { ok: true; wants: boolean; payload: Payload }
  | { ok: false; detail: string };

/**
 * Reads and removes the `delta` key of a join payload (the channel never sees it): absent, or
 * `"fossil"`; anything else is refused with a detail that says what to send.
 */
export function takeDeltaParam(payload: Payload): DeltaParam {
  if (!Object.hasOwn(payload, "delta")) return { ok: true, wants: false, payload };
  const { delta, ...rest } = payload;
  if (delta !== DELTA_FORMAT) {
    return {
      ok: false,
      detail: `delta must be "${DELTA_FORMAT}" (or left out for full payloads), not ${
        JSON.stringify(delta)?.slice(0, 40)
      }`,
    };
  }
  return { ok: true, wants: true, payload: rest };
}

/**
 * The WebSocket/long-poll frame of a delta in `serializer`'s format, encoded once per
 * broadcast: `[null, null, topic, "phx_delta", {"event": E, "delta": D}]` in v2.
 */
export function deltaFrame(serializer: Serializer, b: Broadcast, deltaJson: string): string {
  return b.encoded(`${serializer.vsn}-delta`, () =>
    serializer.encode({
      joinRef: null,
      ref: null,
      topic: b.topic,
      event: DELTA_EVENT,
      payload: {},
      payloadJson: `{"event":${JSON.stringify(b.event)},"delta":${deltaJson}}`,
    }));
}
