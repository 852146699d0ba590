/**
 * The bus envelope: what one node publishes to the others, and how a tick's messages are packed
 * into envelopes that stay well under the bus' line limit (`@upstash/redis`'s subscription
 * reader gives up on any line over 1 MB, which ends the subscription for everything else).
 *
 * @example
 * ```ts
 * const groups = packByBytes(["{…}", "{…}"], 128 * 1024);
 * const json = envelopeJson({ v: 1, n: "a", e: "k3f", s: 1, t: Date.now() }, { m: groups[0] });
 * ```
 * @module
 */
import type { BrokerMessage, PresenceState } from "../core/broker.ts";

/** A request to a node run: re-send what you published from index `from` on. */
export interface CatchUpRequest {
  /** The node asked. */
  n: string;
  /** Its run (an answer from another run would not be what was missed). */
  e: string;
  /** The first index the asking node lacks. */
  from: number;
}

/** What one node publishes on the bus. */
export interface BusEnvelope {
  v: 1;
  /** Node id. */
  n: string;
  /** The node's run id (`runId`): changes when the node restarts. */
  e: string;
  /** Envelope sequence number, increasing per run. */
  s: number;
  /** Sent at (ms since the epoch, the sender's clock). */
  t: number;
  /** Broadcasts, in publish order; the first has index `i` in the sender's run. */
  m?: BrokerMessage[];
  /** Index of `m[0]` among every message the run published (1, 2, 3…, gapless). */
  i?: number;
  /** The highest index the run has published so far: a receiver below it missed something. */
  h?: number;
  /** The node's full presence state of each topic that changed (empty: none). */
  p?: Record<string, PresenceState>;
  /** `p` is the node's whole state, resent after an outage: receivers announce the change. */
  a?: boolean;
  /** The node is leaving (graceful shutdown). */
  bye?: boolean;
  /** Catch-up requests to other nodes. */
  q?: CatchUpRequest[];
  /** A re-send in answer to `q`: `i` past the index asked for means the rest is lost. */
  r?: boolean;
  /** The sender (re)joined and has no snapshots to read: send it your whole presence. */
  y?: boolean;
}

/** The fields of an envelope other than its messages and presence. */
export type EnvelopeHeader = Omit<BusEnvelope, "m" | "p">;

/**
 * Writes an envelope from already encoded parts (each message and presence entry is encoded
 * once, when it is queued, and measured then).
 */
export function envelopeJson(
  header: EnvelopeHeader,
  parts: { m?: readonly string[]; p?: readonly string[] } = {},
): string {
  let json = JSON.stringify(header).slice(0, -1);
  if (parts.p?.length) json += `,"p":{${parts.p.join(",")}}`;
  if (parts.m?.length) json += `,"m":[${parts.m.join(",")}]`;
  return json + "}";
}

/** Splits encoded parts into consecutive groups of at most `limit` characters (one if larger). */
export function packByBytes(parts: readonly string[], limit: number): string[][] {
  const groups: string[][] = [];
  let group: string[] = [];
  let size = 0;
  for (const part of parts) {
    if (group.length > 0 && size + part.length + 1 > limit) {
      groups.push(group);
      group = [];
      size = 0;
    }
    group.push(part);
    size += part.length + 1;
  }
  if (group.length) groups.push(group);
  return groups;
}

/** Parses an envelope from the bus; anything else (another tool's message) is ignored. */
export function parseEnvelope(raw: string): BusEnvelope | undefined {
  try {
    const value = JSON.parse(raw);
    if (value?.v !== 1 || typeof value.n !== "string" || typeof value.s !== "number") return;
    return value as BusEnvelope;
  } catch {
    return undefined;
  }
}

const _encoder = new TextEncoder();

/**
 * The UTF-8 length of `text` when it is over `limit` bytes, else undefined (without encoding
 * it when it is clearly short enough: the common case).
 */
export function bytesOver(text: string, limit: number): number | undefined {
  if (text.length * 3 <= limit) return undefined;
  const bytes = _encoder.encode(text).byteLength;
  return bytes > limit ? bytes : undefined;
}
