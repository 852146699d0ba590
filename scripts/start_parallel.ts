/**
 * `deno task start:parallel`: `deno serve --parallel serve_parallel.ts` on `PORT`/`HOST` (the same
 * environment as `deno task start`), one worker per core (`DENO_JOBS` to choose). Signals are
 * passed on to the server, and this exits with its code.
 * @module
 */
import { ConfigError, loadConfig } from "../lib/config.ts";

const ALLOW_ENV = Deno.args.find((a) => a.startsWith("--allow-env="))?.slice(12) ?? "";
let config;
try {
  config = loadConfig({ PORT: Deno.env.get("PORT"), HOST: Deno.env.get("HOST") });
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`switchboard: ${err.message}\nFix the variables above and start again.`);
  Deno.exit(1);
}
const serve = new URL("../serve_parallel.ts", import.meta.url);
const child = new Deno.Command(Deno.execPath(), {
  args: [
    "serve",
    "--parallel",
    "--allow-net",
    ALLOW_ENV ? `--allow-env=${ALLOW_ENV}` : "--allow-env",
    "--port",
    String(config.port),
    "--host",
    config.host,
    decodeURIComponent(serve.pathname),
  ],
  stdin: "null",
}).spawn();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    try {
      child.kill(signal);
    } catch { /* already exited */ }
  });
}
Deno.exit((await child.status).code);
