/**
 * The HTTP API as a publisher uses it, for suites that need a status posted.
 *
 * @example
 * ```ts
 * await publishStatus(server.url, "status:acme", { state: "degraded" });
 * ```
 * @module
 */
import assert from "node:assert/strict";

/** Posts `payload` as event `status` on `topic` to `POST /api/broadcast` (open API) and expects 202. */
export async function publishStatus(
  url: string,
  topic: string,
  payload: Record<string, unknown>,
): Promise<void> {
  const res = await fetch(`${url}/api/broadcast`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ topic, event: "status", payload }),
  });
  await res.body?.cancel();
  assert.equal(res.status, 202);
}
