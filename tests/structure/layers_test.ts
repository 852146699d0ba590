/**
 * The layout rules of docs/architecture.md, checked on the real module graph: no import circles
 * (code and type imports), no import up a layer (`ranks.ts` holds the map), the core imports no
 * package but zod and fossil-delta, channels import only the package entry (`mod.ts`), nothing
 * in `lib/` outside `lib/runtime/` touches `Deno.*`, no module of `lib/` over 500 lines, and
 * `lib/` keeps at most a dozen files at its top.
 */
import assert from "node:assert/strict";
import { rankBreaks, rankOf } from "./ranks.ts";

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
    const local = new Set(deps.map((d) => d.slice(root.href.length)));
    graph.set(m.specifier.slice(root.href.length), [...local]);
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
    if (entry.name === "node_modules") continue;
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

/** Every module of the layered folders and the entries: what {@link RANKS} must place. */
async function layeredFiles(): Promise<string[]> {
  const files = ["mod.ts", "main.ts", "serve.ts", "serve_parallel.ts"];
  for (const dir of ["lib/", "routes/", "channels/", "deploy/"]) {
    for await (const file of tsFiles(new URL(dir, root))) files.push(file);
  }
  return files.sort();
}

/** The import graph of every layered module at once (one synthetic entry importing them all). */
async function wholeGraph(): Promise<Map<string, string[]>> {
  const dir = await Deno.makeTempDir();
  try {
    const entry = `${dir}/all.ts`;
    const files = await layeredFiles();
    await Deno.writeTextFile(
      entry,
      files.map((f) => `import ${JSON.stringify(new URL(f, root).href)};`).join("\n"),
    );
    return await localGraph(entry);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("layers: no module imports one of a higher layer", async (t) => {
  const graph = await wholeGraph();

  await t.step("every layered module has a layer", async () => {
    const unranked = (await layeredFiles()).filter((f) => rankOf(f) < 0);
    assert.deepEqual(unranked, [], "add these paths to RANKS in tests/structure/ranks.ts");
  });

  await t.step("the real graph goes only down", () => {
    assert.ok(graph.size > 60, `only ${graph.size} local modules found`);
    assert.deepEqual(rankBreaks(graph), []);
  });

  await t.step("lib/resume imports nothing from lib/core", () => {
    for (const [module, deps] of graph) {
      if (!module.startsWith("lib/resume/")) continue;
      assert.deepEqual(deps.filter((d) => d.startsWith("lib/core/")), [], module);
    }
  });

  await t.step("a core file importing lib/cluster/ fails, naming both files", async () => {
    // A real module written into lib/core for the length of this step, read by the same graph
    // builder and checker as the tree above.
    const name = `lib/core/_layer_probe_${crypto.randomUUID().slice(0, 8)}.ts`;
    const probe = new URL(name, root);
    await Deno.writeTextFile(
      probe,
      'import type { RedisBroker } from "../cluster/redis/broker.ts";\n' +
        "export type Probe = RedisBroker;\n",
    );
    try {
      const breaks = rankBreaks(await localGraph(name));
      assert.equal(breaks.length, 1, breaks.join("\n"));
      assert.match(
        breaks[0],
        new RegExp(`^${name} \\(core\\) imports lib/cluster/redis/broker\\.ts`),
      );
    } finally {
      await Deno.remove(probe);
    }
  });

  await t.step("resume importing core, and a server module importing the client, fail", () => {
    const broken = new Map([
      ["lib/resume/history.ts", ["lib/core/broadcast.ts"]],
      ["lib/transports/sse.ts", ["lib/client/wire.ts"]],
      ["routes/pages.ts", ["lib/client/wire.ts", "lib/core/hub.ts"]],
    ]);
    const breaks = rankBreaks(broken);
    assert.equal(breaks.length, 3, breaks.join("\n"));
    assert.match(
      breaks[0],
      /^lib\/resume\/history\.ts \(base\) imports lib\/core\/broadcast\.ts \(core\)/,
    );
    assert.match(
      breaks[1],
      /^lib\/transports\/sse\.ts \(edges\) imports lib\/client\/wire\.ts \(wiring\)/,
    );
    assert.match(
      breaks[2],
      /^lib\/transports\/sse\.ts imports lib\/client\/wire\.ts: lib\/client\/ is imported only/,
    );
  });
});

Deno.test("the core imports no package but zod and fossil-delta (no JWT library, no Hono)", async () => {
  // Authentication and HTTP are the edges' and the wiring's: the core takes a hook and a Request.
  const allowed = new Set(["zod", "fossil-delta"]);
  const found: string[] = [];
  for await (const path of tsFiles(new URL("lib/core/", root))) {
    const text = await Deno.readTextFile(new URL(path, root));
    for (const [, specifier] of text.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)) {
      if (!specifier.startsWith(".") && !allowed.has(specifier)) {
        found.push(`${path}: ${specifier}`);
      }
    }
  }
  assert.deepEqual(found, []);
});

Deno.test("no module of lib/ is over 500 lines (generated code aside)", async () => {
  const long: string[] = [];
  for await (const file of tsFiles(new URL("lib/", root))) {
    if (file.includes("/generated/")) continue;
    const lines = (await Deno.readTextFile(new URL(file, root))).split("\n").length - 1;
    if (lines > 500) long.push(`${file}: ${lines} lines`);
  }
  assert.deepEqual(long, [], "split these modules along their seams");
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
