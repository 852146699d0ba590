/**
 * A channel's `messages` schemas enforced on the way out: a broadcast, push or publish whose
 * JSON payload fails the schema of its event is refused before anything is delivered (the
 * Switchboard client would otherwise drop it silently). Events without a schema, and binary
 * payloads, pass.
 *
 * @example
 * ```ts
 * const problems = outboundProblems(channel, "status", { state: 42 });
 * // [{ field: "payload.state", message: "Invalid input: expected string, received number" }]
 * ```
 * @module
 */
import type { ChannelDefinition } from "./channel.ts";
import type { Payload } from "./message.ts";
import { type FieldError, fieldErrors } from "./validation.ts";

/** Thrown by a publish whose payload fails the channel's `messages` schema for its event. */
export class InvalidPayloadError extends TypeError {
  /** The failing fields, each `payload.<path>`. */
  readonly errors: FieldError[];

  constructor(topic: string, event: string, errors: FieldError[]) {
    const list = errors.map((e) => `${e.field}: ${e.message}`).join("; ");
    super(
      `payload of "${event}" on ${topic} does not match the channel's messages.${event} ` +
        `schema (nothing was sent): ${list}`,
    );
    this.name = "InvalidPayloadError";
    this.errors = errors;
  }
}

/**
 * Why `payload` may not go out as `event` on a topic of `channel`: the failing fields
 * (`payload.<path>`), or undefined when it may (no schema for the event, or it passes).
 */
export function outboundProblems(
  channel: Pick<ChannelDefinition<unknown>, "messages">,
  event: string,
  payload: Payload,
): FieldError[] | undefined {
  const schema = channel.messages?.[event];
  if (schema === undefined || !Object.hasOwn(channel.messages!, event)) return undefined;
  const parsed = schema.safeParse(payload);
  if (parsed.success) return undefined;
  return fieldErrors(parsed.error).map((e) => ({
    field: e.field === "" ? "payload" : `payload.${e.field}`.replace(".[", "["),
    message: e.message,
  }));
}

/** Throws {@link InvalidPayloadError} when {@link outboundProblems} finds any. */
export function checkOutbound(
  channel: Pick<ChannelDefinition<unknown>, "messages">,
  topic: string,
  event: string,
  payload: Payload,
): void {
  const problems = outboundProblems(channel, event, payload);
  if (problems) throw new InvalidPayloadError(topic, event, problems);
}
