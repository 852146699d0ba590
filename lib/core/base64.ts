/**
 * Base64 for binary payloads where only text travels: the broker's JSON envelope, long-poll
 * POST lines, SSE `data:` lines and the REST API.
 *
 * @example
 * ```ts
 * fromBase64(toBase64(new Uint8Array([1, 2, 3]))); // Uint8Array [1, 2, 3]
 * ```
 * @module
 */

/** Standard base64 (with padding) of `bytes`. */
export function toBase64(bytes: Uint8Array): string {
  return bytes.toBase64();
}

/** The bytes of standard base64 `text`; throws a `SyntaxError` when it is not base64. */
export function fromBase64(text: string): Uint8Array {
  return Uint8Array.fromBase64(text);
}

/**
 * The bytes of base64 text whose `=` padding may be missing, in either alphabet (`-_` or
 * `+/`): what tokens and the Phoenix `authToken` subprotocol carry. Throws a `SyntaxError`
 * when it is not base64.
 */
export function fromUnpaddedBase64(text: string): Uint8Array {
  const standard = text.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.fromBase64(standard, { lastChunkHandling: "loose" });
}
