/**
 * One fan-out message, encoded lazily and at most once per wire format, however many
 * subscribers receive it. The formats themselves live with their transports (serializers, SSE
 * framing); a broadcast only remembers their output.
 *
 * @example
 * ```ts
 * const b = new Broadcast({ topic: "status:acme", event: "status", payload: { state: "operational" } });
 * v2Serializer.encodeBroadcast(b); // '[null,null,"status:acme","status",{"state":"operational"}]'
 * ```
 * @module
 */
import type { Payload } from "./message.ts";

/** Where a broadcast came from: the node, and (for broadcast-from) the instance to skip. */
export interface Origin {
  nodeId: string;
  /** The channel instance that must not receive its own broadcast (broadcast-from). */
  exceptId?: string;
}

/** The fields of a {@link Broadcast}. */
export interface BroadcastInit {
  topic: string;
  event: string;
  payload: Payload;
  /** Raw bytes: a binary broadcast (`payload` is then the JSON metadata beside them). */
  binary?: Uint8Array;
  /** Defaults to an unnamed node (local-only deliveries). */
  origin?: Origin;
  /** The origin stream (`node~run`) that numbered it; empty for presence events. */
  stream?: string;
  /** Sequence within the stream for this topic: 1, 2, 3… without gaps; 0 for presence. */
  seq?: number;
  /** Milliseconds since the epoch when it was published (default: now). */
  at?: number;
}

/** A broadcast's Fossil delta against its topic's previous message (made by `delta.ts`). */
export interface BroadcastDelta {
  /** The message the delta applies to. */
  readonly base: { readonly message: Broadcast };
  /** The delta as a JSON string literal, or null when the full payload is to be sent. */
  readonly deltaJson: string | null;
}

const _NO_ORIGIN: Origin = Object.freeze({ nodeId: "" });

/** A message to every subscriber of a topic, with memoized encodings. */
export class Broadcast {
  readonly topic: string;
  readonly event: string;
  readonly payload: Payload;
  readonly binary?: Uint8Array;
  readonly origin: Origin;
  readonly stream: string;
  readonly seq: number;
  readonly at: number;
  /**
   * Its link to the topic's previous message, for subscribers that take deltas (set by the hub
   * before delivery, dropped after it: see `delta.ts`).
   */
  delta?: BroadcastDelta;
  /** Format name → encoding; a broadcast rarely meets more than two formats. */
  #encodings?: Map<string, string | Uint8Array>;

  constructor(init: BroadcastInit) {
    this.topic = init.topic;
    this.event = init.event;
    this.payload = init.payload;
    this.binary = init.binary;
    this.origin = init.origin ?? _NO_ORIGIN;
    this.stream = init.stream ?? "";
    this.seq = init.seq ?? 0;
    this.at = init.at ?? Date.now();
  }

  /** The encoding in `format`, made by `encode` the first time it is asked for. */
  encoded<T extends string | Uint8Array>(format: string, encode: (b: Broadcast) => T): T {
    const encodings = this.#encodings ??= new Map();
    let value = encodings.get(format) as T | undefined;
    if (value === undefined) encodings.set(format, value = encode(this));
    return value;
  }

  /**
   * Drops the cached encodings once every local subscriber has been served: the message may
   * live on in the topic's history, where only a replay (rare) needs them again.
   */
  releaseEncodings(): void {
    this.#encodings = undefined;
    // Deltas are for live delivery only (a replay sends full payloads), and the link holds the
    // previous message's text, which a message kept in history must not keep alive.
    this.delta = undefined;
  }
}
