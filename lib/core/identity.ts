/**
 * Who a session, or a reader of the HTTP API and the pages, is: what channels see as
 * `ctx.userId` and `ctx.claims`, and what `access`/`authorize` decide on. Its own module, so
 * channel definitions and the node's services can both name it without an import circle.
 *
 * @example
 * ```ts
 * const anonymous: Identity = { userId: "anon-1f2e3d4c", anonymous: true };
 * ```
 * @module
 */
import type { TokenClaims } from "../auth.ts";

/** Who a session (or a reader of the HTTP API and pages) is. */
export interface Identity {
  /**
   * The token's subject, or the `user_id` param when no `SOCKET_SECRET` is set, or a random
   * `anon-…` id for an anonymous visitor.
   */
  userId: string;
  /** The verified token's claims, when there is a secret. */
  claims?: TokenClaims;
  /**
   * True for a visitor without a token while `SOCKET_SECRET` is set: only channels that
   * declare `access: "public"` let it join or read.
   */
  anonymous?: boolean;
}
