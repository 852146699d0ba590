/**
 * What a test run needs, read from the suites it is given: `deno task test` (tests/run.ts) asks
 * it before starting `deno test`, so a fresh clone's run sets up what its suites use.
 *
 * @example
 * ```ts
 * if (await needsWrangler(["tests/edge/"])) await ensureWrangler({ who: "test" });
 * ```
 * @module
 */

/** A suite that starts the Worker on workerd imports this helper (tests/support/worker.ts). */
const _WORKER_HELPER = /from "[./]*\/support\/worker\.ts"/;
/** Files read when looking for such suites; tests/ holds a few hundred. */
const _MAX_FILES = 5000;

/** The .ts files under `paths` (files or folders; paths that do not exist are skipped). */
export async function testFiles(paths: string[]): Promise<string[]> {
  const found: string[] = [];
  const queue = [...paths];
  while (queue.length > 0 && found.length < _MAX_FILES) {
    const path = queue.shift()!;
    const info = await Deno.stat(path).catch(() => undefined);
    if (info?.isFile && path.endsWith(".ts")) found.push(path);
    if (!info?.isDirectory) continue;
    for await (const entry of Deno.readDir(path)) {
      if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
      queue.push(`${path.replace(/\/$/, "")}/${entry.name}`);
    }
  }
  return found;
}

/**
 * Whether any suite under `paths` starts the Worker, and so needs the pinned wrangler.
 *
 * @example
 * ```ts
 * await needsWrangler(["tests/core/"]); // false
 * ```
 */
export async function needsWrangler(paths: string[]): Promise<boolean> {
  for (const file of await testFiles(paths)) {
    if (_WORKER_HELPER.test(await Deno.readTextFile(file))) return true;
  }
  return false;
}
