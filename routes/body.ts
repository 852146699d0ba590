/**
 * Reads a JSON request body with a size limit, with errors that say what was wrong.
 * @module
 */

/** The outcome of {@link readJsonBody}. */
export type BodyResult =
  | { ok: true; value: unknown }
  | { ok: false; status: 400 | 413; error: string };

/** The outcome of {@link readBytesBody}. */
export type BytesResult =
  | { ok: true; value: Uint8Array }
  | { ok: false; status: 400 | 413; error: string };

/** Reads at most `maxBytes` of the body and parses it as JSON. */
export async function readJsonBody(req: Request, maxBytes: number): Promise<BodyResult> {
  const read = await readBytesBody(req, maxBytes);
  if (!read.ok) return read;
  const text = new TextDecoder().decode(read.value);
  if (text.trim() === "") {
    return { ok: false, status: 400, error: "empty body: send a JSON message" };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, status: 400, error: `body is not valid JSON: ${(err as Error).message}` };
  }
}

/**
 * Reads at most `maxBytes` of the body as bytes (an absent body is empty), while it streams: a
 * declared `Content-Length` past the limit is refused before a byte is read, and a chunked or
 * lying body as soon as it passes it (leaving the loop cancels the rest, which is never read),
 * so an oversized body costs at most `maxBytes` plus one chunk.
 */
export async function readBytesBody(req: Request, maxBytes: number): Promise<BytesResult> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  const tooLarge = { ok: false, status: 413, error: `body larger than ${maxBytes} bytes` } as const;
  if (declared > maxBytes) return tooLarge;
  if (!req.body) return { ok: true, value: new Uint8Array(0) };
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body) {
    size += chunk.length;
    if (size > maxBytes) return tooLarge;
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return { ok: true, value: bytes };
}
