/**
 * `deno task test` installs the pinned wrangler only for runs that include a Worker suite: the
 * detection read from the real suites of this repository, and from made-up ones.
 */
import assert from "node:assert/strict";
import { needsWrangler } from "../support/suites.ts";

const root = new URL("../../", import.meta.url).pathname;

Deno.test("runs that include a Worker suite need wrangler; others do not", async (t) => {
  await t.step("the Worker suites and every folder holding them", async () => {
    assert.equal(await needsWrangler([`${root}tests/edge/worker_test.ts`]), true);
    assert.equal(await needsWrangler([`${root}tests/edge/worker_cluster_test.ts`]), true);
    assert.equal(await needsWrangler([`${root}tests/edge/`]), true);
    assert.equal(await needsWrangler([`${root}tests/`]), true);
  });

  await t.step("suites that never start the Worker", async () => {
    assert.equal(await needsWrangler([`${root}tests/core/`]), false);
    assert.equal(await needsWrangler([`${root}tests/edge/deno_serve_test.ts`]), false);
    assert.equal(await needsWrangler([`${root}tests/no_such_folder/`]), false);
  });

  await t.step("a new suite that imports the Worker helper counts too", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.mkdir(`${dir}/edge`);
      await Deno.writeTextFile(`${dir}/edge/plain_test.ts`, 'import "node:assert";\n');
      assert.equal(await needsWrangler([dir]), false);
      // Built from parts so that this file itself does not look like a Worker suite.
      const helper = ["..", "support", "worker.ts"].join("/");
      await Deno.writeTextFile(
        `${dir}/edge/new_test.ts`,
        `import { startWorker } from "${helper}";\nconsole.log(startWorker);\n`,
      );
      assert.equal(await needsWrangler([dir]), true);
      assert.equal(await needsWrangler([`${dir}/edge/plain_test.ts`]), false);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
