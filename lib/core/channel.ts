/**
 * Defining channels: a topic pattern and a few callbacks, as in Phoenix.
 *
 * @example
 * ```ts
 * export const room = defineChannel({
 *   topic: "room:*",
 *   join: (ctx) => ({ welcome: ctx.subtopic }),
 *   events: {
 *     shout: event(z.object({ body: z.string() }), (ctx, msg) => ctx.broadcast("shout", msg)),
 *   },
 * });
 * ```
 * @module
 */
import type { z } from "zod";
import type { Payload } from "./message.ts";
import type { PresenceState } from "./presence.ts";
import type { Broadcast } from "./broadcast.ts";
import type { TokenClaims } from "./identity.ts";
import type { TransportName } from "./connection.ts";
import type { Identity } from "./identity.ts";
import { ReplyReason } from "./protocol.ts";
import { checkChannel, checkChannelSet, type OptionKind } from "./channel_checks.ts";

export type { TransportName };

/** What channel callbacks can see and do; one per joined channel instance. */
export interface ChannelContext<Params = Payload> {
  /** The full topic, e.g. `record:42`. */
  readonly topic: string;
  /** The part of the topic matched by the pattern's `*`, e.g. `42`. */
  readonly subtopic: string;
  /** The join params, validated by the channel's `joinParams` schema when it has one. */
  readonly params: Params;
  /** The connected user: the verified token subject, or the `user_id` connect param in dev. */
  readonly userId: string;
  /** The verified token's claims (with `SOCKET_SECRET`), e.g. `scope` for per-topic access. */
  readonly claims?: Readonly<TokenClaims>;
  /** The connect params of the session (besides `token`, `vsn`, `topic`). */
  readonly connectParams: Readonly<Record<string, string>>;
  /** Per-instance state the callbacks may keep between calls. */
  readonly assigns: Record<string, unknown>;
  readonly transport: TransportName;
  /**
   * Sends an event to this client only. A `Uint8Array` payload is a binary frame (Phoenix v2);
   * `meta` is then the JSON that travels beside the bytes (Supabase user broadcasts carry
   * `{type, event}`; Phoenix frames none).
   */
  push(event: string, payload: Payload | Uint8Array, meta?: Payload): void;
  /** Sends an event to every subscriber of the topic, on every node (bytes as in `push`). */
  broadcast(event: string, payload: Payload | Uint8Array, meta?: Payload): void;
  /** Like broadcast, but skips this channel instance (the sender's other tabs still get it). */
  broadcastFrom(event: string, payload: Payload | Uint8Array, meta?: Payload): void;
  /** Tracks `key` with `meta` in the topic's presence (the meta gets a `phx_ref`). */
  track(key: string, meta: Payload): void;
  /** Replaces this instance's meta for `key` (Phoenix `update`: a leave+join diff). */
  updatePresence(key: string, meta: Payload): void;
  /** Removes this instance's meta for `key`. */
  untrack(key: string): void;
  /** This instance's current meta for `key`. */
  presenceOf(key: string): Payload | undefined;
  /** The topic's presence state. */
  presence(): PresenceState;
  /** The topic's last message (not presence), from this node or the broker. */
  lastMessage(): Promise<Broadcast | undefined>;
  /**
   * Verifies a fresh token like a connect token and makes it the session's (its claims and
   * expiry, for every channel of the session). Refused when invalid, expired, or for another
   * user. Without `SOCKET_SECRET` nothing is verified and the session is unchanged.
   */
  refreshToken(token: string): Promise<TokenRefresh>;
  /** Ends this channel instance from the server: `terminate` runs, the client gets `phx_close`. */
  close(): void;
}

/** The outcome of {@link ChannelContext.refreshToken}. */
export type TokenRefresh = { ok: true } | { ok: false; reason: string };

/**
 * An explicit reply; return a plain object for an ok reply, or nothing for no reply. A
 * `Uint8Array` response is a binary reply (Phoenix v2 WebSocket).
 */
export class Reply {
  constructor(readonly status: "ok" | "error", readonly response: Payload | Uint8Array) {}
}

/** An ok reply with a response (an object, or bytes for a binary reply). */
export function ok(response: Payload | Uint8Array = {}): Reply {
  return new Reply("ok", response);
}

/** An error reply; from `join` it refuses the join. */
export function error(response: Payload): Reply {
  return new Reply("error", response);
}

/** What `join` and event handlers may return (bytes: a binary ok reply). */
export type HandlerResult = Reply | Payload | Uint8Array | void;

/**
 * One client event: an optional payload schema and the handler. With `binary`, the event also
 * takes binary frames: `bytes` is then their payload and `payload` their JSON metadata (`{}` for
 * a Phoenix push, validated by `schema` too). Events without it refuse binary frames with
 * `{reason: "binary_not_accepted"}`.
 */
export interface EventHandler<Params, P = Payload> {
  schema?: z.ZodType<P>;
  binary?: boolean;
  handle(
    ctx: ChannelContext<Params>,
    payload: P,
    bytes?: Uint8Array,
  ): HandlerResult | Promise<HandlerResult>;
}

/**
 * Declares a client event that takes a binary frame (Phoenix `channel.push(event, arrayBuffer)`);
 * a JSON push of it gets `{reason: "binary_expected"}`. Return bytes for a binary reply.
 *
 * @example
 * ```ts
 * events: { upload: binaryEvent((ctx, bytes) => { ctx.broadcastFrom("chunk", bytes); return {}; }) }
 * ```
 */
export function binaryEvent<Params = Payload>(
  handle: (
    ctx: ChannelContext<Params>,
    bytes: Uint8Array,
  ) => HandlerResult | Promise<HandlerResult>,
): EventHandler<Params> {
  return {
    binary: true,
    handle: (ctx, _payload, bytes) =>
      bytes === undefined ? error({ reason: ReplyReason.binaryExpected }) : handle(ctx, bytes),
  };
}

/** Declares a client event whose payload is validated by `schema` (failures get an error reply naming the field). */
export function event<S extends z.ZodType<Payload>, Params = Payload>(
  schema: S,
  handle: (
    ctx: ChannelContext<Params>,
    payload: z.infer<S>,
  ) => HandlerResult | Promise<HandlerResult>,
): EventHandler<Params, z.infer<S>> {
  return { schema: schema as unknown as z.ZodType<z.infer<S>>, handle };
}

/** A channel: a topic pattern and its callbacks. See {@link defineChannel}. */
export interface ChannelDefinition<Params = Payload> {
  /** `prefix:*` matches every topic with that prefix; anything else matches exactly. */
  topic: string;
  /**
   * `"public"`: anyone may join and read, a visitor without a token too, even when
   * `SOCKET_SECRET` is set (a public status page). `"token"` (the default): with a secret,
   * joining and reading need a valid token.
   */
  access?: "public" | "token";
  /**
   * Whether `identity` may join and read `topic` (`false` refuses: join error
   * `{reason: "unauthorized"}`, HTTP 403). Asked before every join and every read (polling,
   * presence API, pages, SSE), so keep it cheap and synchronous; `join` still runs after it.
   */
  authorize?(identity: Readonly<Identity>, topic: string): boolean;
  /**
   * The token a join payload carries, if the channel's clients send one there (Supabase's
   * `access_token`): verified like a connect token and made the session's (see
   * `ChannelContext.refreshToken`) before `access` and `authorize` are asked; a refused token
   * refuses the join with `{reason: "unauthorized", detail}`.
   */
  joinToken?(payload: Payload): string | undefined;
  /** Push `presence_state` after every successful join (a function decides per instance). */
  presence?: boolean | ((ctx: ChannelContext<Params>) => boolean);
  /**
   * This channel's presence leave grace in ms, instead of `PRESENCE_LEAVE_GRACE_MS`: how long
   * the leave of a key's last meta on a node waits for the key to be tracked again (0: never).
   */
  presenceLeaveGraceMs?: number;
  /**
   * Above this many distinct presence keys a topic of this channel is a crowd (docs/crowds.md):
   * joiners get a bounded visible set, diffs only when it changes, and everyone the count as an
   * `occupancy` event. Default 150; back to full presence below 80% of it.
   */
  crowdThreshold?: number;
  /** How many keys a crowd shows (default 20), plus as many always-visible ones. */
  crowdVisible?: number;
  /** Keys with a meta this marks stay visible in a crowd (say, the editors of a record). */
  crowdAlwaysVisible?(meta: Payload): boolean;
  /**
   * Push an `occupancy` event `{subscribers, users}` (every transport, every node) to the
   * topic's subscribers when it changes, at most once a second: "1,204 watching" without a
   * presence list of 1,204 entries. For channels without presence; a crowd (`crowdThreshold`)
   * sends its own count.
   */
  occupancy?: boolean;
  /**
   * Whether subscribers that ask for Fossil deltas (`delta: "fossil"`) get them (default true;
   * `false`: always full payloads, e.g. for payloads that never resemble the previous one).
   */
  deltas?: boolean;
  /** Validates join params (failures refuse the join with an error naming the field). */
  joinParams?: z.ZodType<Params>;
  /** Authorize and set up; return an error reply to refuse. */
  join?(ctx: ChannelContext<Params>, params: Params): HandlerResult | Promise<HandlerResult>;
  /** Client events by name. */
  // deno-lint-ignore no-explicit-any
  events?: Record<string, EventHandler<Params, any>>;
  /** Events not in `events`; without it they get `{reason: "unknown_event"}`. */
  handleIn?(
    ctx: ChannelContext<Params>,
    event: string,
    payload: Payload,
  ): HandlerResult | Promise<HandlerResult>;
  /** Intercepts outgoing broadcasts by event, per subscriber: return a payload, or null to drop. */
  handleOut?: Record<string, (ctx: ChannelContext<Params>, payload: Payload) => Payload | null>;
  /** Called when the instance ends (leave, disconnect, rejoin, crash). */
  terminate?(ctx: ChannelContext<Params>, reason: string): void;
  /**
   * The events this channel sends to clients (broadcasts, pushes) and their payload schemas.
   * Enforced on the way out: a publish (API: 422 `invalid_payload`), `ctx.broadcast`,
   * `ctx.push` or `switchboard.publish` whose JSON payload fails its event's schema is refused
   * and nothing is sent (see `outbound.ts`). They also type the Switchboard client's `on`
   * (`import type`) and let it validate what arrives (`validate` option of `connect`).
   */
  messages?: Record<string, z.ZodType<Payload>>;
  /**
   * The `state` of a `reset` sent to a joined client whose live messages were lost (default:
   * its join reply): what it needs to start over, e.g. the current status.
   */
  resetState?(ctx: ChannelContext<Params>): Payload | Promise<Payload>;
}

/**
 * Every option of {@link ChannelDefinition} and what its value must be: the ONE list of option
 * names that `defineChannel` and the node check definitions against (unknown names are refused
 * with the nearest known one). A new option must be added here: the `Record` over the
 * definition's keys makes a missing or a stale name a compile error.
 */
export const CHANNEL_OPTION_KINDS: Readonly<Record<keyof ChannelDefinition, OptionKind>> = {
  topic: "topic",
  access: "access",
  authorize: "function",
  joinToken: "function",
  presence: "boolean-or-function",
  presenceLeaveGraceMs: "grace",
  crowdThreshold: "number",
  crowdVisible: "number",
  crowdAlwaysVisible: "function",
  occupancy: "boolean",
  deltas: "boolean",
  joinParams: "schema",
  join: "function",
  events: "events",
  handleIn: "function",
  handleOut: "functions",
  terminate: "function",
  messages: "schemas",
  resetState: "function",
};

/**
 * A channel definition that keeps its literal topic pattern, event names and message schemas
 * in its type, so typed clients can take them from `import type` of the app's channels.
 */
export type TypedChannelDefinition<
  Params,
  Topic extends string,
  // deno-lint-ignore no-explicit-any
  Events extends Record<string, EventHandler<Params, any>>,
  Messages extends Record<string, z.ZodType<Payload>>,
> = Omit<ChannelDefinition<Params>, "topic" | "events" | "messages"> & {
  topic: Topic;
  events?: Events;
  messages?: Messages;
};

type _BadPattern = `use "prefix:*" (one "*", last, after a ":") or an exact topic without "*"`;

/**
 * What a literal topic pattern must also satisfy, so TypeScript refuses `"chat*"`, `"chat:"`,
 * `"*"` and `"chat:*:x"` where they are written: a bad one asks for a `topicPattern` property
 * whose type is the fix (`Property 'topicPattern' is missing … use "prefix:*" …`). A topic
 * that is only a `string` is checked when defined, at run time.
 */
export type TopicPatternCheck<T extends string> = string extends T ? unknown
  : T extends `${infer P}*` ? P extends `${string}*${string}` | "" ? { topicPattern: _BadPattern }
    : P extends `${string}:` ? unknown
    : { topicPattern: _BadPattern }
  : T extends `${string}*${string}` ? { topicPattern: _BadPattern }
  : T extends `${string}:`
    ? { topicPattern: `an exact topic does not end with ":"; for a prefix write "${T}*"` }
  : unknown;

/**
 * Identity function that gives a channel definition its types: the join params from
 * `joinParams` (events do not decide them), and the literal topic, event names and message
 * schemas, kept for typed clients.
 */
export function defineChannel<
  Params = Payload,
  const Topic extends string = string,
  // deno-lint-ignore no-explicit-any
  Events extends Record<string, EventHandler<NoInfer<Params>, any>> = Record<never, never>,
  Messages extends Record<string, z.ZodType<Payload>> = Record<never, never>,
>(
  definition: Omit<ChannelDefinition<Params>, "topic" | "events" | "messages"> & {
    topic: Topic;
    events?: Events;
    messages?: Messages;
  } & TopicPatternCheck<Topic>,
): TypedChannelDefinition<Params, Topic, Events, Messages> {
  // Refuses what TypeScript did not catch (code run unchecked): see channel_checks.ts.
  checkChannel(definition, CHANNEL_OPTION_KINDS);
  _checkCount(definition.topic, "crowdThreshold", definition.crowdThreshold, 1_000_000);
  _checkCount(definition.topic, "crowdVisible", definition.crowdVisible, 1_000);
  return definition;
}

/** A crowd option is a whole number from 1 to `max` (or absent). */
function _checkCount(topic: string, name: string, value: number | undefined, max: number): void {
  if (value === undefined || (Number.isInteger(value) && value >= 1 && value <= max)) return;
  throw new Error(`invalid ${name} ${value} for "${topic}": use a whole number from 1 to ${max}`);
}

/** Finds the channel for a topic. */
export class ChannelRouter {
  readonly #channels: ChannelDefinition<unknown>[];

  // deno-lint-ignore no-explicit-any
  constructor(channels: ChannelDefinition<any>[]) {
    // Channels not made with defineChannel are checked here too, and the set as a whole.
    checkChannelSet(channels, CHANNEL_OPTION_KINDS);
    this.#channels = channels;
  }

  /** True when some channel declares `access: "public"` (anonymous visitors may connect). */
  get hasPublicChannel(): boolean {
    return this.#channels.some((c) => c.access === "public");
  }

  /** The channel whose pattern matches `topic`, with the subtopic, or undefined. */
  match(topic: string): { channel: ChannelDefinition<unknown>; subtopic: string } | undefined {
    for (const channel of this.#channels) {
      const pattern = channel.topic;
      if (pattern.endsWith("*")) {
        const prefix = pattern.slice(0, -1);
        if (topic.startsWith(prefix) && topic.length > prefix.length) {
          return { channel, subtopic: topic.slice(prefix.length) };
        }
      } else if (topic === pattern) {
        return { channel, subtopic: "" };
      }
    }
    return undefined;
  }
}
