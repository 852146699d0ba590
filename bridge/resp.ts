/**
 * Conversion of replies from the `redis` npm client (RESP2, bulk strings as `Buffer`)
 * into the JSON values the Upstash REST API returns, and classification of errors.
 *
 * @example
 * ```ts
 * toUpstash(Buffer.from("v"), { base64: true }); // "dg=="
 * toUpstash("OK", { base64: true }); // "OK" (status OK is never encoded at the top level)
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { ErrorReply } from "redis";

/** A JSON value as found in `{"result": ...}` of an Upstash response. */
export type UpstashValue = string | number | null | UpstashValue[];

/** Options of {@link toUpstash}. */
export interface ToUpstashOptions {
  /** Encode every string (recursively) as base64, as with `Upstash-Encoding: base64`. */
  base64: boolean;
}

const utf8 = new TextDecoder();

/**
 * Converts one reply to its Upstash JSON form: integers stay numbers, bulk and status strings
 * become strings (base64-encoded when asked), nil becomes `null`, arrays are converted
 * element by element.
 *
 * With base64, a top-level status `OK` stays `"OK"`: the client decodes every top-level string
 * except exactly `"OK"`. Nested strings are always encoded (the client decodes every string
 * inside arrays, and `"OK"` would otherwise decode to garbage).
 */
export function toUpstash(reply: unknown, options: ToUpstashOptions): UpstashValue {
  return convert(reply, options.base64, true);
}

function convert(reply: unknown, base64: boolean, topLevel: boolean): UpstashValue {
  if (reply === null || reply === undefined) return null;
  if (typeof reply === "number") return Number.isFinite(reply) ? reply : String(reply);
  if (typeof reply === "bigint") {
    return Number.isSafeInteger(Number(reply)) ? Number(reply) : reply.toString();
  }
  if (typeof reply === "boolean") return reply ? 1 : 0;
  if (reply instanceof Uint8Array) {
    return base64 ? Buffer.from(reply).toString("base64") : utf8.decode(reply);
  }
  if (typeof reply === "string") {
    if (!base64 || (topLevel && reply === "OK")) return reply;
    return Buffer.from(reply, "utf8").toString("base64");
  }
  if (reply instanceof Error) return convert(reply.message, base64, false);
  if (Array.isArray(reply)) return reply.map((item) => convert(item, base64, false));
  if (reply instanceof Map) {
    // RESP3 maps (not used with RESP2, kept for robustness): flatten like RESP2 does.
    return [...reply].flatMap(([k, v]) => [convert(k, base64, false), convert(v, base64, false)]);
  }
  if (reply instanceof Set) return [...reply].map((item) => convert(item, base64, false));
  if (typeof reply === "object") {
    return Object.entries(reply).flatMap(([k, v]) => [
      convert(k, base64, false),
      convert(v, base64, false),
    ]);
  }
  return String(reply);
}

/** True if `error` is an error reply sent by Redis itself (e.g. `ERR wrong number of ...`). */
export function isRedisReplyError(error: unknown): error is Error {
  return error instanceof ErrorReply;
}

/** Raised when Redis did not answer in time. */
export class BridgeTimeoutError extends Error {
  /** Creates the error; `ms` is the timeout that expired. */
  constructor(ms: number) {
    super(`Redis did not answer within ${ms} ms`);
    this.name = "BridgeTimeoutError";
  }
}

/** An error answer of the bridge: HTTP status plus the `error` string of the JSON body. */
export interface ErrorAnswer {
  /** HTTP status: 400, 503 or 504. */
  status: number;
  /** The `error` string of the JSON body, e.g. `ERR wrong number of arguments ...`. */
  error: string;
}

/**
 * Maps any error from executing commands to an HTTP status and message:
 * Redis error replies → 400 with Redis' own message; timeouts → 504; anything else
 * (connection refused, offline, socket closed) → 503.
 */
export function errorAnswer(error: unknown): ErrorAnswer {
  if (isRedisReplyError(error)) return { status: 400, error: error.message };
  if (error instanceof BridgeTimeoutError) {
    return { status: 504, error: `ERR upstash-bridge: ${error.message}` };
  }
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { status: 503, error: `ERR upstash-bridge: Redis unavailable (${detail})` };
}
