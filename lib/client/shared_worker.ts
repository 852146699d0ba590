/**
 * The SharedWorker script (`/assets/switchboard-worker.js`): one engine for every tab of the
 * browser that opens the worker under the same name (one name per endpoint and identity).
 * A tab says `hello` once it holds its life lock; the worker asks for that lock and is granted
 * it when the tab is gone, then leaves what only that tab had joined.
 * Bundled by `scripts/vendor_assets.ts`.
 * @module
 */
import { Engine } from "./engine.ts";
import { lockManager, tabLockName } from "./link.ts";
import type { EngineMessage, EngineOptions, TabMessage } from "./wire.ts";

type Hello = { t: "hello"; from: string; options: EngineOptions };

const scope = globalThis as unknown as {
  onconnect: ((event: { ports: MessagePort[] }) => void) | null;
};

let engine: Engine | undefined;
const ports = new Map<string, MessagePort>();

function route(msg: EngineMessage): void {
  for (const tab of msg.to) ports.get(tab)?.postMessage(msg);
}

function forget(tab: string): void {
  ports.delete(tab);
  engine?.dropTab(tab);
}

scope.onconnect = (event) => {
  const port = event.ports[0];
  port.onmessage = (e: MessageEvent<TabMessage | Hello>) => {
    const msg = e.data;
    if (msg.t === "hello") {
      engine ??= new Engine(msg.options, route);
      const watching = ports.has(msg.from);
      ports.set(msg.from, port);
      if (!watching) void lockManager()?.request(tabLockName(msg.from), {}, () => forget(msg.from));
      return;
    }
    if (msg.t === "bye") ports.delete(msg.from);
    engine?.handle(msg);
  };
  port.start();
};
