/**
 * The protocol's words, named once: Phoenix events, WebSocket close codes, the reasons in error
 * replies and the reasons a session or channel ends. Everything a client may match on lives
 * here, so transports and channels never spell a literal twice.
 *
 * Words marked **Phoenix** are fixed by the official client (or its server) and must not change;
 * the others are Switchboard's own, documented in the README and stable across versions.
 *
 * @example
 * ```ts
 * import { CloseCode, ReplyReason } from "./protocol.ts";
 * connection.close(CloseCode.tryAgainLater, "slow consumer: reconnect and resume");
 * reply("error", { reason: ReplyReason.rateLimited });
 * ```
 * @module
 */
import type { Message } from "./message.ts";

/** Events the Phoenix protocol reserves (**Phoenix**); clients may not push them as their own. */
export const PhxEvent = {
  join: "phx_join",
  leave: "phx_leave",
  reply: "phx_reply",
  close: "phx_close",
  error: "phx_error",
  heartbeat: "heartbeat",
  presenceState: "presence_state",
  presenceDiff: "presence_diff",
} as const;

/**
 * Events of Supabase Realtime's protocol (**Supabase**, fixed by `@supabase/realtime-js`), on
 * top of Phoenix's: user broadcasts, presence track/untrack, token refresh, system notices.
 */
export const SupabaseEvent = {
  /** A user broadcast `{type: "broadcast", event, payload}`, both ways. */
  broadcast: "broadcast",
  /** A client's `{type: "presence", event: "track" | "untrack", payload}`. */
  presence: "presence",
  /** A client's fresh token `{access_token}`. */
  accessToken: "access_token",
  /** A server notice `{status, extension, message, channel}`. */
  system: "system",
} as const;

/** The topic of socket-level frames: heartbeats and their replies (**Phoenix**). */
export const PHOENIX_TOPIC = "phoenix";

/** Events Switchboard itself sends on channel topics; publishers may not forge them. */
export const ControlEvent = {
  /** A resume could not be served: the payload carries the reason and the current state. */
  reset: "reset",
  /** SSE only: the join reply, as the first event of each topic. */
  joined: "joined",
  /**
   * `{subscribers, users}`, at most once a second: a crowd's count (see crowd.ts), or the
   * topic's subscribers for a channel with `occupancy: true` (see occupancy.ts).
   */
  occupancy: "occupancy",
} as const;

/**
 * WebSocket close codes (RFC 6455 §7.4). Never 1000 for a client that should come back:
 * Phoenix clients before 1.8.16 do not reconnect after a normal closure.
 */
export const CloseCode = {
  /** The server is going away for this client (idle, or told to reconnect elsewhere). */
  goingAway: 1001,
  /** The client broke a rule (flood, refused join on SSE, origin). */
  policyViolation: 1008,
  /** A frame larger than `MAX_FRAME_BYTES`. */
  messageTooBig: 1009,
  /** Graceful shutdown or restart: reconnect shortly (the client backs off). */
  serviceRestart: 1012,
  /** Slow consumer: the client fell too far behind; reconnect and resume from the cursor. */
  tryAgainLater: 1013,
  /**
   * The session's token expired (application code, RFC 6455 §7.4.2): reconnect with a fresh
   * one. The Phoenix client reconnects by itself; with `params` as a function it sends new ones.
   */
  tokenExpired: 4001,
  /**
   * The backend disconnected this user (`POST /api/disconnect`): the old token is refused, so
   * reconnect only with a fresh one (application code, RFC 6455 §7.4.2).
   */
  disconnected: 4003,
} as const;

/** The close reason sent with {@link CloseCode.disconnected}. */
export const DISCONNECTED_REASON =
  "disconnected by the server: the old token is refused, reconnect only with a fresh one";

/** The close reason sent with {@link CloseCode.tokenExpired}. */
export const TOKEN_EXPIRED_REASON = "token expired: reconnect with a fresh token";

/** The longest event name accepted from publishers and channels, in characters. */
export const MAX_EVENT_NAME_LENGTH = 128;

/**
 * Why `event` may not be sent by a publisher or a channel, or undefined when it may: it must
 * be 1-128 characters of well-formed Unicode without control characters (an `event:` line
 * with CR or LF would forge SSE events), and not one of the events the protocol reserves
 * (`phx_*`, `presence_*`, `heartbeat`, and Switchboard's control events `reset`, `joined`).
 */
export function eventNameProblem(event: unknown): string | undefined {
  if (typeof event !== "string" || event === "") return "must be a non-empty string";
  if (event.length > MAX_EVENT_NAME_LENGTH) {
    return `is longer than ${MAX_EVENT_NAME_LENGTH} characters`;
  }
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(event) || !event.isWellFormed()) {
    return "must not contain control characters (CR, LF…) or lone surrogates";
  }
  if (_RESERVED_PREFIX.test(event) || _RESERVED_EVENTS.has(event)) {
    return "is reserved by the protocol (phx_*, presence_*, heartbeat, reset, joined, occupancy)";
  }
  return undefined;
}

const _RESERVED_PREFIX = /^(phx_|presence_)/;
const _RESERVED_EVENTS = new Set<string>([PhxEvent.heartbeat, ...Object.values(ControlEvent)]);

/** The `reason` of an error reply or a `phx_error`/`reset` payload. */
export const ReplyReason = {
  /** **Phoenix**: no channel matches the topic (sent with a null join_ref). */
  unmatchedTopic: "unmatched topic",
  /** **Phoenix**: a channel callback threw; the client rejoins. */
  channelCrash: "channel_crash",
  /** A frame that could not be decoded (sent as `phx_error` on topic `phoenix`). */
  badFrame: "bad_frame",
  rateLimited: "rate_limited",
  tooManyTopics: "too_many_topics",
  badCursor: "bad_cursor",
  /** The topic name breaks the rule of `topic.ts` (too long, not Unicode); `detail` says how. */
  invalidTopic: "invalid_topic",
  invalidParams: "invalid_params",
  invalidPayload: "invalid_payload",
  unknownEvent: "unknown_event",
  /** The identity may not join or read the topic (no token where one is needed, or scope). */
  unauthorized: "unauthorized",
  /** A binary frame for an event that takes JSON only. */
  binaryNotAccepted: "binary_not_accepted",
  /** A JSON push for an event that takes binary frames only. */
  binaryExpected: "binary_expected",
  /** A binary reply for a client whose transport carries text only (long-poll, v1, SSE). */
  binaryUnsupported: "binary_unsupported",
  joinCrashed: "join crashed",
  /** `reset`: the history window no longer holds everything the client missed. */
  historyWindowExceeded: "history_window_exceeded",
  /** `reset`: the history could not be read (broker down). */
  historyUnavailable: "history_unavailable",
  /**
   * `reset`: the SSE `Last-Event-ID` could not be read (too long, or an older format after an
   * upgrade); the stream starts from now.
   */
  cursorUnusable: "cursor_unusable",
  /** `reset`: messages from another node were lost (an outage longer than it could re-send). */
  messagesLost: "messages_lost",
  /** A push whose broadcast is too large for the cluster bus. */
  messageTooLarge: "message_too_large",
  /** `phx_close`: the backend removed the user from the topic (`POST /api/unsubscribe`). */
  unsubscribed: "unsubscribed",
  /** `phx_close`: the backend disconnected the user (`POST /api/disconnect`). */
  disconnected: "disconnected",
} as const;

/** Why a session or a channel instance ended (passed to `terminate`, counted in metrics). */
export const EndReason = {
  disconnect: "disconnect",
  leave: "leave",
  rejoin: "rejoin",
  crash: "crash",
  refused: "refused",
  timeout: "timeout",
  slowConsumer: "slow_consumer",
  flood: "flood",
  shutdown: "shutdown",
  /** The session's token expired. */
  expired: "expired",
  /** The backend removed the user (`POST /api/disconnect` or `/api/unsubscribe`). */
  removed: "removed",
  closed: "closed",
} as const;

/** One of {@link EndReason}'s values. */
export type EndReasonName = typeof EndReason[keyof typeof EndReason];

/** The `phx_error` frame every transport sends for a frame it cannot decode. */
export function badFrame(detail: string): Message {
  return {
    joinRef: null,
    ref: null,
    topic: PHOENIX_TOPIC,
    event: PhxEvent.error,
    payload: { reason: ReplyReason.badFrame, detail },
  };
}
