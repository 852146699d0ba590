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
import { waitFor } from "./wait.ts";

/** Posts `payload` as event `status` on `topic` to `POST /api/broadcast` (open API, or bearer `apiToken`) and expects 202. */
export async function publishStatus(
  url: string,
  topic: string,
  payload: Record<string, unknown>,
  apiToken?: string,
): Promise<void> {
  const res = await fetch(`${url}/api/broadcast`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(apiToken ? { authorization: `Bearer ${apiToken}` } : {}),
    },
    body: JSON.stringify({ topic, event: "status", payload }),
  });
  await res.body?.cancel();
  assert.equal(res.status, 202);
}

/** Posts `body` as JSON to the API's `path` with `token` as bearer; the status and JSON body. */
export async function postApi(
  url: string,
  path: string,
  body: unknown,
  token?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/**
 * Waits until `GET /api/occupancy/<topic>` answers exactly `counts` (it is eventually
 * consistent across nodes, and a client reconnecting moves it for a moment: compare within the
 * wait, not once after it).
 */
export async function waitForOccupancy(
  url: string,
  topic: string,
  counts: { subscribers: number; users: number },
  timeoutMs = 5_000,
): Promise<void> {
  const expected = JSON.stringify({ topic, ...counts });
  let last = "";
  await waitFor(
    async () => {
      last = JSON.stringify(await (await fetch(`${url}/api/occupancy/${topic}`)).json());
      return last === expected;
    },
    `occupancy ${expected} at ${url}`,
    timeoutMs,
  ).catch((err) => {
    throw new Error(`${err.message}; last: ${last}`);
  });
}
