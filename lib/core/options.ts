/**
 * What the core reads of its configuration, and nothing else: the node's id, the resume window,
 * presence timing and the per-session limits. The environment-shaped configuration
 * (`lib/config.ts`: ports, Redis, API tokens) stays with the server wiring, which passes it
 * whole (it is a superset); an embedder passes only what it wants to change.
 *
 * @example
 * ```ts
 * const options = nodeOptions({ nodeId: "eu-1", maxTopicsPerSession: 20 });
 * options.heartbeatTimeoutMs; // 60000
 * ```
 * @module
 */
import { DEFAULT_HISTORY, type HistoryLimits } from "../resume/history.ts";
import type { UserQuotaLimits } from "./user_quotas.ts";

/** The fields the core reads, every one resolved (see {@link nodeOptions}). */
export interface NodeOptions {
  /** This node's name in the cluster (`NODE_ID`); default: 8 random characters. */
  nodeId: string;
  /** Each topic's resume window (`HISTORY_*`). */
  history: HistoryLimits;
  /** Presence diffs are batched this long (`PRESENCE_BATCH_MS`). */
  presenceBatchMs: number;
  /** A leave waits this long for the same key to come back (`PRESENCE_LEAVE_GRACE_MS`). */
  presenceLeaveGraceMs: number;
  /** Origins allowed to connect (`ALLOWED_ORIGINS`); undefined: any. */
  allowedOrigins?: readonly string[];
  /** Seconds a session outlives its token's `exp` (`TOKEN_LEEWAY_SECONDS`, clock skew). */
  tokenLeewaySeconds: number;
  /** A WebSocket session silent this long is closed (`HEARTBEAT_TIMEOUT_MS`). */
  heartbeatTimeoutMs: number;
  /** Largest client frame (`MAX_FRAME_BYTES`). */
  maxFrameBytes: number;
  /** Pushes per second and burst per session (`PUSH_RATE_PER_SEC`, `PUSH_BURST`). */
  pushRate: { perSecond: number; burst: number };
  /** Topics one session may join (`MAX_TOPICS_PER_SESSION`). */
  maxTopicsPerSession: number;
  /** Deepest nesting of any payload or presence meta (`MAX_PAYLOAD_DEPTH`). */
  maxPayloadDepth: number;
  /** A client's unread output budget (`MAX_OUTBOUND_BYTES`); a replay is paced by it. */
  maxOutboundBytes: number;
  /** Per-meta and per-user bounds (`MAX_PRESENCE_META_BYTES`, `MAX_*_PER_USER`). */
  limits: UserQuotaLimits;
  /** The long-poll sessions' own budget (`MAX_LONGPOLL_SESSIONS*`, `LONGPOLL_FIRST_POLL_MS`). */
  longpoll: LongPollLimits;
  /** The connection cap (`MAX_CONNECTIONS`), when set: long-polls get a quarter of it. */
  maxConnections?: number;
}

/** Long-poll sessions hold no TCP connection between polls: their own, smaller budget. */
export interface LongPollLimits {
  /** Sessions on the node; unset: a quarter of `maxConnections` (2,500 without a cap). */
  maxSessions?: number;
  /** Sessions per client address. */
  maxSessionsPerAddress: number;
  /** A session that has not polled again within this long after it was created ends. */
  firstPollMs: number;
}

/** The defaults of {@link NodeOptions}; `lib/config.ts` uses the same numbers for its env. */
export const NODE_DEFAULTS: Readonly<Omit<NodeOptions, "nodeId" | "allowedOrigins">> = Object
  .freeze({
    history: DEFAULT_HISTORY,
    presenceBatchMs: 20,
    presenceLeaveGraceMs: 2_000,
    tokenLeewaySeconds: 30,
    heartbeatTimeoutMs: 60_000,
    maxFrameBytes: 64 * 1024,
    pushRate: Object.freeze({ perSecond: 50, burst: 100 }),
    maxTopicsPerSession: 100,
    maxPayloadDepth: 32,
    maxOutboundBytes: 2 * 1024 * 1024,
    limits: Object.freeze({
      presenceMetaBytes: 32 * 1024,
      presencesPerUser: 200,
      presenceBytesPerUser: 2 * 1024 * 1024,
      topicsPerUser: 1000,
    }),
    longpoll: Object.freeze({ maxSessionsPerAddress: 50, firstPollMs: 5_000 }),
  });

/**
 * The core's options with defaults filled in. Extra fields of `input` (a whole server
 * configuration) are not copied: the core sees only what it reads.
 */
export function nodeOptions(input: Partial<NodeOptions> = {}): NodeOptions {
  return {
    nodeId: input.nodeId ?? crypto.randomUUID().slice(0, 8),
    history: input.history ?? NODE_DEFAULTS.history,
    presenceBatchMs: input.presenceBatchMs ?? NODE_DEFAULTS.presenceBatchMs,
    presenceLeaveGraceMs: input.presenceLeaveGraceMs ?? NODE_DEFAULTS.presenceLeaveGraceMs,
    allowedOrigins: input.allowedOrigins,
    tokenLeewaySeconds: input.tokenLeewaySeconds ?? NODE_DEFAULTS.tokenLeewaySeconds,
    heartbeatTimeoutMs: input.heartbeatTimeoutMs ?? NODE_DEFAULTS.heartbeatTimeoutMs,
    maxFrameBytes: input.maxFrameBytes ?? NODE_DEFAULTS.maxFrameBytes,
    pushRate: input.pushRate ?? NODE_DEFAULTS.pushRate,
    maxTopicsPerSession: input.maxTopicsPerSession ?? NODE_DEFAULTS.maxTopicsPerSession,
    maxPayloadDepth: input.maxPayloadDepth ?? NODE_DEFAULTS.maxPayloadDepth,
    maxOutboundBytes: input.maxOutboundBytes ?? NODE_DEFAULTS.maxOutboundBytes,
    limits: input.limits ?? NODE_DEFAULTS.limits,
    longpoll: input.longpoll ?? NODE_DEFAULTS.longpoll,
    maxConnections: input.maxConnections,
  };
}
