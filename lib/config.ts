/**
 * Server configuration from the environment, validated with zod.
 *
 * @example
 * ```ts
 * const config = loadConfig({ PORT: "8080" });
 * config.port; // 8080
 * ```
 * @module
 */
import { z } from "zod";
import { type LongPollLimits, NODE_DEFAULTS as _D } from "./core/options.ts";
import type { UserQuotaLimits } from "./core/user_quotas.ts";
import { DEFAULT_HISTORY_MAX_BYTES } from "./resume/history.ts";

const _port = z.coerce.number().int().min(0).max(65535);
const _positiveInt = z.coerce.number().int().positive();

const _schema = z.object({
  PORT: _port.default(8000),
  HOST: z.string().min(1).default("0.0.0.0"),
  API_TOKEN: z.string().min(1).optional(),
  SOCKET_SECRET: z.string().min(16, "must be at least 16 characters").optional(),
  TOKEN_LEEWAY_SECONDS: z.coerce.number().int().min(0).max(300).default(_D.tokenLeewaySeconds),
  UPSTASH_REDIS_REST_URL: z.url().optional(),
  UPSTASH_REDIS_REST_TOKEN: z.string().min(1).optional(),
  REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, "use letters, digits, _ . : -")
    .default("switchboard"),
  REDIS_HEARTBEAT_MS: _positiveInt.min(100).max(12_000).default(10_000),
  NODE_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "use letters, digits, _ . - (1-64)")
    .optional(),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  MAX_FRAME_BYTES: _positiveInt.default(_D.maxFrameBytes),
  MAX_API_BODY_BYTES: _positiveInt.default(1024 * 1024),
  MAX_PAYLOAD_DEPTH: _positiveInt.max(1000).default(_D.maxPayloadDepth),
  HEARTBEAT_TIMEOUT_MS: _positiveInt.default(_D.heartbeatTimeoutMs),
  SSE_HEARTBEAT_MS: _positiveInt.default(15_000),
  PRESENCE_BATCH_MS: z.coerce.number().int().min(0).default(_D.presenceBatchMs),
  PRESENCE_LEAVE_GRACE_MS: z.coerce.number().int().min(0).max(60_000).default(
    _D.presenceLeaveGraceMs,
  ),
  HISTORY_SIZE: _positiveInt.max(100_000).default(_D.history.size),
  HISTORY_MAX_AGE_MS: _positiveInt.default(_D.history.maxAgeMs),
  HISTORY_MAX_BYTES: _positiveInt.default(DEFAULT_HISTORY_MAX_BYTES),
  MAX_LONGPOLL_BODY_BYTES: _positiveInt.default(1024 * 1024),
  MAX_CONNECTIONS: z.coerce.number().int().min(0).optional(),
  CLOSE_TIMEOUT_MS: _positiveInt.default(5_000),
  LONGPOLL_TIMEOUT_MS: _positiveInt.default(15_000),
  ALLOWED_ORIGINS: z.string().transform((v, ctx) => {
    const origins = v.split(",").map((o) => o.trim()).filter(Boolean);
    for (const origin of origins) {
      if (origin !== "*" && !/^https?:\/\/[^/\s]+$/.test(origin)) {
        ctx.addIssue({
          code: "custom",
          message: `"${origin}" is not an origin like https://example.com`,
        });
      }
    }
    return origins;
  }).optional(),
  MAX_TOPICS_PER_SESSION: _positiveInt.default(_D.maxTopicsPerSession),
  PUSH_RATE_PER_SEC: _positiveInt.default(_D.pushRate.perSecond),
  PUSH_BURST: _positiveInt.default(_D.pushRate.burst),
  MAX_OUTBOUND_BYTES: _positiveInt.default(_D.maxOutboundBytes),
  MAX_PRESENCE_META_BYTES: _positiveInt.default(_D.limits.presenceMetaBytes),
  MAX_PRESENCES_PER_USER: _positiveInt.default(_D.limits.presencesPerUser),
  MAX_PRESENCE_BYTES_PER_USER: _positiveInt.default(_D.limits.presenceBytesPerUser),
  MAX_TOPICS_PER_USER: _positiveInt.default(_D.limits.topicsPerUser),
  MAX_LONGPOLL_SESSIONS: _positiveInt.optional(),
  MAX_LONGPOLL_SESSIONS_PER_ADDRESS: _positiveInt.default(_D.longpoll.maxSessionsPerAddress),
  LONGPOLL_FIRST_POLL_MS: _positiveInt.default(_D.longpoll.firstPollMs),
  API_AUTH_FAILURES_PER_MINUTE: _positiveInt.default(30),
  WEBHOOK_URL: z.url().regex(/^https?:/, "use an http(s) URL").optional(),
  WEBHOOK_SECRET: z.string().min(16, "must be at least 16 characters").optional(),
  WEBHOOK_RETRY_MS: z.string().transform((v, ctx) => {
    const delays = v.split(",").map((d) => Number(d.trim()));
    if (delays.length > 20 || delays.some((d) => !Number.isInteger(d) || d < 0 || d > 600_000)) {
      ctx.addIssue({
        code: "custom",
        message: "use up to 20 comma-separated waits in ms (0-600000), e.g. 2000,8000,30000",
      });
    }
    return delays;
  }).optional(),
  WEBHOOK_TIMEOUT_MS: _positiveInt.max(60_000).default(10_000),
  WEBHOOK_MAX_QUEUE: _positiveInt.max(1_000_000).default(10_000),
});

/** The validated server configuration. */
export interface Config {
  port: number;
  host: string;
  /** Bearer token for the HTTP API; undefined leaves the API open (dev only). */
  apiToken?: string;
  /** Signs connect tokens (JWT, HS256); unset: no tokens, `user_id` is trusted (dev only). */
  socketSecret?: string;
  /** Clock skew tolerated on a token's `exp` and `nbf`, in seconds. */
  tokenLeewaySeconds: number;
  redis?: { url: string; token: string };
  /** Prefix of the Redis keys and channel, so several apps can share one Redis. */
  redisPrefix: string;
  /** An idle node's heartbeat on the Redis bus (1 command each); the others see it die after 2.5. */
  redisHeartbeatMs: number;
  nodeId: string;
  logLevel: "debug" | "info" | "warn" | "error";
  /** Largest accepted client frame, in bytes. */
  maxFrameBytes: number;
  /** Largest accepted HTTP API body, in bytes. */
  maxApiBodyBytes: number;
  /** Deepest nesting of arrays and objects accepted in a published payload. */
  maxPayloadDepth: number;
  /** A WebSocket with no frame from the client for this long is closed. */
  heartbeatTimeoutMs: number;
  /** Interval of SSE comment heartbeats. */
  sseHeartbeatMs: number;
  /** Presence diffs of one topic are batched over this window. */
  presenceBatchMs: number;
  /**
   * The leave of a key's last presence meta on this node is held this long; a re-track of the
   * key within it (a tab taking over the shared connection, a reload) goes out in the same diff.
   */
  presenceLeaveGraceMs: number;
  /**
   * Each topic's resume window (how many messages, how old at most) and the node's budget for
   * all of them in bytes, oldest evicted first.
   */
  history: { size: number; maxAgeMs: number; maxBytes: number };
  /** Largest accepted long-poll POST body (refused with 413 while it streams). */
  maxLongpollBodyBytes: number;
  /**
   * Concurrent connections (WebSocket, SSE, held long-polls, requests in flight) past which new
   * ones get 503 with `Retry-After`; 0 means no cap. Unset: derived from the open-file limit
   * by the entry point.
   */
  maxConnections?: number;
  /** A closed connection whose client does not finish the close within this long is cut. */
  closeTimeoutMs: number;
  /** A long-poll session with no poll for this long ends. */
  longpollTimeoutMs: number;
  /** Origins allowed to open WebSocket, SSE and long-poll connections; undefined: any. */
  allowedOrigins?: string[];
  maxTopicsPerSession: number;
  /** Client frames (not heartbeats) per second per session, and the burst allowed above it. */
  pushRate: { perSecond: number; burst: number };
  /** A client whose unsent outbound data passes this is disconnected as a slow consumer. */
  maxOutboundBytes: number;
  /**
   * Where webhooks go (`WEBHOOK_URL`, signed with `WEBHOOK_SECRET`); unset: no webhooks. Each
   * batch is tried once, then again after each wait of `retryMs`; `maxQueue` events wait at most.
   */
  webhook?: {
    url: string;
    secret: string;
    retryMs?: number[];
    timeoutMs: number;
    maxQueue: number;
  };
  /** Bounds of presence and subscriptions (docs/limits.md). */
  limits: UserQuotaLimits;
  /** Long-poll admission (docs/limits.md). */
  longpoll: LongPollLimits;
  /** Failed API authentications per client address per minute before 429. */
  apiAuthFailuresPerMinute: number;
}

/** Thrown by {@link loadConfig}; the message lists every bad variable and what to do. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Reads and validates the environment; throws {@link ConfigError} on any bad value. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  // Blank counts as unset, so `PORT=` or `PORT=" "` means the default, never port 0.
  const cleaned = Object.fromEntries(
    Object.entries(env)
      .filter(([k, v]) => k in _schema.shape && v !== undefined && v.trim() !== "")
      .map(([k, v]) => [k, v!.trim()]),
  );
  const parsed = _schema.safeParse(cleaned);
  const lines = parsed.success
    ? []
    : parsed.error.issues.map((i) => `  ${i.path.join(".") || "environment"}: ${i.message}`);
  if (("UPSTASH_REDIS_REST_URL" in cleaned) !== ("UPSTASH_REDIS_REST_TOKEN" in cleaned)) {
    lines.push(
      "  UPSTASH_REDIS_REST_URL/UPSTASH_REDIS_REST_TOKEN: set both (Redis broker) or neither",
    );
  }
  if ("WEBHOOK_URL" in cleaned && !("WEBHOOK_SECRET" in cleaned)) {
    lines.push(
      "  WEBHOOK_URL: set WEBHOOK_SECRET too (16+ characters): webhooks are always signed",
    );
  }
  if (!parsed.success || lines.length > 0) {
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  const e = parsed.data;
  return {
    port: e.PORT,
    host: e.HOST,
    apiToken: e.API_TOKEN,
    socketSecret: e.SOCKET_SECRET,
    tokenLeewaySeconds: e.TOKEN_LEEWAY_SECONDS,
    redis: e.UPSTASH_REDIS_REST_URL && e.UPSTASH_REDIS_REST_TOKEN
      ? { url: e.UPSTASH_REDIS_REST_URL, token: e.UPSTASH_REDIS_REST_TOKEN }
      : undefined,
    redisPrefix: e.REDIS_PREFIX,
    redisHeartbeatMs: e.REDIS_HEARTBEAT_MS,
    nodeId: e.NODE_ID ?? crypto.randomUUID().slice(0, 8),
    logLevel: e.LOG_LEVEL,
    maxFrameBytes: e.MAX_FRAME_BYTES,
    maxApiBodyBytes: e.MAX_API_BODY_BYTES,
    maxPayloadDepth: e.MAX_PAYLOAD_DEPTH,
    heartbeatTimeoutMs: e.HEARTBEAT_TIMEOUT_MS,
    sseHeartbeatMs: e.SSE_HEARTBEAT_MS,
    presenceBatchMs: e.PRESENCE_BATCH_MS,
    presenceLeaveGraceMs: e.PRESENCE_LEAVE_GRACE_MS,
    history: {
      size: e.HISTORY_SIZE,
      maxAgeMs: e.HISTORY_MAX_AGE_MS,
      maxBytes: e.HISTORY_MAX_BYTES,
    },
    maxLongpollBodyBytes: e.MAX_LONGPOLL_BODY_BYTES,
    maxConnections: e.MAX_CONNECTIONS,
    closeTimeoutMs: e.CLOSE_TIMEOUT_MS,
    longpollTimeoutMs: e.LONGPOLL_TIMEOUT_MS,
    allowedOrigins: e.ALLOWED_ORIGINS?.includes("*") ? undefined : e.ALLOWED_ORIGINS,
    maxTopicsPerSession: e.MAX_TOPICS_PER_SESSION,
    pushRate: { perSecond: e.PUSH_RATE_PER_SEC, burst: e.PUSH_BURST },
    maxOutboundBytes: e.MAX_OUTBOUND_BYTES,
    webhook: e.WEBHOOK_URL && e.WEBHOOK_SECRET
      ? {
        url: e.WEBHOOK_URL,
        secret: e.WEBHOOK_SECRET,
        retryMs: e.WEBHOOK_RETRY_MS,
        timeoutMs: e.WEBHOOK_TIMEOUT_MS,
        maxQueue: e.WEBHOOK_MAX_QUEUE,
      }
      : undefined,
    limits: {
      presenceMetaBytes: e.MAX_PRESENCE_META_BYTES,
      presencesPerUser: e.MAX_PRESENCES_PER_USER,
      presenceBytesPerUser: e.MAX_PRESENCE_BYTES_PER_USER,
      topicsPerUser: e.MAX_TOPICS_PER_USER,
    },
    longpoll: {
      maxSessions: e.MAX_LONGPOLL_SESSIONS,
      maxSessionsPerAddress: e.MAX_LONGPOLL_SESSIONS_PER_ADDRESS,
      firstPollMs: e.LONGPOLL_FIRST_POLL_MS,
    },
    apiAuthFailuresPerMinute: e.API_AUTH_FAILURES_PER_MINUTE,
  };
}

/** The environment variables {@link loadConfig} reads, for `Deno.env` lookups. */
export const CONFIG_KEYS: readonly string[] = Object.keys(_schema.shape);
