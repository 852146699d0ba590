/**
 * Connect tokens are standard JWTs: HS256 signed with `SOCKET_SECRET`, claims `sub` (the user),
 * `exp` (required: a session ends when its token expires), optional `nbf`, and an optional
 * `scope` (topic patterns, as an array or a space-separated string). Any JWT library mints
 * them (`jose`, `jsonwebtoken`, PyJWT…). Signing and signature checks are Hono's JWT helper
 * (`hono/jwt`, Web Crypto); this module pins the algorithm, checks the time claims against the
 * node's clock with a small leeway, and says why a token was refused.
 *
 * The earlier `<payload>.<signature>` format is no longer accepted: a backend had to copy our
 * signing code to mint it, and tokens live an hour by default, so a deploy invalidates at most
 * that much. Mint tokens with `deno task token` or any JWT library.
 *
 * @example
 * ```ts
 * const token = await signToken("a-long-random-secret", { sub: "ann", exp: nowSeconds() + 3600 });
 * const result = await verifyToken("a-long-random-secret", token);
 * if (result.ok) result.claims.sub; // "ann"
 * ```
 * @module
 */
import { sign, verify } from "hono/jwt";
import { fromUnpaddedBase64 } from "./core/base64.ts";
import type { Authenticate, TokenClaims } from "./core/identity.ts";
import { NODE_DEFAULTS } from "./core/options.ts";
import { TOKEN_EXPIRED_REASON } from "./core/protocol.ts";

export type { TokenClaims } from "./core/identity.ts";

/** Why a token was refused. */
export type TokenFailure =
  | "malformed"
  | "algorithm_not_allowed"
  | "bad_signature"
  | "expired"
  | "not_yet_valid";

/** The only algorithm tokens may be signed with (`alg` in the JWT header). */
export const TOKEN_ALGORITHM = "HS256";

/** Clock skew tolerated on `exp` and `nbf` between the minting backend and this node. */
export const DEFAULT_TOKEN_LEEWAY_SECONDS = NODE_DEFAULTS.tokenLeewaySeconds;

/** Longer tokens are refused before any parsing. */
const _MAX_TOKEN_LENGTH = 8192;

const _keys = new Map<string, Promise<CryptoKey>>();

/** Seconds since the epoch. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Signs claims into a JWT (HS256), the format {@link verifyToken} accepts. */
export async function signToken(secret: string, claims: TokenClaims): Promise<string> {
  return await sign({ ...claims }, await hmacKey(secret), TOKEN_ALGORITHM);
}

/** Options of {@link verifyToken}. */
export interface VerifyOptions {
  /** Seconds since the epoch (default: now). */
  now?: number;
  /** Default {@link DEFAULT_TOKEN_LEEWAY_SECONDS}. */
  leewaySeconds?: number;
}

/**
 * The outcome of {@link verifyToken}. A failure's `problem` says what was wrong in words a
 * client is shown on every transport (`exp missing`, `bad signature: …`); `reason` is its kind.
 */
export type Verification =
  | { ok: true; claims: TokenClaims }
  | { ok: false; reason: TokenFailure; problem: string };

function _refused(reason: TokenFailure, problem: string): Verification {
  return { ok: false, reason, problem };
}

/** The wording of each token problem, one place: every transport shows these. */
const _PROBLEM = {
  tooLong: `token malformed: longer than ${_MAX_TOKEN_LENGTH} characters`,
  notJwt: "token malformed: not a JWT (header.payload.signature, base64url)",
  badHeader: "token malformed: its header is not a JWT header",
  badSignature: "bad signature: the token was not signed with this server's SOCKET_SECRET",
  subMissing: "token malformed: sub missing (the user id, a non-empty string)",
  expMissing: "token malformed: exp missing (expiry, seconds since the epoch)",
  expNotTime: "token malformed: exp is not a number of seconds since the epoch",
  nbfNotTime: "token malformed: nbf is not a number of seconds since the epoch",
  badScope:
    "token malformed: scope is neither a list of topic patterns nor a space-separated string",
  notYetValid: "token not yet valid (nbf is in the future): check the clocks",
} as const;

/** Verifies a JWT's algorithm, signature and time claims; never throws. */
export async function verifyToken(
  secret: string,
  token: string,
  options: VerifyOptions = {},
): Promise<Verification> {
  const now = options.now ?? nowSeconds();
  const leeway = options.leewaySeconds ?? DEFAULT_TOKEN_LEEWAY_SECONDS;
  if (token.length > _MAX_TOKEN_LENGTH) return _refused("malformed", _PROBLEM.tooLong);
  let payload: Record<string, unknown>;
  try {
    // Time claims are checked below, against the node's clock and with the leeway.
    payload = await verify(token, await hmacKey(secret), {
      alg: TOKEN_ALGORITHM,
      exp: false,
      nbf: false,
      iat: false,
    });
  } catch (err) {
    return _failure(err, token);
  }
  const { sub, exp, nbf } = payload;
  if (typeof sub !== "string" || sub === "") return _refused("malformed", _PROBLEM.subMissing);
  if (exp === undefined) return _refused("malformed", _PROBLEM.expMissing);
  if (!_isTime(exp)) return _refused("malformed", _PROBLEM.expNotTime);
  if (nbf !== undefined && !_isTime(nbf)) return _refused("malformed", _PROBLEM.nbfNotTime);
  const scope = _scope(payload.scope);
  if (scope === null) return _refused("malformed", _PROBLEM.badScope);
  if (exp + leeway <= now) return _refused("expired", TOKEN_EXPIRED_REASON);
  if (nbf !== undefined && nbf - leeway > now) {
    return _refused("not_yet_valid", _PROBLEM.notYetValid);
  }
  const claims: TokenClaims = { sub, exp };
  if (nbf !== undefined) claims.nbf = nbf;
  if (_isTime(payload.iat)) claims.iat = payload.iat;
  if (scope !== undefined) claims.scope = scope;
  return { ok: true, claims };
}

/**
 * The core's {@link Authenticate} hook for HS256 JWTs signed with `secret`: the default the
 * server wiring (`lib/server.ts`) injects when `SOCKET_SECRET` is set.
 *
 * @example
 * ```ts
 * const authenticate = jwtAuthenticate("a-long-random-secret", { leewaySeconds: 30 });
 * const result = await authenticate("eyJ…", { now: nowSeconds() });
 * if (!result.ok) result.reason; // "malformed"
 * ```
 */
export function jwtAuthenticate(
  secret: string,
  options: { leewaySeconds?: number } = {},
): Authenticate {
  const { leewaySeconds } = options;
  return async (token, { now }) => {
    const result = await verifyToken(secret, token, { now, leewaySeconds });
    return result.ok
      ? { ok: true, identity: { userId: result.claims.sub, claims: result.claims } }
      : { ok: false, reason: result.reason, problem: result.problem };
  };
}

/** True when `topic` matches one of the patterns (`exact` or `prefix*`). */
export function inScope(scope: readonly string[], topic: string): boolean {
  return scope.some((p) => p.endsWith("*") ? topic.startsWith(p.slice(0, -1)) : p === topic);
}

function _isTime(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** An array of patterns, or OAuth's space-separated string; null when it is neither. */
function _scope(value: unknown): string[] | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value === "string") return value.split(/\s+/).filter((s) => s !== "");
  if (Array.isArray(value) && value.every((s) => typeof s === "string")) return value;
  return null;
}

function _failure(err: unknown, token: string): Verification {
  const algorithm = () => {
    const alg = _headerAlg(token);
    const named = typeof alg === "string"
      ? `algorithm ${JSON.stringify(alg.slice(0, 20))}`
      : "no algorithm";
    return _refused(
      "algorithm_not_allowed",
      `token ${named} not allowed: sign with ${TOKEN_ALGORITHM}`,
    );
  };
  switch ((err as Error)?.name) {
    case "JwtAlgorithmMismatch":
    case "JwtAlgorithmNotImplemented":
      return algorithm();
    case "JwtTokenSignatureMismatched":
      return _refused("bad_signature", _PROBLEM.badSignature);
    case "JwtHeaderInvalid":
      // Hono refuses a header whose `alg` it does not know (`none`) like any bad header.
      return _headerAlg(token) === TOKEN_ALGORITHM
        ? _refused("malformed", _PROBLEM.badHeader)
        : algorithm();
    default:
      return _refused("malformed", _PROBLEM.notJwt);
  }
}

function _headerAlg(token: string): unknown {
  try {
    const header = new TextDecoder().decode(fromUnpaddedBase64(token.split(".")[0]));
    return JSON.parse(header)?.alg;
  } catch {
    return undefined;
  }
}

/**
 * The HMAC-SHA256 key of `secret`, imported once per secret (tokens and webhook signatures).
 *
 * @example
 * ```ts
 * const body = new TextEncoder().encode("{}");
 * const mac = await crypto.subtle.sign("HMAC", await hmacKey("s3cret"), body);
 * ```
 */
export function hmacKey(secret: string): Promise<CryptoKey> {
  let key = _keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    _keys.set(secret, key);
  }
  return key;
}

/**
 * The credentials of an `Authorization: Bearer <token>` header, or undefined. The scheme is
 * case-insensitive (RFC 9110 §11.1): `bearer`, `Bearer` and `BEARER` all work.
 */
export function bearerToken(header: string | null | undefined): string | undefined {
  return header?.match(/^bearer +([^\s]+) *$/i)?.[1];
}
