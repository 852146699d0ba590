/**
 * Who a session, or a reader of the HTTP API and the pages, is: what channels see as
 * `ctx.userId` and `ctx.claims`, and what `access`/`authorize` decide on; and the hook that
 * tells it from a token ({@link Authenticate}). The core verifies nothing itself (Phoenix
 * leaves that to the user's `connect/3`): the server wiring injects the HS256 JWT verifier of
 * `lib/auth.ts`, an embedder may inject another.
 *
 * @example
 * ```ts
 * const anonymous: Identity = { userId: "anon-1f2e3d4c", anonymous: true };
 * const byName: Authenticate = (token) =>
 *   Promise.resolve(
 *     token.startsWith("user:")
 *       ? { ok: true, identity: { userId: token.slice(5) } }
 *       : { ok: false, reason: "malformed" },
 *   );
 * ```
 * @module
 */

/** What a verified token says about its holder (the claims of a connect token). */
export interface TokenClaims {
  /** The user id channels see as `ctx.userId`. */
  sub: string;
  /** Expiry, seconds since the epoch: the session ends then (plus the leeway). */
  exp: number;
  /** Not valid before, seconds since the epoch. */
  nbf?: number;
  /** Issued at, seconds since the epoch: tokens issued before a server disconnect are refused. */
  iat?: number;
  /** Topic patterns (`record:42`, `record:*`) the holder may join, when the channel checks. */
  scope?: string[];
}

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

/**
 * The outcome of {@link Authenticate}: who holds the token, or a short reason it was refused
 * (a metric label: `expired`, `bad_signature`…) and, optionally, the problem in words a client
 * is shown on every transport (`token malformed: exp missing …`; default `token refused:
 * <reason>`). The JWT verifier's reasons map to the refusal words of `protocol.ts`
 * (`RefusalReason`); any other reason is refused as `token_refused`.
 */
export type Authentication =
  | { ok: true; identity: Identity }
  | { ok: false; reason: string; problem?: string };

/**
 * Tells who holds a connect token; never throws. `now` is the node's clock in seconds since
 * the epoch (tests move it). Without this hook a node verifies nothing and trusts the
 * `user_id` param (dev).
 */
export type Authenticate = (token: string, context: { now: number }) => Promise<Authentication>;
