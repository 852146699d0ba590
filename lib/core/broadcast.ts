/**
 * One fan-out message, encoded lazily and at most once per wire format, however many
 * subscribers receive it.
 *
 * @example
 * ```ts
 * const b = new Broadcast("status:acme", "status", { state: "operational" });
 * b.v2; // '[null,null,"status:acme","status",{"state":"operational"}]'
 * ```
 * @module
 */
import type { Payload } from "./message.ts";

const _encoder = new TextEncoder();

/** Where a broadcast came from: the node, and (for broadcast-from) the instance to skip. */
export interface Origin {
  nodeId: string;
  /** The channel instance that must not receive its own broadcast (broadcast-from). */
  exceptId?: string;
}

/** A message to every subscriber of a topic, with memoized encodings. */
export class Broadcast {
  #v2?: string;
  #v1?: string;
  #sseBody?: Uint8Array;

  constructor(
    readonly topic: string,
    readonly event: string,
    readonly payload: Payload,
    readonly origin: Origin = { nodeId: "" },
    /** The origin stream (`node~run`) that numbered it; empty for presence events. */
    readonly stream = "",
    /** Sequence within the stream for this topic: 1, 2, 3… without gaps; 0 for presence. */
    readonly seq = 0,
    /** Milliseconds since the epoch when it was published. */
    readonly at = Date.now(),
  ) {}

  /** The Phoenix v2 frame `[null, null, topic, event, payload]`. */
  get v2(): string {
    return this.#v2 ??= JSON.stringify([null, null, this.topic, this.event, this.payload]);
  }

  /** The Phoenix v1 object frame. */
  get v1(): string {
    return this.#v1 ??= JSON.stringify({
      topic: this.topic,
      event: this.event,
      payload: this.payload,
      ref: null,
    });
  }

  /**
   * Drops the cached encodings once every local subscriber has been served: the message may
   * live on in the topic's history, where only a replay (rare) needs them again.
   */
  releaseEncodings(): void {
    this.#v2 = this.#v1 = this.#sseBody = undefined;
  }

  /** The SSE `event:` and `data:` lines (without `id:`), as bytes, ending the event. */
  get sseBody(): Uint8Array {
    return this.#sseBody ??= _encoder.encode(sseLines(this.topic, this.event, this.payload));
  }
}

/** The `event:`/`data:` lines of one SSE event and its closing blank line. */
export function sseLines(topic: string, event: string, payload: Payload): string {
  return sseLinesJson(topic, event, JSON.stringify(payload));
}

/** {@link sseLines} for a payload already encoded as JSON. */
export function sseLinesJson(topic: string, event: string, payloadJson: string): string {
  // JSON.stringify never emits raw newlines, so one data line always suffices.
  return `event: ${event}\ndata: {"topic":${JSON.stringify(topic)},"payload":${payloadJson}}\n\n`;
}
