/**
 * A rule of the layout (docs/architecture.md), checked on the real module graphs: the dev tools (`bench/`,
 * `scripts/`) import nothing from `tests/` (what they share with the tests lives in
 * `scripts/support/`). The 500-line rule for `lib/` is in layers_test.ts.
 */
import assert from "node:assert/strict";
import { run } from "../../scripts/support/process.ts";

const root = new URL("../../", import.meta.url);

/** Every `.ts` file under `dir`, as a path from the repository's root. */
async function* tsFiles(dir: URL): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name === "node_modules" || entry.name === "results") continue;
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) yield* tsFiles(url);
    else if (entry.name.endsWith(".ts")) yield url.href.slice(root.href.length);
  }
}

interface _Module {
  specifier: string;
  dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
}

/** The local import edges (code and type) of `entry`'s module graph, from `deno info --json`. */
async function localEdges(entry: string): Promise<[string, string][]> {
  const out = await run(Deno.execPath(), ["info", "--json", entry], { cwd: root });
  assert.equal(out.code, 0, `deno info ${entry}: ${out.output}`);
  const info = JSON.parse(out.stdout) as { modules: _Module[] };
  const local = (s: string | undefined) =>
    s?.startsWith(root.href) ? s.slice(root.href.length) : "";
  const edges: [string, string][] = [];
  for (const m of info.modules) {
    const from = local(m.specifier);
    if (!from) continue;
    for (const d of m.dependencies ?? []) {
      for (const to of [local(d.code?.specifier), local(d.type?.specifier)]) {
        if (to) edges.push([from, to]);
      }
    }
  }
  return edges;
}

Deno.test("bench/ and scripts/ import nothing from tests/", async () => {
  const seen = new Set<string>();
  const wrong = new Set<string>();
  for (const dir of ["bench/", "scripts/"]) {
    for await (const file of tsFiles(new URL(dir, root))) {
      if (seen.has(file)) continue; // already in the graph of an earlier entry
      for (const [from, to] of await localEdges(file)) {
        seen.add(from);
        if (!from.startsWith("tests/") && to.startsWith("tests/")) wrong.add(`${from} -> ${to}`);
      }
    }
  }
  assert.ok(seen.size > 20, `only ${seen.size} modules found`);
  assert.deepEqual(
    [...wrong],
    [],
    "the dev tools import test helpers: move what they share into scripts/support/",
  );
});
