/**
 * The maps a newcomer reads match the tree: every module of `lib/` has its line in
 * docs/architecture.md, and every module of `lib/client/` in lib/client/README.md; the glossary
 * defines each word once and names only modules that exist; the examples of the README and the
 * docs import the package's entries, never `lib/` files. A new file without its line fails here,
 * naming it.
 */
import assert from "node:assert/strict";
import { RANKS } from "./ranks.ts";

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

Deno.test("docs/glossary.md defines each word once, and every module it names exists", () => {
  const text = Deno.readTextFileSync(new URL("docs/glossary.md", root));
  const words = [...text.matchAll(/^\| \*\*(.+?)\*\*/gm)].map((m) => m[1]);
  assert.ok(words.length > 20, `only ${words.length} words found: has the table changed shape?`);
  const twice = words.filter((word, i) => words.indexOf(word) !== i);
  assert.deepEqual(twice, [], "a word defined twice");
  const missing = [...text.matchAll(/`(lib\/[\w/]+\.ts)`/g)].map((m) => m[1])
    .filter((path) => {
      try {
        return !Deno.statSync(new URL(path, root)).isFile;
      } catch {
        return true;
      }
    });
  assert.deepEqual(missing, [], "modules the glossary names that are not in the tree");
});

Deno.test("the README's and docs' examples reach Switchboard only through its package entries", () => {
  const pages = [
    "README.md",
    ...[...Deno.readDirSync(new URL("docs/", root))]
      .filter((e) => e.name.endsWith(".md")).map((e) => `docs/${e.name}`),
  ];
  const internal: string[] = [];
  for (const page of pages) {
    const text = Deno.readTextFileSync(new URL(page, root));
    for (const block of text.matchAll(/```tsx?\n([\s\S]*?)```/g)) {
      for (const [, specifier] of block[1].matchAll(/(?:from|import)\s+"([^"]+)"/g)) {
        // `@switchboard/switchboard[/…]` is the package; `../channels/` the app's own channels.
        if (/(^|\/)lib\//.test(specifier)) internal.push(`${page}: ${specifier}`);
      }
    }
  }
  assert.deepEqual(internal, [], "import @switchboard/switchboard (or its /deno, /cloudflare, …)");
});

Deno.test("docs/architecture.md's layer table holds what ranks.ts enforces, layer by layer", () => {
  const text = Deno.readTextFileSync(new URL("docs/architecture.md", root));
  for (const rank of RANKS) {
    const row = text.match(new RegExp(`^\\| ${rank.name} +\\| (.*)\\|$`, "m"));
    assert.ok(row, `no row for the ${rank.name} layer`);
    // The paths come first, each in backquotes; a colon after the last starts the description.
    const listed = row[1].replace(/`: .*/, "`");
    const paths = [...listed.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
    assert.deepEqual(paths.sort(), [...rank.paths].sort(), `the ${rank.name} row`);
  }
});
