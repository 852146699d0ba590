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
 * @module
 */
import { Engine } from "./engine.ts";
import {
  type EngineMessage,
  type EngineOptions,
  fingerprint,
  type ResumeSnapshot,
  ResumeState,
  type TabMessage,
} from "./wire.ts";

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

/** Options of {@link openLink}. */
export interface LinkOptions {
  engine: EngineOptions;
  share: "auto" | "worker" | "leader" | "none";
  /** URL of the SharedWorker script (served as `/assets/switchboard-worker.js`). */
  workerUrl: string;
  /** A leader silent this long is taken over (default 4000 ms). */
  leaderTimeoutMs: number;
}

interface LockManager {
  request(
    name: string,
    options: { steal?: boolean; ifAvailable?: boolean },
    callback: (lock: unknown) => Promise<unknown> | unknown,
  ): Promise<unknown>;
}

interface SharedWorkerLike {
  port: MessagePort;
  onerror: ((event: unknown) => void) | null;
}

type Global = {
  SharedWorker?: new (url: string, options: { name: string }) => SharedWorkerLike;
  BroadcastChannel?: typeof BroadcastChannel;
  navigator?: { locks?: LockManager };
  addEventListener?: (type: string, listener: (event: { persisted?: boolean }) => void) => void;
};
const _global = globalThis as unknown as Global;

/** The Web Locks API, when this runtime has it. */
export function lockManager(): LockManager | undefined {
  return _global.navigator?.locks;
}

/** Name of the lock a tab holds while it lives. */
export function tabLockName(tab: string): string {
  return `switchboard-tab:${tab}`;
}

/** Holds this tab's life lock, then calls `ready` (at once without Web Locks). */
function holdTabLock(tab: string, ready: () => void): void {
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
  if (typeof _global.SharedWorker === "function" && lockManager()) return "worker";
  if (typeof _global.BroadcastChannel === "function" && lockManager()) return "leader";
  return "none";
}

/** Opens the link for a tab. */
export function openLink(options: LinkOptions): Link {
  const tab = crypto.randomUUID();
  const wanted = options.share === "auto" ? availableSharing() : options.share;
  // One engine per endpoint and identity: tabs connected as someone else do not share.
  const key = fingerprint("switchboard", { ...options.engine }).toString(36);
  if (wanted === "worker" && _global.SharedWorker && lockManager()) {
    return workerLink(tab, key, options);
  }
  if (wanted !== "none" && _global.BroadcastChannel && lockManager()) {
    return leaderLink(tab, key, options);
  }
  return directLink(tab, options);
}

const _noop = () => {};

function directLink(tab: string, options: LinkOptions): Link {
  const link: Link = {
    tab,
    mode: "none",
    send: (msg) => engine.handle(msg),
    onMessage: _noop,
    onResync: _noop,
    close: () => engine.close(),
  };
  const engine = new Engine(options.engine, (msg) => {
    if (msg.to.includes(tab)) link.onMessage(msg);
  });
  return link;
}

function workerLink(tab: string, key: string, options: LinkOptions): Link {
  const worker = new _global.SharedWorker!(options.workerUrl, { name: `switchboard:${key}` });
  const port = worker.port;
  let ready = false;
  let fallback: Link | undefined;
  const queue: TabMessage[] = [];
  const hello = () => port.postMessage({ t: "hello", from: tab, options: options.engine });
  const link: Link = {
    tab,
    get mode() {
      return fallback?.mode ?? "worker";
    },
    send(msg) {
      if (fallback) fallback.send(msg);
      else if (ready) port.postMessage(msg);
      else queue.push(msg);
    },
    onMessage: _noop,
    onResync: _noop,
    close() {
      port.postMessage({ t: "bye", from: tab });
      port.close();
      fallback?.close();
    },
  };
  port.onmessage = (e: MessageEvent<EngineMessage>) => {
    if (!fallback && e.data.to.includes(tab)) link.onMessage(e.data);
  };
  port.start();
  // The worker script failed to load (blocked, or no module support): share by leader.
  worker.onerror = () => {
    if (fallback || ready) return;
    fallback = leaderLink(tab, key, options);
    fallback.onMessage = (msg) => link.onMessage(msg);
    fallback.onResync = () => link.onResync();
    for (const msg of queue.splice(0)) fallback.send(msg);
  };
  holdTabLock(tab, () => {
    if (fallback) return;
    hello();
    ready = true;
    for (const msg of queue.splice(0)) port.postMessage(msg);
  });
  _global.addEventListener?.("pagehide", () => ready && port.postMessage({ t: "bye", from: tab }));
  _global.addEventListener?.("pageshow", (e) => {
    if (!e.persisted || !ready || fallback) return; // back from the back-forward cache
    hello();
    link.onResync();
  });
  return link;
}

type Bus =
  /** For the engine of the leader `to` (a stale leader back from being frozen ignores it). */
  | { kind: "tab"; to: string; msg: TabMessage }
  /** From the engine of leader `id` (followers heed only the current leader). */
  | { kind: "engine"; id: string; msg: EngineMessage }
  | { kind: "leader"; id: string }
  | { kind: "beat"; id: string }
  | { kind: "who" }
  /** Are you there? The leader answers with a beat. */
  | { kind: "ping" }
  | { kind: "snapshot"; id: string; resume: ResumeSnapshot };

function leaderLink(tab: string, key: string, options: LinkOptions): Link {
  const bus = new _global.BroadcastChannel!(`switchboard:${key}`);
  const locks = lockManager()!;
  const lockName = `switchboard-leader:${key}`;
  const mirror = new ResumeState();
  let engine: Engine | undefined;
  let leaderId: string | undefined;
  let lastHeard = Date.now();
  let stepDown: (() => void) | undefined;
  let beat: ReturnType<typeof setInterval> | undefined;
  let closed = false;
  const queue: TabMessage[] = [];
  const watched = new Set<string>();
  const post = (data: Bus) => !closed && bus.postMessage(data);

  const link: Link = {
    tab,
    get mode() {
      return engine ? "leader" as const : "follower" as const;
    },
    send(msg) {
      if (engine) engine.handle(msg);
      else if (leaderId) post({ kind: "tab", to: leaderId, msg });
      else queue.push(msg); // nobody leads yet: sent with the subscriptions once someone does
    },
    onMessage: _noop,
    onResync: _noop,
    close() {
      link.send({ t: "bye", from: tab });
      closed = true;
      resign();
      clearInterval(watchdog);
      bus.close();
    },
  };

  const resign = () => {
    clearInterval(beat);
    engine?.close();
    engine = undefined;
    stepDown?.();
    stepDown = undefined;
  };

  const lead = () => {
    if (closed) return new Promise<void>(() => {});
    // Resume from what this tab mirrored of the previous leader's engine.
    engine = new Engine(options.engine, (msg) => {
      post({ kind: "engine", id: tab, msg });
      if (msg.to.includes(tab)) link.onMessage(msg);
      for (const other of msg.to) watch(other);
    }, mirror);
    leaderId = tab;
    post({ kind: "leader", id: tab });
    beat = setInterval(() => post({ kind: "beat", id: tab }), 1_000);
    queue.length = 0;
    link.onResync();
    return new Promise<void>((resolve) => stepDown = resolve);
  };

  // A follower that closes releases its life lock: the leader's engine forgets it then.
  const watch = (other: string) => {
    if (other === tab || watched.has(other)) return;
    watched.add(other);
    void locks.request(tabLockName(other), {}, () => {
      watched.delete(other);
      engine?.dropTab(other);
    });
  };

  /** A plain (not stealing) lock request of this tab is waiting in line. */
  let inLine = false;
  const campaign = (steal: boolean) => {
    if (closed || (!steal && inLine)) return;
    if (!steal) inLine = true;
    const request = locks.request(lockName, steal ? { steal: true } : {}, () => {
      if (!steal) inLine = false;
      return lead();
    });
    void request.then(
      () => campaign(false), // stepped down for another leader: wait in line again
      () => {
        // Stolen while this tab was frozen: another tab leads now; follow it.
        if (!steal) inLine = false;
        resign();
        leaderId = undefined;
        post({ kind: "who" });
        campaign(false);
      },
    );
  };

  bus.onmessage = (e: MessageEvent<Bus>) => {
    const data = e.data;
    if (data.kind === "tab") {
      if (engine && data.to === tab) engine.handle(data.msg);
      return;
    }
    if (data.kind === "ping") {
      if (engine) post({ kind: "beat", id: tab });
      return;
    }
    if (data.kind === "who") {
      // A tab starts following: it needs what happened before it came to take over later.
      if (engine) post({ kind: "snapshot", id: tab, resume: engine.resume.snapshot() });
      if (engine) post({ kind: "leader", id: tab });
      return;
    }
    lastHeard = Date.now();
    if (data.kind === "snapshot") {
      // Sent by the leader in order with its messages: from here on they apply to it.
      if (!engine) mirror.restore(data.resume);
      return;
    }
    if (data.kind === "leader" && engine && data.id !== tab) {
      // This tab was frozen and another took over meanwhile: the other one leads.
      resign();
    }
    if (data.kind === "engine") {
      if (engine || data.id !== leaderId) return; // only the current leader's messages count
      mirror.observe(data.msg);
      if (data.msg.to.includes(tab)) link.onMessage(data.msg);
    } else if (data.kind === "leader" && !engine && data.id !== leaderId) {
      leaderId = data.id;
      for (const msg of queue.splice(0)) post({ kind: "tab", to: data.id, msg });
      link.onResync();
    }
  };

  // A frozen leader keeps its lock but stops beating and answering: take over (each tab waits
  // a little differently, so one tab steals and the others follow it).
  const patience = options.leaderTimeoutMs * (1 + Math.random() * 0.5);
  // A hidden tab's timers may run once a minute (Chrome's intensive throttling) while its
  // message handlers still run: ask before stealing, and steal only without an answer.
  let pingedAt = 0;
  const watchdog = setInterval(() => {
    if (engine || closed) return;
    const now = Date.now();
    if (now - lastHeard < patience) return void (pingedAt = 0);
    if (!pingedAt) {
      pingedAt = now;
      return void post({ kind: "ping" });
    }
    if (now - pingedAt < 1_000) return;
    pingedAt = 0;
    lastHeard = now;
    campaign(true);
  }, 500);

  holdTabLock(tab, () => {
    post({ kind: "who" });
    campaign(false);
  });
  _global.addEventListener?.("pagehide", () => link.send({ t: "bye", from: tab }));
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
