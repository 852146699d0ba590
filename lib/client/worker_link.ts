/**
 * The worker link: a `SharedWorker` (`/assets/switchboard-worker.js`) runs the engine and each
 * tab talks to it over its port; where the script fails to load, the tab falls back to the
 * leader link.
 *
 * @example
 * ```ts
 * const link = workerLink(crypto.randomUUID(), "key", options);
 * link.send({ t: "join", from: link.tab, cid: 1, topic: "record:1", params: {} });
 * ```
 * @module
 */
import { leaderLink } from "./leader_link.ts";
import { holdTabLock, type Link, linkGlobal, type LinkOptions } from "./link.ts";
import type { EngineMessage, TabMessage } from "./wire.ts";

/** Opens the link of a tab to the browser's shared worker for `key`. */
export function workerLink(tab: string, key: string, options: LinkOptions): Link {
  const worker = new linkGlobal.SharedWorker!(options.workerUrl, { name: `switchboard:${key}` });
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
    onMessage: () => {},
    onResync: () => {},
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
  linkGlobal.addEventListener?.(
    "pagehide",
    () => ready && port.postMessage({ t: "bye", from: tab }),
  );
  linkGlobal.addEventListener?.("pageshow", (e) => {
    if (!e.persisted || !ready || fallback) return; // back from the back-forward cache
    hello();
    link.onResync();
  });
  return link;
}
