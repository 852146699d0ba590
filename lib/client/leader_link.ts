/**
 * The leader link: where there is no SharedWorker (Chrome on Android, Safari before 16), the
 * tabs of a browser elect one with the Web Locks API; it runs the engine and the others talk to
 * it over a `BroadcastChannel`. Every tab mirrors the engine's resume state from what it hears,
 * so when the leader closes (its lock is released) or freezes (its heartbeat stops; the next
 * tab steals the lock), the next one resumes from the cursor.
 *
 * @example
 * ```ts
 * const link = leaderLink(crypto.randomUUID(), "key", options);
 * link.onMessage = (msg) => console.log(msg);
 * ```
 * @module
 */
import { Engine } from "./engine.ts";
import {
  holdTabLock,
  type Link,
  linkGlobal,
  type LinkOptions,
  lockManager,
  tabLockName,
} from "./link.ts";
import { type EngineMessage, type ResumeSnapshot, ResumeState, type TabMessage } from "./wire.ts";

/** What the tabs say on the bus. */
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

/** Opens the link of a tab that leads or follows, on the bus and lock named by `key`. */
export function leaderLink(tab: string, key: string, options: LinkOptions): Link {
  const bus = new linkGlobal.BroadcastChannel!(`switchboard:${key}`);
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
    onMessage: () => {},
    onResync: () => {},
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
  linkGlobal.addEventListener?.("pagehide", () => link.send({ t: "bye", from: tab }));
  return link;
}
