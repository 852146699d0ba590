/**
 * Signed connect tokens: `<payload>.<signature>`, both base64url, the payload JSON
 * `{sub, exp, scope?}` and the signature HMAC-SHA256 of the payload part (Web Crypto).
 *
 * @example
 * ```ts
 * const token = await signToken("a-long-random-secret", { sub: "ann", exp: nowSeconds() + 3600 });
 * const result = await verifyToken("a-long-random-secret", token);
 * if (result.ok) result.claims.sub; // "ann"
 * ```
 * @module
 */

/** What a token says about its holder. */
export interface TokenClaims {
  /** The user id channels see as `ctx.userId`. */
  sub: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
  /** Topic patterns (`record:42`, `record:*`) the holder may join, when the channel checks. */
  scope?: string[];
}

/** Why a token was refused. */
export type TokenFailure = "malformed" | "bad_signature" | "expired";

const _keys = new Map<string, Promise<CryptoKey>>();
const _encoder = new TextEncoder();

/** Seconds since the epoch. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Signs claims into a token. */
export async function signToken(secret: string, claims: TokenClaims): Promise<string> {
  const payload = _base64url(_encoder.encode(JSON.stringify(claims)));
  const signature = await crypto.subtle.sign("HMAC", await _key(secret), _encoder.encode(payload));
  return `${payload}.${_base64url(new Uint8Array(signature))}`;
}

/** Verifies a token's signature and expiry; never throws. */
export async function verifyToken(
  secret: string,
  token: string,
  now = nowSeconds(),
): Promise<{ ok: true; claims: TokenClaims } | { ok: false; reason: TokenFailure }> {
  const parts = token.split(".");
  if (parts.length !== 2 || token.length > 4096) return { ok: false, reason: "malformed" };
  const [payload, signature] = parts;
  let signatureBytes: Uint8Array<ArrayBuffer>;
  try {
    signatureBytes = _fromBase64url(signature);
  } catch {
    return { ok: false, reason: "malformed" };
  }
  const valid = await crypto.subtle.verify(
    "HMAC",
    await _key(secret),
    signatureBytes,
    _encoder.encode(payload),
  );
  if (!valid) return { ok: false, reason: "bad_signature" };
  let claims: TokenClaims;
  try {
    claims = JSON.parse(new TextDecoder().decode(_fromBase64url(payload)));
  } catch {
    return { ok: false, reason: "malformed" };
  }
  if (typeof claims?.sub !== "string" || claims.sub === "" || typeof claims.exp !== "number") {
    return { ok: false, reason: "malformed" };
  }
  if (claims.scope !== undefined && !Array.isArray(claims.scope)) {
    return { ok: false, reason: "malformed" };
  }
  if (claims.exp <= now) return { ok: false, reason: "expired" };
  return { ok: true, claims };
}

/** True when `topic` matches one of the patterns (`exact` or `prefix*`). */
export function inScope(scope: readonly string[], topic: string): boolean {
  return scope.some((p) => p.endsWith("*") ? topic.startsWith(p.slice(0, -1)) : p === topic);
}

function _key(secret: string): Promise<CryptoKey> {
  let key = _keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey(
      "raw",
      _encoder.encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    _keys.set(secret, key);
  }
  return key;
}

function _base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function _fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error("not base64url");
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(b64 + "=".repeat((4 - b64.length % 4) % 4)), (c) => c.charCodeAt(0));
}
