/**
 * Serves an app in this test process on a free loopback port, for suites that use channels of
 * their own or look inside the node (the real process is `server.ts`'s `startServer`).
 *
 * @example
 * ```ts
 * await using app = serveInProcess({ channels, env: { PRESENCE_BATCH_MS: "5" } });
 * const socket = await connectSocket(app.socketUrl, {});
 * ```
 * @module
 */
import type { ChannelDefinition } from "../../lib/core/channel.ts";
import { Switchboard } from "../../lib/core/switchboard.ts";
import type { Clock } from "../../lib/core/time.ts";
import { type Config, loadConfig } from "../../lib/config.ts";
import { authenticateFor } from "../../lib/server.ts";
import { denoRuntime } from "../../lib/runtime/deno.ts";
import { createApp } from "../../routes/app.ts";

/** An app served in-process. */
export interface InProcessApp extends AsyncDisposable {
  switchboard: Switchboard<Config>;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The Phoenix socket endpoint, `ws://127.0.0.1:<port>/socket`. */
  socketUrl: string;
  close(): Promise<void>;
}

/** What {@link serveInProcess} serves. */
export interface InProcessOptions {
  // deno-lint-ignore no-explicit-any
  channels: ChannelDefinition<any>[];
  /** Environment variables, as `loadConfig` reads them. */
  env?: Record<string, string>;
  clock?: Clock;
}

/** Serves `channels` with `env` on a free port of 127.0.0.1. */
export function serveInProcess({ channels, env = {}, clock }: InProcessOptions): InProcessApp {
  const config = loadConfig(env);
  const switchboard = new Switchboard({
    config,
    channels,
    clock,
    authenticate: authenticateFor(config),
  });
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    createApp(switchboard, { upgrade: denoRuntime.upgrade, pages: true }).fetch,
  );
  const base = `127.0.0.1:${server.addr.port}`;
  const close = async () => {
    await switchboard.close();
    await server.shutdown();
  };
  return {
    switchboard,
    url: `http://${base}`,
    socketUrl: `ws://${base}/socket`,
    close,
    [Symbol.asyncDispose]: close,
  };
}
