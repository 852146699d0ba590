/**
 * `deno task token <user_id> [--ttl seconds] [--scope pattern]…`: prints a connect token, a
 * standard JWT (HS256 with `SOCKET_SECRET`; claims `sub`, `exp`, `scope`), for WebSocket
 * (`token` param or `authToken`), long-poll, SSE, the API's reads and the pages' `?token=`.
 * A backend mints the same with any JWT library.
 * @module
 */
import { nowSeconds, signToken } from "../lib/auth.ts";

const usage = "usage: deno task token <user_id> [--ttl seconds] [--scope topic-pattern]…";
const secret = Deno.env.get("SOCKET_SECRET");
if (!secret || secret.length < 16) {
  console.error("SOCKET_SECRET must be set (at least 16 characters) to sign tokens\n" + usage);
  Deno.exit(1);
}
let userId: string | undefined;
let ttl = 3600;
const scope: string[] = [];
for (let i = 0; i < Deno.args.length; i++) {
  const arg = Deno.args[i];
  if (arg === "--ttl") ttl = Number(Deno.args[++i]);
  else if (arg === "--scope") scope.push(Deno.args[++i] ?? "");
  else if (!arg.startsWith("--") && userId === undefined) userId = arg;
  else {
    console.error(`unexpected argument "${arg}"\n${usage}`);
    Deno.exit(1);
  }
}
if (!userId || !Number.isInteger(ttl) || ttl <= 0 || scope.some((s) => s === "")) {
  console.error(usage);
  Deno.exit(1);
}
console.log(
  await signToken(secret, {
    sub: userId,
    exp: nowSeconds() + ttl,
    ...(scope.length ? { scope } : {}),
  }),
);
