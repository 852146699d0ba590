/**
 * Users the backend disconnected (`POST /api/disconnect`): their tokens issued at or before the
 * disconnect are refused from then on, so a client that reconnects by itself does not come
 * back on the old token. A token without `iat` cannot be told from a fresh one: it is refused
 * while the revocation is kept ({@link REVOCATION_KEPT_MS}). Bounded: the oldest revocations
 * are dropped past {@link MAX_REVOCATIONS}.
 *
 * @example
 * ```ts
 * const revoked = new Revocations();
 * revoked.revoke("ann", Date.now());
 * revoked.refuses({ sub: "ann", iat: Math.floor(Date.now() / 1000) - 60 }, Date.now()); // true
 * ```
 * @module
 */

/** How long a revocation is kept: longer than the tokens a backend should mint. */
export const REVOCATION_KEPT_MS = 24 * 3_600_000;

/** Users remembered at most; the oldest revocation goes first. */
export const MAX_REVOCATIONS = 10_000;

/** The claims a revocation looks at. */
export interface RevocableClaims {
  sub: string;
  /** Issued at, seconds since the epoch. */
  iat?: number;
}

/** The node's revoked users: user id → when they were disconnected (ms). */
export class Revocations {
  readonly #at = new Map<string, number>();

  /** Refuses `userId`'s tokens issued up to `atMs` (a second revoke moves the time on). */
  revoke(userId: string, atMs: number): void {
    this.#at.delete(userId);
    this.#at.set(userId, atMs);
    if (this.#at.size > MAX_REVOCATIONS) this.#at.delete(this.#at.keys().next().value!);
  }

  /** True when a token with these claims was issued before its user was disconnected. */
  refuses(claims: RevocableClaims, nowMs: number): boolean {
    const at = this.#at.get(claims.sub);
    if (at === undefined) return false;
    if (nowMs - at > REVOCATION_KEPT_MS) {
      this.#at.delete(claims.sub);
      return false;
    }
    // Seconds: a token issued in the second of the disconnect is refused too.
    return claims.iat === undefined || claims.iat * 1000 <= at;
  }

  /** Revocations kept (for metrics and tests). */
  get size(): number {
    return this.#at.size;
  }
}
