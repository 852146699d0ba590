/**
 * A join (Phoenix's `Phoenix.Channel.Server.join`): topic checks, channel matching, a token the
 * join carries, access, the per-session topic limit, the resume cursor, the params schema and
 * the channel's `join` callback. On success the caller writes the reply, then calls `activate`:
 * the reply must precede every other frame of the join (replayed and live broadcasts,
 * `presence_state`).
 *
 * @example
 * ```ts
 * const joined = await joinChannel(session, { topic: "record:1", payload: { name: "Ann" }, joinRef: "1", joinedCount: 0 });
 * if (joined.status === "ok") joined.activate?.();
 * ```
 * @module
 */
import { describeError } from "../log.ts";
import { CursorError, formatCursor, parseCursor, type TopicCursor } from "../resume/cursor.ts";
import { type HandlerResult, Reply } from "./channel.ts";
import { type ChannelOwner, ChannelServer, toReply } from "./channel_server.ts";
import { takeDeltaParam } from "./delta.ts";
import type { Payload } from "./message.ts";
import { decideAccess } from "./access.ts";
import { EndReason, ReplyReason } from "./protocol.ts";
import { topicProblem } from "./topic.ts";
import { fieldErrors } from "./validation.ts";
import { LimitError } from "./limits.ts";
import { takeTopic } from "./instance_quota.ts";

/** The result of a join, as the reply carries it. */
export interface JoinResult {
  status: "ok" | "error";
  response: Payload;
  /** True when no channel matches the topic (the reply then has a null join_ref). */
  unmatched?: boolean;
}

/** A successful join: the server, and `activate` to call once the reply has been written. */
export type Joined = JoinResult & { server?: ChannelServer; activate?: () => void };

/** What to join: the topic, the join payload, the join's ref, and where to resume from. */
export interface JoinRequest {
  topic: string;
  payload: Payload;
  joinRef: string | null;
  /** Replays what the client missed since this position before live messages. */
  resume?: TopicCursor;
  /** Topics the owner holds now, not counting this one, for the per-session limit. */
  joinedCount: number;
  /** Called once the join is accepted for the channel's checks (a rejoin ends the old one). */
  beforeJoin?: () => void;
}

/**
 * Runs a join: matching, access, limits, cursor, params schema and the channel's `join`. On success
 * the caller sends the reply, then calls `activate` (the reply must precede every other frame
 * of the join: broadcasts, `presence_state`).
 */
export async function joinChannel(owner: ChannelOwner, request: JoinRequest): Promise<Joined> {
  const { node } = owner;
  const { topic, joinRef } = request;
  // The `delta` param is Switchboard's: read and removed before the channel sees the payload.
  const deltaParam = takeDeltaParam(request.payload);
  if (!deltaParam.ok) {
    return {
      status: "error",
      response: { reason: ReplyReason.invalidParams, detail: deltaParam.detail },
    };
  }
  const payload = deltaParam.payload;
  const problem = topicProblem(topic);
  if (problem) {
    return {
      status: "error",
      response: { reason: ReplyReason.invalidTopic, detail: problem },
      unmatched: true,
    };
  }
  const match = node.router.match(topic);
  if (!match) {
    return { status: "error", response: { reason: ReplyReason.unmatchedTopic }, unmatched: true };
  }
  // A token the join carries (Supabase's `access_token`) becomes the session's first, so the
  // access question below is asked of the identity it proves.
  const joinToken = match.channel.joinToken?.(payload);
  if (joinToken !== undefined) {
    const refreshed = await owner.refreshToken(joinToken);
    if (!refreshed.ok) {
      node.metrics.inc("switchboard_refused_total", { reason: "unauthorized" });
      return {
        status: "error",
        response: { reason: ReplyReason.unauthorized, detail: refreshed.reason },
      };
    }
  }
  // Before anything else: the client retries a refused join forever, so refuse it cheaply.
  const access = decideAccess({ channel: match.channel, identity: owner.identity, topic });
  if (!access.ok) {
    node.metrics.inc("switchboard_refused_total", { reason: "unauthorized" });
    return { status: "error", response: { reason: access.reason, detail: access.error } };
  }
  const limit = node.options.maxTopicsPerSession;
  if (request.joinedCount >= limit) {
    return { status: "error", response: { reason: ReplyReason.tooManyTopics, limit } };
  }
  let resume = request.resume;
  const wantsCursor = typeof payload.cursor === "string";
  if (wantsCursor && payload.cursor !== "") {
    try {
      resume ??= parseCursor(payload.cursor as string).get(topic);
    } catch (err) {
      if (!(err instanceof CursorError)) throw err;
      return { status: "error", response: { reason: ReplyReason.badCursor, detail: err.message } };
    }
  }
  request.beforeJoin?.();
  const { channel, subtopic } = match;
  let params: unknown = payload;
  if (channel.joinParams) {
    const parsed = channel.joinParams.safeParse(payload);
    if (!parsed.success) {
      return {
        status: "error",
        response: { reason: ReplyReason.invalidParams, errors: fieldErrors(parsed.error) },
      };
    }
    params = parsed.data;
  }
  // Issue 21: topics per user over all its sockets (instance_quota.ts). Taken last of the
  // checks: from here on every refusal goes through the server, whose stop gives it back.
  let quotaUser: string | undefined;
  try {
    quotaUser = takeTopic(node.quotas, owner.identity);
  } catch (err) {
    if (!(err instanceof LimitError)) throw err;
    node.metrics.inc("switchboard_refused_total", { reason: err.reason });
    return { status: "error", response: { reason: err.reason, detail: err.message } };
  }
  const server = new ChannelServer({
    owner,
    definition: channel,
    topic,
    subtopic,
    joinRef,
    params,
    quotaUser,
    deltas: deltaParam.wants && channel.deltas !== false &&
      owner.connection.sendDelta !== undefined,
  });
  let result: HandlerResult;
  try {
    result = await channel.join?.(server, params);
    // A join reply is JSON: the client reads its fields (bytes are for pushes' replies).
    if (result instanceof Uint8Array || (result as Reply)?.response instanceof Uint8Array) {
      throw new TypeError("join must return an object, not bytes");
    }
  } catch (err) {
    if (err instanceof LimitError) {
      server.stop(EndReason.refused);
      node.metrics.inc("switchboard_refused_total", { reason: err.reason });
      return { status: "error", response: { reason: err.reason, detail: err.message } };
    }
    node.log.error("a channel's join crashed", { topic, error: describeError(err) });
    server.stop(EndReason.crash);
    return { status: "error", response: { reason: ReplyReason.joinCrashed } };
  }
  const reply = (toReply(result) ?? new Reply("ok", {})) as Reply & { response: Payload };
  if (reply.status === "error" || owner.closed) {
    server.stop(EndReason.refused);
    return { status: "error", response: reply.response };
  }
  node.metrics.inc("switchboard_joins_total", { transport: owner.connection.transport });
  const position = resume ?? node.hub.head(topic);
  owner.connection.startTopic?.(topic, position, resume !== undefined);
  const response = wantsCursor
    ? { ...reply.response, cursor: formatCursor(new Map([[topic, position]])) }
    : reply.response;
  const activate = () => {
    if (server.stopped || owner.closed) return;
    server.activate(resume, reply.response);
    const presence = channel.presence;
    if (presence === true || (presence && presence(server))) server.pushPresenceState();
  };
  return { status: "ok", response, server, activate };
}
