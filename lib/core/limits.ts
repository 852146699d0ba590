/**
 * Bounds on what clients hand the node: how deep and how large a payload or presence meta
 * may be before it reaches `JSON.stringify`, `structuredClone` or the bus (both recurse, and
 * one hostile value nested 30,000 deep would overflow the stack there, far from any handler).
 * Measured iteratively, so measuring itself cannot overflow.
 *
 * @example
 * ```ts
 * payloadProblem({ a: [[[1]]] }, { maxDepth: 3 }); // "nests deeper than 3 levels (MAX_PAYLOAD_DEPTH)"
 * payloadProblem({ name: "Ann" }, { maxDepth: 32, maxBytes: 1024 }); // undefined
 * ```
 * @module
 */

import type { Metrics } from "../metrics.ts";
import { ReplyReason } from "./protocol.ts";

/** The size of a value as JSON, measured without making it. */
export interface JsonMeasure {
  /** Nesting of arrays and objects (a flat object is 1, a scalar 0). */
  depth: number;
  /** About the length of its JSON (exact for ASCII without escapes). */
  bytes: number;
}

/** Limits of {@link payloadProblem}. */
export interface PayloadLimits {
  /** Deepest nesting of arrays and objects (`MAX_PAYLOAD_DEPTH`). */
  maxDepth: number;
  /** Largest JSON size, in bytes (about). */
  maxBytes?: number;
  /** The setting that sets `maxBytes`, named in the refusal. */
  bytesSetting?: string;
}

/**
 * Measures `value` iteratively; stops early (with what it counted so far) once it passes
 * `stopAt`, so a huge hostile value costs no more than the limit to refuse.
 */
export function measureJson(
  value: unknown,
  stopAt: { depth?: number; bytes?: number } = {},
): JsonMeasure {
  const maxDepth = stopAt.depth ?? Infinity;
  const maxBytes = stopAt.bytes ?? Infinity;
  let depth = 0;
  let bytes = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [item, level] = stack.pop()!;
    if (typeof item === "string") bytes += item.length + 2;
    else if (typeof item !== "object" || item === null) bytes += 5;
    else if (item instanceof Uint8Array) bytes += item.byteLength;
    else {
      if (level > depth) depth = level;
      bytes += 2;
      if (Array.isArray(item)) {
        for (const child of item) stack.push([child, level + 1]), bytes += 1;
      } else {
        for (const key in item) {
          stack.push([(item as Record<string, unknown>)[key], level + 1]);
          bytes += key.length + 4;
        }
      }
    }
    if (depth > maxDepth || bytes > maxBytes) break;
  }
  return { depth, bytes };
}

/** About the JSON length of `value` (see {@link measureJson}). */
export function approximateJsonBytes(value: unknown): number {
  return measureJson(value).bytes;
}

/** What is wrong with `value` under `limits`, or undefined when it is within them. */
export function payloadProblem(value: unknown, limits: PayloadLimits): string | undefined {
  const { depth, bytes } = measureJson(value, { depth: limits.maxDepth, bytes: limits.maxBytes });
  if (depth > limits.maxDepth) {
    return `nests deeper than ${limits.maxDepth} levels (MAX_PAYLOAD_DEPTH)`;
  }
  if (limits.maxBytes !== undefined && bytes > limits.maxBytes) {
    const setting = limits.bytesSetting ? ` (${limits.bytesSetting})` : "";
    return `is larger than ${limits.maxBytes} bytes${setting}`;
  }
  return undefined;
}

/**
 * Throws {@link LimitError} (`invalid_payload`) when one of `payloads` nests deeper than
 * `maxDepth`: what channel code hands `ctx.push`/`broadcast` is checked like client input.
 */
export function assertPayload(payloads: unknown[], maxDepth: number): void {
  for (const payload of payloads) {
    const problem = payloadProblem(payload, { maxDepth });
    if (problem) throw new LimitError(ReplyReason.invalidPayload, `payload ${problem}`);
  }
}

/**
 * Runs `fn`; a {@link LimitError} it throws is counted in `switchboard_refused_total{reason}`
 * and goes no further (anything else is rethrown).
 */
export function whenRefused(fn: () => void, metrics: Pick<Metrics, "inc">): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof LimitError)) throw err;
    metrics.inc("switchboard_refused_total", { reason: err.reason });
  }
}

/**
 * A client's input refused by a bound: the push gets an error reply with `reason` and the
 * message as `detail`; nothing else happens. Counted in `switchboard_refused_total{reason}`.
 */
export class LimitError extends Error {
  constructor(readonly reason: string, message: string) {
    super(message);
    this.name = "LimitError";
  }
}
