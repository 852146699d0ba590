/**
 * The protocol's words, named once: Phoenix events, WebSocket close codes, the reasons in error
 * replies and the reasons a session or channel ends. Everything a client may match on lives
 * here, so transports and channels never spell a literal twice.
 *
 * Words marked **Phoenix** are fixed by the official client (or its server) and must not change;
 * the others are Switchboard's own, documented in docs/protocol.md and stable across versions.
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
  /** Refused at connect: the token's signature is not this server's (`SOCKET_SECRET`). */
  badSignature: 4002,
  /** Refused at connect: the token is not a usable JWT; the reason names the problem. */
  tokenMalformed: 4003,
  /** Refused at connect: the token is signed with another algorithm than HS256. */
  algorithmNotAllowed: 4004,
  /** Refused at connect: the token's `nbf` is in the future. */
  tokenNotYetValid: 4005,
  /** Refused at connect: a token is required and none was sent. */
  tokenMissing: 4006,
  /** Refused at connect: the page's origin is not in `ALLOWED_ORIGINS`. */
  originNotAllowed: 4007,
  /** Refused at connect: the `vsn` param names a protocol version this server does not speak. */
  unsupportedVsn: 4008,
  /** Refused at connect by an injected authenticate hook, for a reason of its own. */
  tokenRefused: 4009,
  /**
   * The backend disconnected this user (`POST /api/disconnect`): the old token is refused, so
   * reconnect only with a fresh one (application code, RFC 6455 §7.4.2).
   */
  disconnected: 4010,
  /** Refused at connect: the token was issued before its user was disconnected by the backend. */
  tokenRevoked: 4011,
} as const;

/** The close reason sent with {@link CloseCode.disconnected}. */
export const DISCONNECTED_REASON =
  "disconnected by the server: the old token is refused, reconnect only with a fresh one";

/**
 * Why a connection or a read was refused, as a word clients may match on: the `reason` of
 * HTTP error bodies (SSE, long-poll, API), of the join replies on a refused WebSocket, and,
 * with {@link REFUSAL_CLOSE_CODES}, the close code of that WebSocket. The human wording goes
 * with it unchanged on every transport (the `error` body field, the `detail` of a reply, the
 * close reason). `docs/protocol-refusals.md` lists them.
 */
export const RefusalReason = {
  tokenExpired: "token_expired",
  badSignature: "bad_signature",
  tokenMalformed: "token_malformed",
  algorithmNotAllowed: "algorithm_not_allowed",
  tokenNotYetValid: "token_not_yet_valid",
  tokenMissing: "token_missing",
  originNotAllowed: "origin_not_allowed",
  unsupportedVsn: "unsupported_vsn",
  tokenRefused: "token_refused",
  tokenRevoked: "token_revoked",
} as const;

/** One of {@link RefusalReason}'s values. */
export type RefusalReasonName = typeof RefusalReason[keyof typeof RefusalReason];

/** The only delta format: the value of the `delta` join param and SSE query param. */
export const DELTA_FORMAT = "fossil";

/**
 * The WebSocket and long-poll event that carries a delta, `{"event": E, "delta": D}`. Inside
 * the reserved `phx_` space, so no channel or publisher can send an event of that name, and
 * only subscribers that asked for deltas ever receive it (docs/deltas.md).
 */
export const DELTA_EVENT = "phx_delta";

/** The WebSocket close code of each refusal (4000-4999: the application's own, RFC 6455). */
export const REFUSAL_CLOSE_CODES: Readonly<Record<RefusalReasonName, number>> = {
  token_expired: CloseCode.tokenExpired,
  bad_signature: CloseCode.badSignature,
  token_malformed: CloseCode.tokenMalformed,
  algorithm_not_allowed: CloseCode.algorithmNotAllowed,
  token_not_yet_valid: CloseCode.tokenNotYetValid,
  token_missing: CloseCode.tokenMissing,
  origin_not_allowed: CloseCode.originNotAllowed,
  unsupported_vsn: CloseCode.unsupportedVsn,
  token_refused: CloseCode.tokenRefused,
  token_revoked: CloseCode.tokenRevoked,
};

/**
 * How long a refused WebSocket stays open before the server closes it with the refusal's code
 * and reason. A refusal is sent over an accepted socket because a browser cannot read why an
 * upgrade was refused (403 is a bare close event). But the official Phoenix client reconnects
 * 10 ms after any close of a socket that had opened (its backoff restarts at every open): closed
 * at once, a refused client would reconnect ~100 times a second. Held this long, it retries at
 * most every 5 s, the longest step of its own backoff; meanwhile its joins get error replies
 * carrying the same reason.
 */
export const REFUSAL_LINGER_MS = 5_000;

/**
 * The one wording of an unknown topic, on every transport: the WebSocket join reply's reason is
 * Phoenix's `unmatched topic`; HTTP answers (SSE, API) say it with the topic, as
 * `{error: unmatchedTopicError(topic), reason: "unmatched topic"}`.
 */
export function unmatchedTopicError(topic: string): string {
  return `${ReplyReason.unmatchedTopic}: no channel matches "${topic}"`;
}

/** The one wording of an unknown `vsn` connect param (WebSocket close reason, long-poll body). */
export function unsupportedVsnError(vsn: string | undefined): string {
  return `unsupported vsn ${
    JSON.stringify(String(vsn).slice(0, 20))
  }: use 2.0.0 (or omit it for 1.0.0)`;
}

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
  /**
   * `reset`: the client was too far behind for its outbound budget (`MAX_OUTBOUND_BYTES`):
   * live messages piled up while the replay waited for it to read.
   */
  tooFarBehind: "too_far_behind",
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
