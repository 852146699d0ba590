/**
 * `deno task test`: runs every suite under tests/ with `deno test`, streams its output, and ends
 * with one plain line `N passed, N failed` (tests and their steps counted together) for CI.
 * It sets up what the chosen suites need that npm provides: when one of them starts the Worker
 * (imports tests/support/worker.ts), the pinned wrangler is installed first if it is missing, as
 * `deno task dev:worker` does.
 * @module
 */
import { ensureWrangler } from "../scripts/support/wrangler.ts";
import { needsWrangler } from "./support/suites.ts";

const args = Deno.args.length ? Deno.args : ["tests/"];
const paths = args.filter((a) => !a.startsWith("-"));
if (await needsWrangler(paths.length ? paths : ["."])) {
  // A failed install is reported, not fatal: the other suites still run, and the Worker suites
  // fail saying what is missing.
  await ensureWrangler({ who: "test" }).catch((err) => console.error(err.message));
}
const child = new Deno.Command(Deno.execPath(), {
  // All permissions: the suites spawn servers, redis-server and Chromium, and read /proc for RSS.
  args: ["test", "--allow-all", ...args],
  stdout: "piped",
  stderr: "inherit",
  env: { NO_COLOR: "1" },
}).spawn();

let tail = "";
const decoder = new TextDecoder();
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
}
const status = await child.status;
// Deno's summary: "ok | 12 passed (30 steps) | 0 failed (2 steps) ..." or "FAILED | …".
const summary = tail.split("\n").reverse().find((l) => /\|\s*\d+ passed/.test(l)) ?? "";
const count = (word: string) => {
  const m = summary.match(new RegExp(`(\\d+) ${word}(?: \\((\\d+) steps?\\))?`));
  return m ? Number(m[1]) + Number(m[2] ?? 0) : 0;
};
let passed = count("passed");
let failed = count("failed");
if (!status.success && failed === 0) failed = 1; // crashed before the summary
if (summary === "" && status.success) passed = 0;
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(status.success ? 0 : 1);
