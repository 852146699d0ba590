/**
 * The runtime that ties a node together: config, channels, hub, broker, presence, metrics and
 * the live sessions. Transports get one of these and open sessions on it.
 *
 * @example
 * ```ts
 * const switchboard = new Switchboard({ config: loadConfig({}), channels: [status, record] });
 * const session = switchboard.openSession(connection, { user_id: "ann" });
 * await switchboard.close();
 * ```
 * @module
 */
import { type Broker, MemoryBroker } from "./broker.ts";
import { type ChannelDefinition, ChannelRouter } from "./channel.ts";
import type { Config } from "./config.ts";
import { Hub } from "./hub.ts";
import { Metrics } from "./metrics.ts";
import { PresenceTracker } from "./presence.ts";
import { type Connection, Session } from "./session.ts";
import type { Vsn } from "./serializer.ts";

/** The source of time; tests inject a fake one. */
export interface Clock {
  now(): number;
}

/** Options of {@link Switchboard}. */
export interface SwitchboardOptions {
  config: Config;
  // deno-lint-ignore no-explicit-any
  channels: ChannelDefinition<any>[];
  /** Defaults to the in-memory broker. */
  broker?: Broker;
  clock?: Clock;
}

/** See the module documentation. */
export class Switchboard {
  readonly config: Config;
  readonly router: ChannelRouter;
  readonly hub: Hub;
  readonly presence: PresenceTracker;
  readonly metrics = new Metrics();
  readonly clock: Clock;
  readonly startedAt: number;
  readonly #sessions = new Set<Session>();
  #sweeper?: ReturnType<typeof setInterval>;

  constructor(options: SwitchboardOptions) {
    this.config = options.config;
    this.clock = options.clock ?? Date;
    this.startedAt = this.clock.now();
    this.router = new ChannelRouter(options.channels);
    this.hub = new Hub(
      options.broker ?? new MemoryBroker(),
      this.config.nodeId,
      this.config.history,
      this.clock,
    );
    this.presence = new PresenceTracker(this.hub, { batchMs: this.config.presenceBatchMs });
    this.metrics.gauge("switchboard_connections", "open sessions by transport", () => {
      const counts: Record<string, number> = { websocket: 0, longpoll: 0, sse: 0 };
      for (const s of this.#sessions) counts[s.transport]++;
      return Object.entries(counts).map(([transport, n]) => [{ transport }, n]);
    });
    this.metrics.gauge("switchboard_topics", "topics with local subscribers", () => [[
      {},
      this.hub.topicCount,
    ]]);
    this.metrics.gauge("switchboard_broker_connected", "1 when the broker is connected", () => {
      const s = this.hub.broker.state();
      return [[{ kind: s.kind }, s.connected ? 1 : 0]];
    });
    this.metrics.gauge("switchboard_broker_lag_ms", "last seen cross-node delivery lag", () => {
      const s = this.hub.broker.state();
      return [[{ kind: s.kind }, s.lagMs]];
    });
  }

  /** Opens a session for a connected client; `params` are its connect params. */
  openSession(connection: Connection, params: Record<string, string>, vsn?: Vsn): Session {
    const { token: _token, vsn: _vsn, ...connectParams } = params;
    const userId = connectParams.user_id || `anon-${crypto.randomUUID().slice(0, 8)}`;
    const session = new Session(this, connection, userId, connectParams, vsn);
    this.#sessions.add(session);
    this.metrics.inc("switchboard_connections_total", { transport: connection.transport });
    this.#startSweeper();
    return session;
  }

  /** Called by {@link Session.close}. */
  unregister(session: Session): void {
    this.#sessions.delete(session);
    if (this.#sessions.size === 0) this.#stopSweeper();
  }

  /** Number of open sessions. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /**
   * Closes WebSocket sessions that sent nothing for `heartbeatTimeoutMs` (the Phoenix client
   * sends a heartbeat every 30 s).
   */
  sweepIdle(): number {
    const deadline = this.clock.now() - this.config.heartbeatTimeoutMs;
    let closed = 0;
    for (const session of [...this.#sessions]) {
      // SSE streams end with their TCP stream; long-poll sessions with their polls.
      if (session.transport !== "websocket" || session.lastSeen > deadline) continue;
      session.connection.close(1001, "idle timeout: no heartbeat");
      session.close("timeout");
      closed++;
    }
    if (closed) this.metrics.inc("switchboard_idle_closed_total", undefined, closed);
    return closed;
  }

  /** Ends every session and stops timers and the broker. */
  async close(): Promise<void> {
    for (const session of [...this.#sessions]) {
      session.connection.close(1012, "server shutting down");
      session.close("shutdown");
    }
    this.#stopSweeper();
    this.presence.close();
    await this.hub.broker.close();
  }

  #startSweeper(): void {
    if (this.#sweeper !== undefined) return;
    const every = Math.max(250, Math.min(5_000, this.config.heartbeatTimeoutMs / 4));
    const timer = setInterval(() => this.sweepIdle(), every);
    Deno.unrefTimer(timer);
    this.#sweeper = timer;
  }

  #stopSweeper(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}
