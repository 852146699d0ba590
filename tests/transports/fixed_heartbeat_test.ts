/**
 * The fixed heartbeat (`lib/core/heartbeat.ts`) against a Deno server: the session answers it
 * with exactly the text a Cloudflare node object's auto-response sends, so the Switchboard
 * client cannot tell who answered.
 */
import assert from "node:assert/strict";
import { FIXED_PING, FIXED_PONG } from "../../lib/core/heartbeat.ts";
import { channels } from "../../channels/mod.ts";
import { openRaw } from "../support/raw_ws.ts";
import { serveInProcess } from "../support/in_process.ts";

Deno.test("a session answers the fixed heartbeat with the auto-response's exact text", async () => {
  await using app = serveInProcess({ channels });
  const ws = await openRaw(`${app.socketUrl}/websocket?vsn=2.0.0&user_id=ann`);
  ws.send(FIXED_PING);
  assert.equal((await ws.next()).raw, FIXED_PONG);
  ws.send(FIXED_PING);
  assert.equal((await ws.next()).raw, FIXED_PONG, "every time the same");
  await ws.close();
});
