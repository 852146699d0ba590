/**
 * The one question every join and every read asks: may this identity use this topic? Joins
 * (WebSocket, long-poll, SSE), the polling and presence API, and the server-rendered pages
 * all call {@link decideAccess}, so a channel's rules hold whatever the path.
 *
 * A channel decides with two options: `access: "public"` lets anonymous visitors in (no token,
 * even when `SOCKET_SECRET` is set), and `authorize(identity, topic)` refuses identities it
 * does not want (a token's `scope`, say). Without `access: "public"`, a channel needs a token
 * whenever the node has a secret.
 *
 * @example
 * ```ts
 * const decision = decideAccess({ channel, identity, topic: "record:42" });
 * if (!decision.ok) return c.json({ error: decision.error }, decision.status);
 * ```
 * @module
 */
import type { ChannelDefinition } from "./channel.ts";
import type { Identity } from "./identity.ts";
import { ReplyReason } from "./protocol.ts";

/** The outcome of {@link decideAccess}: refusals carry the HTTP status and a clear error. */
export type AccessDecision =
  | { ok: true }
  | {
    ok: false;
    status: 401 | 403;
    reason: typeof ReplyReason.unauthorized | typeof ReplyReason.unmatchedTopic;
    error: string;
  };

/** What {@link decideAccess} looks at. */
export interface AccessRequest {
  // deno-lint-ignore no-explicit-any
  channel: ChannelDefinition<any>;
  identity: Identity;
  topic: string;
}

/** Decides whether `identity` may join or read `topic` of `channel`. */
export function decideAccess({ channel, identity, topic }: AccessRequest): AccessDecision {
  if (identity.anonymous && channel.access !== "public") {
    return {
      ok: false,
      status: 401,
      reason: ReplyReason.unauthorized,
      error: `"${topic}" needs a token: connect with a signed token (the token param)`,
    };
  }
  if (channel.authorize && !channel.authorize(identity, topic)) {
    return {
      ok: false,
      status: 403,
      reason: ReplyReason.unauthorized,
      error: `this token may not use "${topic}"`,
    };
  }
  return { ok: true };
}
