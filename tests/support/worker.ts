/**
 * Starts the Cloudflare Worker locally on workerd the way a user does, `deno task dev:worker`
 * (scripts/dev_worker.ts: bundle, then the pinned `wrangler dev`), on a free port.
 * @module
 */
import { WRANGLER } from "../../scripts/support/wrangler.ts";
import { type ServerProcess, spawnListening } from "./server.ts";
export { processTree } from "../../scripts/support/process.ts";

/**
 * Spawns `deno task dev:worker` with `env` as the Worker's bindings (plus PORT=0,
 * HOST=127.0.0.1) and waits until `/healthz` answers. Stop it with `stop()` (SIGTERM: the
 * script stops wrangler and workerd; SIGKILL would leave them running).
 */
export async function startWorker(
  env: Record<string, string> = {},
  { timeoutMs = 60_000 } = {},
): Promise<ServerProcess> {
  try {
    await Deno.stat(WRANGLER);
  } catch {
    // Tests use no network: `deno task test` installs the pinned wrangler before it runs them.
    throw new Error(
      "wrangler is not installed: run the suites with `deno task test` (it installs it), " +
        "or `npm ci --prefix deploy/cloudflare`",
    );
  }
  return await spawnListening({
    args: ["task", "dev:worker"],
    env: { PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", ...env },
    timeoutMs,
  });
}

/**
 * TCP sockets of these processes that the peer has closed but they have not (CLOSE_WAIT), from
 * /proc: what a server leaks when it never closes its side of a dead connection.
 */
export function halfClosedSockets(pids: number[]): number {
  const inodes = new Set<string>();
  for (const pid of pids) {
    try {
      for (const fd of Deno.readDirSync(`/proc/${pid}/fd`)) {
        const link = Deno.readLinkSync(`/proc/${pid}/fd/${fd.name}`);
        const m = link.match(/^socket:\[(\d+)\]$/);
        if (m) inodes.add(m[1]);
      }
    } catch { /* gone, or not ours to read */ }
  }
  let count = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(table);
    } catch { /* no IPv6 */ }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // st 08 is CLOSE_WAIT; field 9 is the inode.
      if (fields[3] === "08" && inodes.has(fields[9])) count++;
    }
  }
  return count;
}
