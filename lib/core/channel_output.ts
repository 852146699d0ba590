/**
 * What a channel sends, checked and shaped: a callback's result as a reply ({@link toReply}),
 * a payload with bytes as binary message fields ({@link messageBody}), and the rule for the
 * event names and payloads a channel may push or broadcast ({@link checkEventName}).
 *
 * @example
 * ```ts
 * checkEventName("push", "status", [{ state: "ok" }], 32); // fine
 * messageBody(new Uint8Array([1]), { kind: "png" }); // { payload: { kind: "png" }, binary: … }
 * ```
 * @module
 */
import { type HandlerResult, Reply } from "./channel.ts";
import { assertPayload } from "./limits.ts";
import type { Payload } from "./message.ts";
import { eventNameProblem } from "./protocol.ts";

/** Turns what a callback returned into a reply (nothing: no reply). */
export function toReply(result: HandlerResult): Reply | undefined {
  if (result === undefined || result === null) return undefined;
  if (result instanceof Reply) return result;
  return new Reply("ok", result);
}

/** A payload as message fields: bytes become a binary message with `meta` as its JSON part. */
export function messageBody(
  payload: Payload | Uint8Array,
  meta: Payload = {},
): { payload: Payload; binary?: Uint8Array } {
  if (!(payload instanceof Uint8Array)) return { payload };
  return { payload: meta, binary: payload };
}

/**
 * Channels may not send the protocol's reserved events (a forged `reset` or `presence_diff`)
 * or names that break a transport's framing (CR/LF in an SSE `event:` line): a bug, the crash
 * handling takes over. A payload past MAX_PAYLOAD_DEPTH is refused (`LimitError`).
 */
export function checkEventName(
  method: string,
  event: string,
  payloads: unknown[],
  maxDepth: number,
): void {
  const problem = eventNameProblem(event);
  if (problem !== undefined) {
    throw new TypeError(`ctx.${method}: event ${JSON.stringify(event)} ${problem}`);
  }
  assertPayload(payloads, maxDepth);
}
