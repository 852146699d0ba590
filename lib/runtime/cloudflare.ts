/**
 * The Cloudflare Workers runtime adapter: timers, the WebSocket upgrade through a
 * `WebSocketPair`, and the configuration from a Worker's bindings. Nothing here touches `Deno.*`;
 * the Worker entry (`deploy/cloudflare/worker.ts`) hands these to the runtime-neutral library.
 *
 * @example
 * ```ts
 * const config = loadConfig({ ...bindingsEnv(env, CONFIG_KEYS), NODE_ID: "node-1" });
 * const switchboard = createSwitchboard({ config, channels, timers: cloudflareRuntime.timers });
 * const app = createApp(switchboard, { upgrade: cloudflareRuntime.upgrade });
 * ```
 * @module
 */
import { plainTimers, type Timers } from "../core/time.ts";
import { cloudflareUpgrade } from "./cloudflare_upgrade.ts";

// What a hibernating node object needs besides (docs/hibernation.md), for the Worker entry.
export {
  type ConnectionSettings,
  HibernatingSockets,
  type HibernationState,
} from "./cloudflare_hibernation.ts";
export { NodeStorage, type SqlStorage } from "./cloudflare_storage.ts";
export { FIXED_PING, FIXED_PONG } from "../core/heartbeat.ts";
export { cloudflareUpgrade, webSocketPair } from "./cloudflare_upgrade.ts";

/**
 * The string bindings among `keys` (a Worker's `env` also holds objects: Durable Object
 * namespaces, KV...), as `loadConfig` takes them. Blank values count as unset there.
 */
export function bindingsEnv(bindings: object, keys: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  const values = bindings as Record<string, unknown>;
  for (const key of keys) {
    const value = values[key];
    if (typeof value === "string") env[key] = value;
  }
  return env;
}

/**
 * Everything the Worker entry hands to the runtime-neutral library. Plain timers: Workers have
 * no unref, and a Durable Object's timers run only while it is in memory anyway.
 */
export const cloudflareRuntime = { timers: plainTimers, upgrade: cloudflareUpgrade } as const;

/**
 * Timers that never keep a Durable Object in memory: a pending `setInterval` would stop it
 * from hibernating. Nothing runs on its own; the object calls {@link AwakeTimers.tick} on each
 * event it handles (and from an alarm where work must happen while it sleeps), which runs
 * every task whose interval has passed.
 *
 * @example
 * ```ts
 * const sweepTimers = new AwakeTimers();
 * const switchboard = createSwitchboard({ config, channels, sweepTimers });
 * // on every event of the object:
 * sweepTimers.tick();
 * ```
 */
export class AwakeTimers implements Timers {
  readonly #tasks = new Set<{ ms: number; fn: () => void; due: number; once: boolean }>();

  every(ms: number, fn: () => void): () => void {
    return this.#add({ ms, fn, due: Date.now() + ms, once: false });
  }

  /** Runs `fn` at the first tick `ms` or more from now. */
  after(ms: number, fn: () => void): () => void {
    return this.#add({ ms, fn, due: Date.now() + ms, once: true });
  }

  /** Runs the tasks that are due (all of them with `force`). */
  tick(force: boolean = false, now: number = Date.now()): void {
    for (const task of [...this.#tasks]) {
      if (!force && now < task.due) continue;
      if (task.once) this.#tasks.delete(task);
      else task.due = now + task.ms;
      task.fn();
    }
  }

  /** When the next task is due, if there is one. */
  get nextDue(): number | undefined {
    let next: number | undefined;
    for (const { due } of this.#tasks) if (!(next! <= due)) next = due;
    return next;
  }

  #add(task: { ms: number; fn: () => void; due: number; once: boolean }): () => void {
    this.#tasks.add(task);
    return () => this.#tasks.delete(task);
  }
}
