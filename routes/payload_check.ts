/**
 * The API's answer to a publish whose payload fails its channel's `messages` schema: 422
 * `{error, reason: "invalid_payload", errors: [{field, message}]}`, for the whole body (a batch
 * with one bad message publishes none of it).
 *
 * @example
 * ```ts
 * const refused = refuseInvalidPayloads(c, switchboard, messages, (i) => `[${i}].`);
 * if (refused) return refused;
 * ```
 * @module
 */
import type { Context } from "hono";
import type { Payload } from "../lib/core/message.ts";
import { ReplyReason } from "../lib/core/protocol.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import type { FieldError } from "../lib/core/validation.ts";

/**
 * A 422 naming every failing field of `messages` (each prefixed by `fieldOf(index)`, e.g.
 * `[1].` in a batch), or undefined when every payload may be published.
 */
export function refuseInvalidPayloads(
  c: Context,
  switchboard: Switchboard,
  messages: readonly { topic: string; event: string; payload: Payload }[],
  fieldOf: (index: number) => string,
): Response | undefined {
  const errors: FieldError[] = [];
  for (const [i, m] of messages.entries()) {
    const problems = switchboard.payloadProblems(m.topic, m.event, m.payload);
    for (const p of problems ?? []) {
      errors.push({ field: fieldOf(i) + p.field, message: p.message });
    }
  }
  if (errors.length === 0) return undefined;
  const list = errors.map((e) => `${e.field}: ${e.message}`).join("; ");
  return c.json({
    error: `invalid payload: ${list} (the channel's messages schema; nothing was published)`,
    reason: ReplyReason.invalidPayload,
    errors,
  }, 422);
}
