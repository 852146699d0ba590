/**
 * One Switchboard node: config, channels, hub, broker, presence, metrics and the live sessions,
 * behind a small façade (Centrifuge's `Node` is the model): {@link Switchboard.publish},
 * {@link Switchboard.lastMessage}, {@link Switchboard.presenceOf},
 * {@link Switchboard.brokerState}. Routes and pages use the façade; transports admit clients
 * and open sessions on it.
 *
 * @example
 * ```ts
 * const switchboard = new Switchboard({ config: { nodeId: "eu-1" }, channels: [status, record] });
 * switchboard.publish("status:acme", "status", { state: "operational" });
 * const last = await switchboard.lastMessage("status:acme");
 * await switchboard.close();
 * ```
 * @module
 */
import { type AccessDecision, decideAccess } from "./access.ts";
import { type BrokerState, MessageTooLargeError } from "./broker.ts";
import { MemoryBroker } from "./broker_memory.ts";
import { defaultLogger, describeError, type Logger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { formatCursor } from "../resume/cursor.ts";
import type { Broadcast } from "./broadcast.ts";
import { ChannelRouter } from "./channel.ts";
import { Hub } from "./hub.ts";
import { UserQuotas } from "./user_quotas.ts";
import { AddressBudget, HeldConnections } from "./admission.ts";
import type { Payload } from "./message.ts";
import { LocalOccupancy, type NodeExtensions } from "./occupancy.ts";
import { Revocations } from "./revocations.ts";
import type { Authenticate } from "./identity.ts";
import type { Identity, IdentityCheck, SessionServices } from "./session_services.ts";
import { type NodeOptions, nodeOptions } from "./options.ts";
import { type PresenceState, PresenceTracker } from "./presence.ts";
import { crowdSettingsOf } from "./crowd.ts";
import {
  CloseCode,
  EndReason,
  eventNameProblem,
  RefusalReason,
  type RefusalReasonName,
  ReplyReason,
  TOKEN_EXPIRED_REASON,
  unmatchedTopicError,
} from "./protocol.ts";
import { Session } from "./session.ts";
import type { OpenSession, SwitchboardOptions } from "./switchboard_options.ts";
import { registerNodeMetrics } from "./node_metrics.ts";
import { disconnectUser, unsubscribeUser } from "./user_sessions.ts";
import { checkOutbound, outboundProblems } from "./outbound.ts";
import type { FieldError } from "./validation.ts";
import { type Clock, plainTimers, type Timers } from "./time.ts";

export type { Identity } from "./session_services.ts";
export type { OpenSession, SwitchboardOptions } from "./switchboard_options.ts";
export type { AccessDecision } from "./access.ts";
export type { Clock } from "./time.ts";

/** The outcome of {@link Switchboard.admit}. */
export type Admission =
  | { ok: true; identity: Identity }
  | { ok: false; status: 401 | 403; error: string; reason: RefusalReasonName };

/** A token failure's kind (see lib/auth.ts) as the refusal word clients see. */
const _TOKEN_REFUSALS: Readonly<Record<string, RefusalReasonName>> = {
  expired: RefusalReason.tokenExpired,
  bad_signature: RefusalReason.badSignature,
  malformed: RefusalReason.tokenMalformed,
  algorithm_not_allowed: RefusalReason.algorithmNotAllowed,
  not_yet_valid: RefusalReason.tokenNotYetValid,
};

const _NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

function _anonymousId(): string {
  return `anon-${crypto.randomUUID().slice(0, 8)}`;
}

/** A Switchboard node: the sessions of this process and the façade routes use. */
export class Switchboard<C extends Partial<NodeOptions> = Partial<NodeOptions>>
  implements SessionServices {
  /** The configuration as given (the server wiring's, for the routes). */
  readonly config: C;
  /** What the core reads of it, defaults filled in. */
  readonly options: NodeOptions;
  readonly router: ChannelRouter;
  readonly hub: Hub;
  readonly presence: PresenceTracker;
  readonly metrics: Metrics = new Metrics();
  /** This node's subscribers and users per topic (every transport). */
  readonly occupancy: LocalOccupancy = new LocalOccupancy();
  /** Users disconnected by the backend: their old tokens are refused. */
  readonly revocations: Revocations = new Revocations();
  /**
   * Occupancy and the server API (`/api/occupancy`, `/api/disconnect`, `/api/unsubscribe`):
   * this node's by default, the cluster's once `lib/extensions.ts` plugs them in.
   */
  extensions: NodeExtensions = {
    occupancy: this.occupancy,
    disconnect: (userId) => this.disconnectLocal(userId),
    unsubscribe: (userId, topic) => this.unsubscribeLocal(userId, topic),
  };
  /** Per-user bounds over all of a user's sockets (`user_quotas.ts`). */
  readonly quotas: UserQuotas;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly #sweepTimers: Timers;
  readonly log: Logger;
  readonly startedAt: number;
  readonly #sessions = new Set<Session>();
  readonly #forget = (session: Session) => {
    if (this.#sessions.has(session) && session.transport === "websocket") this.#websockets--;
    this.#unregister(session);
  };
  readonly #authenticate?: Authenticate;
  /** Open WebSocket sessions (issue 21: see {@link connectedCount}). */
  #websockets = 0;
  /** SSE responses, counted until their socket is done with them (`admission.ts`). */
  readonly sseResponses: HeldConnections = new HeldConnections();
  /** Long-poll sessions: their own budget, per client address too (`admission.ts`). */
  readonly longPolls: AddressBudget;
  #stopSweeper?: () => void;

  constructor(options: SwitchboardOptions<C>) {
    this.config = options.config;
    this.options = nodeOptions(options.config);
    this.#authenticate = options.authenticate;
    this.clock = options.clock ?? Date;
    this.timers = options.timers ?? plainTimers;
    this.#sweepTimers = options.sweepTimers ?? this.timers;
    this.log = options.log ?? defaultLogger;
    this.startedAt = this.clock.now();
    this.router = new ChannelRouter(options.channels);
    this.hub = new Hub({
      broker: options.broker ?? new MemoryBroker(),
      nodeId: this.options.nodeId,
      history: this.options.history,
      clock: this.clock,
      log: this.log,
      occupancy: this.occupancy,
      onError: (err, where) => this.containedError(where, err),
    });
    this.quotas = new UserQuotas(this.options.limits);
    const { maxSessions, maxSessionsPerAddress } = this.options.longpoll;
    const cap = this.options.maxConnections;
    this.longPolls = new AddressBudget({
      // A quarter of the connection cap by default: long-polls cannot crowd out the rest.
      total: maxSessions ?? (cap ? Math.max(1, Math.floor(cap / 4)) : 2_500),
      perAddress: maxSessionsPerAddress,
      what: "long-poll sessions",
    });
    this.presence = new PresenceTracker(this.hub, {
      batchMs: this.options.presenceBatchMs,
      leaveGraceMs: this.options.presenceLeaveGraceMs,
      onError: (err, at) => this.containedError(`presence ${at.step}`, err, { ...at }),
      onSplit: () => this.metrics.inc("switchboard_presence_diffs_split_total"),
      timers: this.timers,
      crowdSettings: (topic) => {
        const channel = this.router.match(topic)?.channel;
        return channel && crowdSettingsOf(channel);
      },
    });
    registerNodeMetrics(this, () => this.#sessions);
  }

  // ---- The façade: what routes, pages and embedders use. ----

  /**
   * Logs and counts (`switchboard_contained_errors_total{where}`) a failure that was kept to
   * its key, topic or session instead of ending the process.
   */
  containedError(where: string, err: unknown, context: Record<string, unknown> = {}): void {
    this.metrics.inc("switchboard_contained_errors_total", { where });
    this.log.error(`${where} failed; contained`, { ...context, error: describeError(err) });
  }

  /** True when a channel serves `topic`. */
  hasChannel(topic: string): boolean {
    return this.router.match(topic) !== undefined;
  }

  /**
   * Broadcasts to every subscriber of `topic` on every node (the API's publish); with `binary`,
   * a binary broadcast whose JSON metadata is `payload`. Reserved and malformed event names
   * throw (see `eventNameProblem`), and so does a JSON payload that fails the channel's
   * `messages` schema for `event` (`InvalidPayloadError`, nothing is sent): validate input
   * before calling ({@link payloadProblems}).
   */
  publish(topic: string, event: string, payload: Payload, binary?: Uint8Array): Broadcast {
    const problem = eventNameProblem(event);
    if (problem !== undefined) throw new TypeError(`event ${JSON.stringify(event)} ${problem}`);
    const channel = binary ? undefined : this.router.match(topic)?.channel;
    if (channel) checkOutbound(channel, topic, event, payload);
    return this.hub.broadcast(topic, event, payload, binary ? { binary } : undefined);
  }

  /**
   * May `identity` join and read `topic`? The same question for joins, SSE, long-poll, the
   * API's reads and the pages: the channel's `access` and `authorize` answer it. An unknown
   * topic is refused too (callers answer 404 before asking).
   */
  authorize(identity: Identity, topic: string): AccessDecision {
    const match = this.router.match(topic);
    if (!match) {
      return {
        ok: false,
        status: 403,
        reason: ReplyReason.unmatchedTopic,
        error: unmatchedTopicError(topic),
      };
    }
    return decideAccess({ channel: match.channel, identity, topic });
  }

  /**
   * Why these messages cannot be published (one is too large for the cluster bus), naming
   * it; undefined when all can. The API checks a batch before it publishes any of it.
   */
  refusalOf(
    messages: readonly { topic: string; event: string; payload: Payload }[],
  ): string | undefined {
    for (let i = 0; i < messages.length; i++) {
      try {
        this.hub.checkSize(messages[i].topic, messages[i].event, messages[i].payload);
      } catch (err) {
        if (!(err instanceof MessageTooLargeError)) throw err;
        return messages.length > 1 ? `[${i}]: ${err.message}` : err.message;
      }
    }
    return undefined;
  }

  /**
   * The fields of `payload` that fail the `messages` schema of `event` in `topic`'s channel
   * (`payload.<path>`), or undefined when it may be published: what {@link publish} refuses.
   */
  payloadProblems(topic: string, event: string, payload: Payload): FieldError[] | undefined {
    const channel = this.router.match(topic)?.channel;
    return channel ? outboundProblems(channel, event, payload) : undefined;
  }

  /** The topic's last message (not presence), from this node or the broker's shared copy. */
  lastMessage(topic: string): Promise<Broadcast | undefined> {
    return this.hub.fetchLast(topic);
  }

  /** A cursor for `topic` at its head: stream from here with `?cursor=` or `Last-Event-ID`. */
  cursorOf(topic: string): string {
    return formatCursor(new Map([[topic, this.hub.head(topic)]]));
  }

  /** Everyone present on `topic`, on every node. */
  presenceOf(topic: string): PresenceState {
    return this.presence.list(topic);
  }

  /**
   * Ends `userId`'s sessions on this node and refuses their tokens issued until now (the
   * cluster layer calls it on each node for `POST /api/disconnect`); 0 when repeated.
   */
  disconnectLocal(userId: string): number {
    this.revocations.revoke(userId, this.clock.now());
    const count = disconnectUser(this.#sessions, userId);
    if (count) this.metrics.inc("switchboard_api_disconnected_total", undefined, count);
    return count;
  }

  /** Removes `userId` from `topic` on this node; returns how many sessions left it. */
  unsubscribeLocal(userId: string, topic: string): number {
    return this.occupancy.has(topic, userId) ? unsubscribeUser(this.#sessions, userId, topic) : 0;
  }

  /** The broker's state for `/healthz` and `/metrics`. */
  brokerState(): BrokerState {
    return this.hub.broker.state();
  }

  /** Number of open sessions. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /**
   * Connections that hold a socket beyond a request and count against `MAX_CONNECTIONS`:
   * WebSocket sessions and SSE responses not done yet. Long-poll sessions hold no socket
   * between polls: their held polls count as requests in flight, the sessions against
   * {@link longPolls}.
   */
  get connectedCount(): number {
    return this.#websockets + this.sseResponses.size;
  }

  // ---- Sessions: what transports use. ----

  /**
   * True when an anonymous visitor may read `topic` (tokens are not checked, or its channel is
   * public): what shared caches (a CDN) may keep.
   */
  isPublic(topic: string): boolean {
    if (this.#authenticate === undefined) return this.hasChannel(topic);
    return this.authorize({ userId: "", anonymous: true }, topic).ok;
  }

  /**
   * Decides whether a client may connect: its origin (`ALLOWED_ORIGINS`) and, with an
   * authenticate hook (`SOCKET_SECRET`), its signed `token`. Without a token it connects as an
   * anonymous visitor when some channel is public (its joins of other channels are refused),
   * else 401. Without the hook the `user_id` param is trusted (dev).
   */
  admit(
    params: Record<string, string>,
    origin: string | null,
  ): Admission | Promise<Admission> {
    const allowed = this.options.allowedOrigins;
    if (origin !== null && allowed && !allowed.includes(origin)) {
      this.metrics.inc("switchboard_refused_total", { reason: "origin" });
      const reason = RefusalReason.originNotAllowed;
      return { ok: false, status: 403, error: `origin ${origin} is not allowed`, reason };
    }
    if (
      this.#authenticate !== undefined && !params.token && !this.router.hasPublicChannel
    ) {
      this.metrics.inc("switchboard_refused_total", { reason: "no_token" });
      const error = "token missing: connect with a signed token param";
      return { ok: false, status: 401, error, reason: RefusalReason.tokenMissing };
    }
    return this.identify(params.token, params.user_id);
  }

  /**
   * Who holds `token`: with an authenticate hook (`SOCKET_SECRET`), its verified subject (403
   * when the hook refuses it: forged, expired…), or an anonymous visitor when there is no
   * token; without the hook, `userId` (the `user_id` param) is trusted (dev). Readers of the
   * API and the pages are identified this way, then {@link authorize} decides per topic.
   */
  identify(token: string | undefined, userId?: string): Admission | Promise<Admission> {
    const authenticate = this.#authenticate;
    if (authenticate === undefined) {
      return { ok: true, identity: { userId: userId || _anonymousId() } };
    }
    if (!token) return { ok: true, identity: { userId: _anonymousId(), anonymous: true } };
    // Synchronous unless a token must be verified: an async step per connect costs garbage.
    return authenticate(token, { now: Math.floor(this.clock.now() / 1000) }).then((result) => {
      if (!result.ok) {
        this.metrics.inc("switchboard_refused_total", { reason: result.reason });
        // A hook's own reasons (not the JWT verifier's) are a generic refusal, in its words.
        const reason = _TOKEN_REFUSALS[result.reason] ?? RefusalReason.tokenRefused;
        const error = result.problem ?? `token refused: ${result.reason}`;
        return { ok: false, status: 403, error, reason } as const;
      }
      const { identity } = result;
      const issued = { sub: identity.userId, iat: identity.claims?.iat };
      if (this.revocations.refuses(issued, this.clock.now())) {
        this.metrics.inc("switchboard_refused_total", { reason: "revoked" });
        return {
          ok: false,
          status: 403,
          error: "token refused: revoked (the user was disconnected by the server); " +
            "reconnect with a token issued after the disconnect",
          reason: RefusalReason.tokenRevoked,
        } as const;
      }
      return { ok: true, identity } as const;
    });
  }

  /** Verifies a token as {@link admit} does; undefined without an authenticate hook (dev). */
  verifyIdentity(token: string): Promise<IdentityCheck> | undefined {
    if (this.#authenticate === undefined) return undefined;
    if (token === "") return Promise.resolve({ ok: false, error: "token malformed: empty" });
    return Promise.resolve(this.identify(token)).then((admission) =>
      admission.ok ? admission : { ok: false, error: admission.error }
    );
  }

  /** Opens a session for an admitted client. */
  openSession({ connection, params, identity, serializer, restored }: OpenSession): Session {
    const { token: _token, vsn: _vsn, ...rest } = params;
    const connectParams = Object.keys(rest).length ? rest : _NO_PARAMS;
    const session = new Session({
      node: this,
      connection,
      identity,
      connectParams,
      serializer,
      onClose: this.#forget,
    });
    this.#sessions.add(session);
    if (connection.transport === "websocket") this.#websockets++;
    if (!restored) {
      this.metrics.inc("switchboard_connections_total", { transport: connection.transport });
    }
    this.#startSweeper();
    return session;
  }

  /**
   * The node's one sweep over its sessions: closes WebSocket sessions that sent nothing for
   * `heartbeatTimeoutMs` (the Phoenix client sends a heartbeat every 30 s), and sessions of
   * every transport whose token expired (past `exp` plus the leeway). Returns how many
   * sessions it closed for each reason.
   */
  sweep(): { idle: number; expired: number } {
    const now = this.clock.now();
    const idleBefore = now - this.options.heartbeatTimeoutMs;
    const leewayMs = this.options.tokenLeewaySeconds * 1000;
    let idle = 0;
    let expired = 0;
    for (const session of [...this.#sessions]) {
      const exp = session.identity.claims?.exp;
      if (exp !== undefined && exp * 1000 + leewayMs <= now) {
        // WebSocket: closed with 4001, the client reconnects; SSE: the stream ends; long-poll:
        // the next poll answers 410 and the client reconnects.
        session.connection.close(CloseCode.tokenExpired, TOKEN_EXPIRED_REASON);
        session.close(EndReason.expired);
        expired++;
      } else if (
        session.transport === "websocket" && session.lastSeen <= idleBefore &&
        !((session.connection.lastPingAt?.() ?? 0) > idleBefore)
      ) {
        // SSE streams end with their TCP stream; long-poll sessions with their polls.
        session.connection.close(CloseCode.goingAway, "idle timeout: no heartbeat");
        session.close(EndReason.timeout);
        idle++;
      }
    }
    if (idle) this.metrics.inc("switchboard_idle_closed_total", undefined, idle);
    if (expired) this.metrics.inc("switchboard_expired_closed_total", undefined, expired);
    return { idle, expired };
  }

  /** {@link sweep}, counting the idle WebSocket sessions it closed. */
  sweepIdle(): number {
    return this.sweep().idle;
  }

  /** Ends every session (clients are told to come back), stops timers and the broker. */
  async close(): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const session of [...this.#sessions]) {
      session.connection.close(CloseCode.serviceRestart, "server restarting: reconnect");
      session.close(EndReason.shutdown);
      if (session.connection.whenClosed) closing.push(session.connection.whenClosed);
    }
    // Give the close frames a moment to reach the clients, but never hang on one.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(closing),
      new Promise((resolve) => timer = setTimeout(resolve, 2_000)),
    ]);
    clearTimeout(timer);
    this.#stopSweeper?.();
    this.#stopSweeper = undefined;
    this.presence.close();
    await this.extensions.close?.();
    await this.hub.broker.close();
  }

  #unregister(session: Session): void {
    this.#sessions.delete(session);
    if (this.#sessions.size === 0) {
      this.#stopSweeper?.();
      this.#stopSweeper = undefined;
    }
  }

  #startSweeper(): void {
    if (this.#stopSweeper !== undefined) return;
    const every = Math.max(250, Math.min(5_000, this.options.heartbeatTimeoutMs / 4));
    this.#stopSweeper = this.#sweepTimers.every(every, () => this.sweep());
  }
}
