/**
 * `realtime:*`: Supabase Realtime's broadcast and presence, so the unmodified
 * `@supabase/realtime-js` (and supabase-js's `realtime`) can use Switchboard as its server.
 * Postgres changes are not served: a join that asks for them is refused saying so.
 *
 * What the client sends and expects (`@supabase/realtime-js` 2.119, `RealtimeChannel.js`):
 * - join payload `{config: {broadcast: {self, ack}, presence: {key, enabled}, postgres_changes,
 *   private}, access_token?}`; the ok reply carries `postgres_changes: []`;
 * - `broadcast` pushes `{type: "broadcast", event, payload}` (a binary "user broadcast push"
 *   frame under vsn 2.0.0, JSON or raw bytes inside), delivered to the others, or to everyone
 *   with `self`, and replied to only with `ack`;
 * - `presence` pushes `{type: "presence", event: "track" | "untrack", payload}`, keyed by
 *   `config.presence.key` (a random key per join when empty); `presence_state` and
 *   `presence_diff` reach only clients that enabled presence;
 * - `access_token` pushes `{access_token}`: the session takes the fresh token, or the channel
 *   ends with a `system` error when it is refused.
 *
 * @example
 * ```ts
 * import { realtimeChannel } from "./lib/mod.ts";
 * export const channels = [statusChannel, recordChannel, realtimeChannel];
 * ```
 * @module
 */
import { z } from "zod";
import { inScope } from "../auth.ts";
import {
  type ChannelContext,
  type ChannelDefinition,
  defineChannel,
  error,
  type EventHandler,
} from "../core/channel.ts";
import type { Payload } from "../core/message.ts";
import { ControlEvent, PhxEvent, SupabaseEvent } from "../core/protocol.ts";

/** The topic prefix realtime-js puts before every channel name. */
export const REALTIME_PREFIX = "realtime:";

/** Bounds of what a client may put into a join or a presence key. */
const _MAX_KEY = 256;
const _MAX_TOKEN = 8192;

const _config = z.looseObject({
  broadcast: z.looseObject({
    self: z.boolean().default(false),
    ack: z.boolean().default(false),
  }).default({ self: false, ack: false }),
  presence: z.looseObject({
    key: z.string().max(_MAX_KEY).default(""),
    enabled: z.boolean().default(false),
  }).default({ key: "", enabled: false }),
  postgres_changes: z.array(z.unknown()).max(100).default([]),
  private: z.boolean().default(false),
});

const _joinParams = z.looseObject({
  config: _config.default(_config.parse({})),
  access_token: z.string().min(1).max(_MAX_TOKEN).optional(),
});

/** A realtime-js join payload as {@link _joinParams} parses it (written out: no inferred types in the public API). */
interface RealtimeJoin {
  config: {
    broadcast: { self: boolean; ack: boolean; [key: string]: unknown };
    presence: { key: string; enabled: boolean; [key: string]: unknown };
    postgres_changes: unknown[];
    private: boolean;
    [key: string]: unknown;
  };
  access_token?: string;
  [key: string]: unknown;
}

// The written-out type must stay what the schema parses: this fails to compile when they part.
const _sameJoin: [RealtimeJoin, z.infer<typeof _joinParams>] = [
  {} as z.infer<typeof _joinParams>,
  {} as RealtimeJoin,
];
void _sameJoin;

/** What one joined instance remembers from its join config. */
interface RealtimeAssigns {
  self: boolean;
  ack: boolean;
  presenceKey: string;
  presenceEnabled: boolean;
}

function _assigns(ctx: ChannelContext<RealtimeJoin>): RealtimeAssigns {
  return ctx.assigns as unknown as RealtimeAssigns;
}

const _broadcast = z.looseObject({
  type: z.literal("broadcast"),
  event: z.string().min(1).max(255),
  payload: z.unknown().optional(),
});

const _presence = z.looseObject({
  type: z.literal("presence"),
  event: z.enum(["track", "untrack"]),
  payload: z.record(z.string(), z.unknown()).optional(),
});

const _accessToken = z.looseObject({ access_token: z.string().min(1).max(_MAX_TOKEN) });

/** `broadcast`: JSON or bytes, to the others (or everyone with `self`); ok only with `ack`. */
const broadcastEvent: EventHandler<RealtimeJoin, z.infer<typeof _broadcast>> = {
  schema: _broadcast,
  binary: true,
  handle(ctx, msg, bytes) {
    const { self, ack } = _assigns(ctx);
    const send = self ? ctx.broadcast.bind(ctx) : ctx.broadcastFrom.bind(ctx);
    if (bytes === undefined) {
      send(SupabaseEvent.broadcast, userBroadcast(msg.event, msg.payload));
    } else {
      send(SupabaseEvent.broadcast, bytes, { type: "broadcast", event: msg.event });
    }
    return ack ? {} : undefined;
  },
};

/** `presence`: track (or update) and untrack this instance's presence key. */
const presenceEvent: EventHandler<RealtimeJoin, z.infer<typeof _presence>> = {
  schema: _presence,
  handle(ctx, msg) {
    const key = _assigns(ctx).presenceKey;
    if (msg.event === "untrack") {
      ctx.untrack(key);
      return {};
    }
    const meta: Payload = msg.payload ?? {};
    if (ctx.presenceOf(key)) ctx.updatePresence(key, meta);
    else ctx.track(key, meta);
    return {};
  },
};

/** `access_token`: the session takes the fresh token; a refused one ends the channel. */
const accessTokenEvent: EventHandler<RealtimeJoin, z.infer<typeof _accessToken>> = {
  schema: _accessToken,
  async handle(ctx, { access_token }) {
    const refreshed = await ctx.refreshToken(access_token);
    if (refreshed.ok) return;
    ctx.push(SupabaseEvent.system, {
      status: "error",
      extension: "system",
      message: refreshed.reason,
      channel: ctx.subtopic,
    });
    ctx.close();
  },
};

/** Passes a presence event on to clients that enabled presence only. */
function _ifPresence(ctx: ChannelContext<RealtimeJoin>, payload: Payload): Payload | null {
  return _assigns(ctx).presenceEnabled ? payload : null;
}

/** The built-in `realtime:*` channel: Supabase Realtime's broadcast and presence. */
export const realtimeChannel: ChannelDefinition<RealtimeJoin> = defineChannel<RealtimeJoin>({
  topic: `${REALTIME_PREFIX}*`,
  joinParams: _joinParams as z.ZodType<RealtimeJoin>,
  presence: (ctx) => _assigns(ctx).presenceEnabled,
  // realtime-js sends the user's token in the join: it becomes the session's before access is
  // decided, so a client that connected without one (anonymous) joins as that user.
  joinToken: (payload) =>
    typeof payload.access_token === "string" ? payload.access_token : undefined,
  // A token's scope, when it has one, lists the topics it may join and read.
  authorize: (identity, topic) => !identity.claims?.scope || inScope(identity.claims.scope, topic),
  join(ctx, { config }) {
    if (config.postgres_changes.length > 0) {
      return error({
        reason: "postgres_changes are not served by Switchboard: use broadcast and presence",
      });
    }
    Object.assign(
      ctx.assigns,
      {
        self: config.broadcast.self,
        ack: config.broadcast.ack,
        presenceKey: config.presence.key || crypto.randomUUID(),
        presenceEnabled: config.presence.enabled,
      } satisfies RealtimeAssigns,
    );
    return { postgres_changes: [] };
  },
  events: {
    [SupabaseEvent.broadcast]: broadcastEvent,
    [SupabaseEvent.presence]: presenceEvent,
    [SupabaseEvent.accessToken]: accessTokenEvent,
  },
  handleOut: {
    // Like Supabase: a client that did not enable presence gets no presence events (it would
    // buffer diffs without a state forever); nor a crowd's states and counts (docs/crowds.md).
    [PhxEvent.presenceDiff]: _ifPresence,
    [PhxEvent.presenceState]: _ifPresence,
    [ControlEvent.occupancy]: _ifPresence,
  },
});

/**
 * The Switchboard topic of a Supabase channel name as the REST API gets it (realtime-js sends
 * it without the prefix); a name that has the prefix already is kept.
 */
export function realtimeTopic(name: string): string {
  return name.startsWith(REALTIME_PREFIX) ? name : `${REALTIME_PREFIX}${name}`;
}

/** A user broadcast's payload as subscribers of a `realtime:*` topic get it. */
export function userBroadcast(event: string, payload: unknown): Payload {
  return { type: "broadcast", event, payload };
}
