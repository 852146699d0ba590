/**
 * How a tab reaches the engine that holds its browser's connection:
 *
 * - `worker`: a `SharedWorker` runs the engine; each tab talks to it over its port.
 * - `leader`: where there is no SharedWorker (Chrome on Android, Safari before 16), the tabs
 *   elect one with the Web Locks API; it runs the engine and the others talk to it over a
 *   `BroadcastChannel`. Every tab mirrors the engine's resume state from what it hears, so when
 *   the leader closes (its lock is released) or freezes (its heartbeat stops; the next tab
 *   steals the lock), the next one resumes from the cursor.
 * - `none`: the engine runs in this tab (Deno, Node, or browsers without Web Locks).
 *
 * A tab holds a lock of its own (`switchboard-tab:<id>`) for as long as it lives; the engine
 * asks for it, and is granted it exactly when the tab is gone, without polling.
 *
 * This module holds what the modes share (the link's shape, the tab's lock, what the page
 * offers); `worker_link.ts`, `leader_link.ts` and `page_link.ts` (the `none` mode, and one link
 * per page for all its clients) open them.
 *
 * @example
 * ```ts
 * if (availableSharing() === "none") console.log("this tab keeps its own connection");
 * ```
 * @module
 */
import type { EngineMessage, EngineOptions, TabMessage } from "./wire.ts";

/** How a tab shares the connection: see the module documentation. */
export type SharingMode = "worker" | "leader" | "follower" | "none";

/** What a tab's client sees of the link. */
export interface Link {
  readonly tab: string;
  /** `leader` or `follower` in leader mode, as it is now. */
  readonly mode: SharingMode;
  send(msg: TabMessage): void;
  /** Engine messages for this tab. */
  onMessage: (msg: EngineMessage) => void;
  /** The engine changed (a new leader, a worker restarted): send every subscription again. */
  onResync: () => void;
  close(): void;
}

/** Options of `openLink` (page_link.ts). */
export interface LinkOptions {
  engine: EngineOptions;
  share: "auto" | "worker" | "leader" | "none";
  /** URL of the SharedWorker script (served as `/assets/switchboard-worker.js`). */
  workerUrl: string;
  /** A leader silent this long is taken over (default 4000 ms). */
  leaderTimeoutMs: number;
}

/** The part of the Web Locks API the links use. */
export interface LockManager {
  request(
    name: string,
    options: { steal?: boolean; ifAvailable?: boolean },
    callback: (lock: unknown) => Promise<unknown> | unknown,
  ): Promise<unknown>;
}

/** A `SharedWorker` as the worker link uses it. */
export interface SharedWorkerLike {
  port: MessagePort;
  onerror: ((event: unknown) => void) | null;
}

/** What the links use of the page's global scope (each may be missing). */
export type LinkGlobal = {
  SharedWorker?: new (url: string, options: { name: string }) => SharedWorkerLike;
  BroadcastChannel?: typeof BroadcastChannel;
  navigator?: { locks?: LockManager };
  addEventListener?: (type: string, listener: (event: { persisted?: boolean }) => void) => void;
};

/** The page's global scope, typed for the links. */
export const linkGlobal = globalThis as unknown as LinkGlobal;

/** The Web Locks API, when this runtime has it. */
export function lockManager(): LockManager | undefined {
  return linkGlobal.navigator?.locks;
}

/** Name of the lock a tab holds while it lives. */
export function tabLockName(tab: string): string {
  return `switchboard-tab:${tab}`;
}

/** Holds this tab's life lock, then calls `ready` (at once without Web Locks). */
export function holdTabLock(tab: string, ready: () => void): void {
  const locks = lockManager();
  if (!locks) return ready();
  void locks.request(tabLockName(tab), {}, () => {
    ready();
    return new Promise(() => {}); // held until the tab is gone
  });
}

/**
 * The mode `auto` picks here: worker, else leader, else none. Only pages share: Deno has
 * BroadcastChannel and Web Locks too, but a process has no tabs to share with.
 */
export function availableSharing(): "worker" | "leader" | "none" {
  if (!("document" in globalThis)) return "none";
  if (typeof linkGlobal.SharedWorker === "function" && lockManager()) return "worker";
  if (typeof linkGlobal.BroadcastChannel === "function" && lockManager()) return "leader";
  return "none";
}
