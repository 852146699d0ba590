/**
 * The layout rules of DESIGN.md, checked on the real module graph: no import circles (code and
 * type imports), channels import only the package entry (`mod.ts`), nothing in `lib/` outside `lib/runtime/`
 * touches `Deno.*`, and `lib/` keeps at most a dozen files at its top.
 */
import assert from "node:assert/strict";

const root = new URL("../../", import.meta.url);

interface _Module {
  specifier: string;
  dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
}

async function localGraph(entry: string): Promise<Map<string, string[]>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: _Module[] };
  const graph = new Map<string, string[]>();
  for (const m of info.modules) {
    if (!m.specifier.startsWith(root.href)) continue;
    const deps = (m.dependencies ?? [])
      .flatMap((d) => [d.code?.specifier, d.type?.specifier])
      .filter((s): s is string => s?.startsWith(root.href) ?? false);
    graph.set(m.specifier.slice(root.href.length), deps.map((d) => d.slice(root.href.length)));
  }
  return graph;
}

function cycles(graph: Map<string, string[]>): string[] {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const found: string[] = [];
  const visit = (node: string) => {
    state.set(node, "open");
    stack.push(node);
    for (const dep of graph.get(node) ?? []) {
      if (state.get(dep) === "open") {
        found.push([...stack.slice(stack.indexOf(dep)), dep].join(" -> "));
      } else if (!state.has(dep)) visit(dep);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return found;
}

async function* tsFiles(dir: URL): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) yield* tsFiles(url);
    else if (entry.name.endsWith(".ts")) yield url.href.slice(root.href.length);
  }
}

Deno.test("the module graphs of every entry have no import circles", async (t) => {
  for (const entry of ["main.ts", "serve.ts", "serve_parallel.ts", "deploy/cloudflare/worker.ts"]) {
    await t.step(entry, async () => {
      const graph = await localGraph(entry);
      assert.ok(graph.size > 20, `only ${graph.size} local modules found`);
      assert.deepEqual(cycles(graph), []);
    });
  }
});

Deno.test("channels import only the package entry (@switchboard/switchboard)", async () => {
  const graph = await localGraph("channels/mod.ts");
  for (const [module, deps] of graph) {
    if (!module.startsWith("channels/")) continue;
    for (const dep of deps) {
      assert.ok(
        dep.startsWith("channels/") || dep === "mod.ts",
        `${module} imports ${dep}: channels may import only "@switchboard/switchboard"`,
      );
    }
  }
});

Deno.test("only lib/runtime/ touches Deno.*; the browser client is apart", async () => {
  const offenders: string[] = [];
  for await (const file of tsFiles(new URL("lib/", root))) {
    if (file.startsWith("lib/runtime/") || file.startsWith("lib/client/")) continue;
    const text = await Deno.readTextFile(new URL(file, root));
    // Code, not comments: strip line and block comments before looking.
    const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
    if (/\bDeno\./.test(code)) offenders.push(file);
  }
  assert.deepEqual(offenders, []);
});

Deno.test("lib/ keeps at most a dozen files at its top", async () => {
  const files: string[] = [];
  for await (const entry of Deno.readDir(new URL("lib/", root))) {
    if (entry.isFile) files.push(entry.name);
  }
  assert.ok(files.length <= 12, `lib/ has ${files.length} files: ${files.sort().join(", ")}`);
  assert.ok(files.includes("mod.ts"));
});
