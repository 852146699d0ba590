/**
 * The maps a newcomer reads match the tree: every module of `lib/` has its line in
 * docs/architecture.md, and every module of `lib/client/` in lib/client/README.md. A new file
 * without its line fails here, naming it.
 */
import assert from "node:assert/strict";

const root = new URL("../../", import.meta.url);

/** The `.ts` files under `dir` (a path from the root), `generated/` left out. */
function modules(dir: string): string[] {
  const found: string[] = [];
  for (const entry of Deno.readDirSync(new URL(dir, root))) {
    const path = `${dir}${entry.name}`;
    if (entry.isDirectory && entry.name !== "generated") found.push(...modules(`${path}/`));
    else if (entry.isFile && entry.name.endsWith(".ts")) found.push(path);
  }
  return found;
}

/** The files of `paths` whose name does not appear in the map `mapPath`. */
function unmapped(paths: string[], mapPath: string): string[] {
  const map = Deno.readTextFileSync(new URL(mapPath, root));
  return paths.filter((path) => !map.includes(path.slice(path.lastIndexOf("/") + 1)));
}

Deno.test("docs/architecture.md names every lib/ module outside lib/client/", () => {
  const lib = modules("lib/").filter((path) => !path.startsWith("lib/client/"));
  assert.deepEqual(unmapped(lib, "docs/architecture.md"), [], "add a line for each");
});

Deno.test("lib/client/README.md names every module of the client", () => {
  assert.deepEqual(unmapped(modules("lib/client/"), "lib/client/README.md"), []);
});
