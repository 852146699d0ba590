/**
 * Conditional GETs: does a request's `If-None-Match` match the current `ETag`? RFC 9110
 * §13.1.2 asks for the weak comparison here, so `W/"x"` matches `"x"` (nginx's gzip and
 * Cloudflare weaken the ETags they pass on, and clients send back what they were given), a
 * list matches when any member does, and `*` matches any current representation.
 *
 * @example
 * ```ts
 * notModified('W/"n1~ab.7", "other"', '"n1~ab.7"'); // true
 * notModified("*", '"0"'); // true
 * notModified('"n1~ab.6"', '"n1~ab.7"'); // false
 * ```
 * @module
 */

/** An entity-tag, weak or strong; its opaque part is group 1. */
const _ENTITY_TAG = /(?:W\/)?"([^"]*)"/g;

/** True when `ifNoneMatch` (the request header, if any) matches `etag` by weak comparison. */
export function notModified(ifNoneMatch: string | null | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === "*") return true;
  const opaque = _opaque(etag);
  for (const match of ifNoneMatch.matchAll(_ENTITY_TAG)) {
    if (match[1] === opaque) return true;
  }
  return false;
}

function _opaque(etag: string): string {
  const quoted = etag.startsWith("W/") ? etag.slice(2) : etag;
  return quoted.startsWith('"') && quoted.endsWith('"') ? quoted.slice(1, -1) : quoted;
}
