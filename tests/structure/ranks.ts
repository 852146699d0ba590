/**
 * The layer map of the code, lowest first, and the check that a module imports only its own
 * layer or lower ones (docs/architecture.md draws the same map). The browser client lives
 * apart: only the pages import it.
 *
 * @example
 * ```ts
 * const graph = new Map([["lib/core/hub.ts", ["lib/cluster/peers.ts"]]]);
 * rankBreaks(graph); // ["lib/core/hub.ts (core) imports lib/cluster/peers.ts (edges): …"]
 * ```
 * @module
 */

/** One layer: its name and the folders (ending in `/`) and files it holds. */
export interface Rank {
  name: string;
  paths: readonly string[];
}

/** The layers, lowest first: a module may import its own layer and those before it. */
export const RANKS: readonly Rank[] = [
  // Leaves that import nothing of the project: resume history, logging, metrics.
  { name: "base", paths: ["lib/resume/", "lib/log.ts", "lib/metrics.ts"] },
  { name: "core", paths: ["lib/core/"] },
  // What the core is plugged into: other nodes, client transports, runtimes, Supabase's
  // protocol, the webhooks to the app's backend, the JWT verifier and the environment's
  // configuration.
  {
    name: "edges",
    paths: [
      "lib/cluster/",
      "lib/transports/",
      "lib/runtime/",
      "lib/supabase/",
      "lib/webhooks/",
      "lib/auth.ts",
      "lib/config.ts",
    ],
  },
  // The server wiring, the HTTP routes, the demo channels, the entries (the package's `mod.ts`
  // too) and the browser client.
  {
    name: "wiring",
    paths: [
      "mod.ts",
      "lib/server.ts",
      "lib/extensions.ts",
      "lib/mod.ts",
      "lib/testing.ts",
      "lib/client/",
      "routes/",
      "channels/",
      "deploy/",
      "main.ts",
      "serve.ts",
      "serve_parallel.ts",
    ],
  },
];

/** Folders only some others may import, and which. */
export const APART: Readonly<Record<string, readonly string[]>> = {
  // The browser client is bundled for the pages; no server module runs it.
  "lib/client/": ["lib/client/", "routes/"],
};

/** The index in {@link RANKS} of `file` (its longest matching path), or -1 when unranked. */
export function rankOf(file: string): number {
  let best = -1;
  let length = -1;
  RANKS.forEach((rank, i) => {
    for (const path of rank.paths) {
      const hit = path.endsWith("/") ? file.startsWith(path) : file === path;
      if (hit && path.length > length) [best, length] = [i, path.length];
    }
  });
  return best;
}

/**
 * Every import of `graph` (file → files it imports, paths relative to the repository) that goes
 * up a layer or into a folder kept apart, as one line naming both files; empty when none does.
 */
export function rankBreaks(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const breaks: string[] = [];
  for (const [from, deps] of graph) {
    const fromRank = rankOf(from);
    for (const dep of deps) {
      const depRank = rankOf(dep);
      if (fromRank >= 0 && depRank > fromRank) {
        breaks.push(
          `${from} (${RANKS[fromRank].name}) imports ${dep} (${RANKS[depRank].name}): ` +
            "a lower layer may not import a higher one; move the shared part down or inject it",
        );
      }
      for (const [folder, importers] of Object.entries(APART)) {
        if (dep.startsWith(folder) && !importers.some((p) => from.startsWith(p))) {
          breaks.push(
            `${from} imports ${dep}: ${folder} is imported only by ${importers.join(", ")}`,
          );
        }
      }
    }
  }
  return breaks;
}
