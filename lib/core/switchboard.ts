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
import { type Broker, MemoryBroker } from "../cluster/broker.ts";
import { type ChannelDefinition, ChannelRouter } from "./channel.ts";
import type { Config } from "../config.ts";
import { Hub } from "./hub.ts";
import { Metrics } from "../metrics.ts";
import { PresenceTracker } from "./presence.ts";
import { type Connection, Session } from "./session.ts";
import type { Vsn } from "./serializer.ts";
import { type TokenClaims, verifyToken } from "../auth.ts";

/** Who a session belongs to. */
export interface Identity {
  /** The token's subject, or the `user_id` param when no `SOCKET_SECRET` is set. */
  userId: string;
  /** The verified token's claims, when there is a secret. */
  claims?: TokenClaims;
}

/** The outcome of {@link Switchboard.admit}. */
export type Admission =
  | { ok: true; identity: Identity }
  | { ok: false; status: 401 | 403; error: string };

const _NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

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
    this.metrics.counter(
      "switchboard_broadcasts_total",
      "broadcasts delivered on this node (published here or received from other nodes)",
      () => this.hub.counts.broadcasts,
    );
    this.metrics.counter(
      "switchboard_deliveries_total",
      "broadcasts handed to local subscribers (one per subscriber)",
      () => this.hub.counts.deliveries,
    );
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

  /**
   * Decides whether a client may connect: its origin (`ALLOWED_ORIGINS`) and, with
   * `SOCKET_SECRET`, its signed `token`. Without a secret the `user_id` param is trusted (dev).
   */
  admit(
    params: Record<string, string>,
    origin: string | null,
  ): Admission | Promise<Admission> {
    const allowed = this.config.allowedOrigins;
    if (origin !== null && allowed && !allowed.includes(origin)) {
      this.metrics.inc("switchboard_refused_total", { reason: "origin" });
      return { ok: false, status: 403, error: `origin ${origin} is not allowed` };
    }
    const secret = this.config.socketSecret;
    if (secret === undefined) {
      return {
        ok: true,
        identity: { userId: params.user_id || `anon-${crypto.randomUUID().slice(0, 8)}` },
      };
    }
    if (!params.token) {
      this.metrics.inc("switchboard_refused_total", { reason: "no_token" });
      return { ok: false, status: 401, error: "missing token: connect with a signed token param" };
    }
    // Synchronous unless a token must be verified: an async step per connect costs garbage.
    return verifyToken(secret, params.token, Math.floor(this.clock.now() / 1000)).then((result) => {
      if (!result.ok) {
        this.metrics.inc("switchboard_refused_total", { reason: result.reason });
        return { ok: false, status: 403, error: `token refused: ${result.reason}` } as const;
      }
      return { ok: true, identity: { userId: result.claims.sub, claims: result.claims } } as const;
    });
  }

  /** Opens a session for an admitted client; `params` are its connect params. */
  openSession(
    connection: Connection,
    params: Record<string, string>,
    identity: Identity,
    vsn?: Vsn,
  ): Session {
    const { token: _token, vsn: _vsn, ...rest } = params;
    const connectParams = Object.keys(rest).length ? rest : _NO_PARAMS;
    const session = new Session(this, connection, identity, connectParams, vsn);
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
    const closing: Promise<void>[] = [];
    for (const session of [...this.#sessions]) {
      session.connection.close(1012, "server restarting: reconnect");
      session.close("shutdown");
      if (session.connection.whenClosed) closing.push(session.connection.whenClosed);
    }
    // Give the close frames a moment to reach the clients, but never hang on one.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(closing),
      new Promise((resolve) => timer = setTimeout(resolve, 2_000)),
    ]);
    clearTimeout(timer);
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
