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
