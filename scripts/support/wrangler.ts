/**
 * The pinned Cloudflare tooling (wrangler with workerd, `deploy/cloudflare/package.json`):
 * where it lives and how it gets installed. `deno task dev:worker` and `deno task test` both
 * install it with `npm ci` on first use, so a fresh clone needs nothing but Node and npm.
 *
 * @example
 * ```ts
 * import { ensureWrangler, WRANGLER } from "./scripts/support/wrangler.ts";
 * await ensureWrangler({ who: "dev:worker" });
 * new Deno.Command(WRANGLER, { args: ["--version"] });
 * ```
 * @module
 */

/** The folder of the Worker's npm project (wrangler.toml, package.json, node_modules). */
export const CLOUDFLARE_DIR: URL = new URL("../../deploy/cloudflare/", import.meta.url);

/** The pinned wrangler's executable. */
export const WRANGLER: string = new URL("node_modules/.bin/wrangler", CLOUDFLARE_DIR).pathname;

/** Options of {@link ensureWrangler}. */
export interface EnsureWranglerOptions {
  /** Who asks, as the messages name it (`dev:worker`, `test`). */
  who: string;
}

/**
 * Installs the pinned wrangler with `npm ci` when it is missing; resolves at once when it is
 * there. Throws, saying what to run by hand, when npm is missing or fails.
 *
 * @example
 * ```ts
 * await ensureWrangler({ who: "test" });
 * ```
 */
export async function ensureWrangler({ who }: EnsureWranglerOptions): Promise<void> {
  try {
    await Deno.stat(WRANGLER);
    return;
  } catch { /* not installed yet */ }
  console.log(`${who}: installing the pinned wrangler (npm ci in deploy/cloudflare) …`);
  const status = await new Deno.Command("npm", {
    args: ["ci", "--no-audit", "--no-fund"],
    cwd: CLOUDFLARE_DIR,
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status.catch((err) => {
    throw new Error(`${who}: could not run npm (${err}); install Node 20+ and npm`);
  });
  if (!status.success) {
    throw new Error(
      `${who}: npm ci in deploy/cloudflare failed (see above); run it by hand, then retry`,
    );
  }
}
