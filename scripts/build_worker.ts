/**
 * `deno task build:worker`: bundles the Cloudflare Worker (`deploy/cloudflare/worker.ts`, with
 * the library, the channels and the npm packages it imports) into one ES module,
 * `deploy/cloudflare/dist/worker.js`, which `wrangler dev` and `wrangler deploy` use as it is.
 * @module
 */

const _root = new URL("../", import.meta.url);

/** Where the bundle goes, relative to the repository. */
export const WORKER_BUNDLE = "deploy/cloudflare/dist/worker.js";

/**
 * Bundles the Worker with `deno bundle` into `output` (default {@link WORKER_BUNDLE}, relative to
 * the repository) and returns its absolute path; throws with deno's output when that fails.
 */
export async function buildWorker(output: string = WORKER_BUNDLE): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      // Browser conditions: workerd is a web runtime (no Node builtins unless nodejs_compat).
      "--platform=browser",
      "--format=esm",
      "--output",
      output,
      "deploy/cloudflare/worker.ts",
    ],
    cwd: _root,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`deno bundle of the Worker failed:\n${text}`);
  return new URL(output, _root).pathname;
}

if (import.meta.main) {
  const path = await buildWorker();
  console.log(`built ${path} (${(await Deno.stat(path)).size} bytes)`);
}
