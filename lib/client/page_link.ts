/**
 * A page's link: opened in the mode the options ask for (see `link.ts`), once per page and
 * options, and shared by the clients of the page; the last one to leave closes it.
 *
 * @example
 * ```ts
 * const handle = acquireLink(options, { onMessage: console.log, onResync: () => {} });
 * const cid = handle.nextId();
 * handle.release();
 * ```
 * @module
 */
import { Engine } from "./engine.ts";
import { leaderLink } from "./leader_link.ts";
import { availableSharing, type Link, linkGlobal, type LinkOptions, lockManager } from "./link.ts";
import { type EngineMessage, fingerprint } from "./wire.ts";
import { workerLink } from "./worker_link.ts";

/** Opens the link for a tab. */
export function openLink(options: LinkOptions): Link {
  const tab = crypto.randomUUID();
  const wanted = options.share === "auto" ? availableSharing() : options.share;
  // One engine per endpoint and identity: tabs connected as someone else do not share.
  const key = fingerprint("switchboard", { ...options.engine }).toString(36);
  if (wanted === "worker" && linkGlobal.SharedWorker && lockManager()) {
    return workerLink(tab, key, options);
  }
  if (wanted !== "none" && linkGlobal.BroadcastChannel && lockManager()) {
    return leaderLink(tab, key, options);
  }
  return directLink(tab, options);
}

/** The engine in this tab (mode `none`). */
function directLink(tab: string, options: LinkOptions): Link {
  const link: Link = {
    tab,
    mode: "none",
    send: (msg) => engine.handle(msg),
    onMessage: () => {},
    onResync: () => {},
    close: () => engine.close(),
  };
  const engine = new Engine(options.engine, (msg) => {
    if (msg.to.includes(tab)) link.onMessage(msg);
  });
  return link;
}

/** A client using a link: it gets every message for the tab and ignores other clients' ids. */
export interface LinkUser {
  onMessage(msg: EngineMessage): void;
  onResync(): void;
}

/** A client's share of its page's link. */
export interface LinkHandle {
  readonly link: Link;
  /** A channel or feed id unique in the page (clients of one page share the link). */
  nextId(): number;
  /** The client is done; the last one closes the link. */
  release(): void;
}

interface LinkEntry {
  link: Link;
  users: Set<LinkUser>;
  ids: number;
}

/**
 * The page's link for these options, opened on first use. Kept on `globalThis` so that
 * separately bundled scripts of one page (a page script and `/assets/switchboard-client.js`)
 * are one tab for the engine, not several.
 */
export function acquireLink(options: LinkOptions, user: LinkUser): LinkHandle {
  const registry =
    ((globalThis as Record<symbol, unknown>)[Symbol.for("switchboard.links")] ??= new Map()) as Map<
      string,
      LinkEntry
    >;
  const key = JSON.stringify(options);
  let entry = registry.get(key);
  if (!entry) {
    const created: LinkEntry = { link: openLink(options), users: new Set(), ids: 0 };
    created.link.onMessage = (msg) => {
      for (const u of [...created.users]) u.onMessage(msg);
    };
    created.link.onResync = () => {
      for (const u of [...created.users]) u.onResync();
    };
    registry.set(key, entry = created);
  }
  const shared = entry;
  shared.users.add(user);
  return {
    link: shared.link,
    nextId: () => ++shared.ids,
    release() {
      shared.users.delete(user);
      if (shared.users.size > 0) return;
      registry.delete(key);
      shared.link.close();
    },
  };
}
