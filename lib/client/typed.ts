/**
 * Types that carry a server's channel definitions into the client: give `connect` the type of
 * the app's channel list (`import type`) and `channel(topic, params)`, `push` and `on` check
 * topic, join params, event names and payloads at compile time. Type-only: nothing here runs,
 * so the browser bundle never includes zod or server code.
 *
 * @example
 * ```ts
 * import type { channels } from "../channels/mod.ts";
 * const client = connect<typeof channels>({ params: { user_id: "ann" } });
 * const record = client.channel("record:42", { name: "Ann" });
 * await record.push("state", { state: "editing" }); // ok
 * // record.push("state", { state: "sleeping" });    // compile error
 * ```
 * @module
 */
import type { z } from "zod";
import type { EventHandler } from "../core/channel.ts";

/** A JSON object payload. */
export type Payload = Record<string, unknown>;

/** Any channel definition, as `defineChannel` returns it. */
export type AnyChannel = {
  topic: string;
  joinParams?: unknown;
  // deno-lint-ignore no-explicit-any
  events?: Record<string, EventHandler<any, any>>;
  messages?: Record<string, unknown>;
};

/** The channel list of an app (`typeof channels`), or `never` for an untyped client. */
export type ChannelList = readonly AnyChannel[];

/** The topics a pattern matches: `record:*` → `record:${string}`. */
export type TopicOfPattern<P extends string> = P extends `${infer Prefix}*` ? `${Prefix}${string}`
  : P;

/**
 * The topics one channel serves, when its type kept the literal pattern. A channel defined
 * with an explicit type argument (`defineChannel<Params>({…})`) has a plain `string` topic: it
 * would match every topic, so typed clients leave it out (e.g. `realtime:*`, which is for
 * @supabase/realtime-js).
 */
type _TopicsOf<D> = D extends { topic: infer P extends string }
  ? string extends P ? never : TopicOfPattern<P>
  : never;

/** Every topic an app's channels serve; `string` when the client is untyped. */
export type TopicOf<C extends ChannelList> = [C] extends [never] ? string : _TopicsOf<C[number]>;

/** The definition serving `T`. */
export type ChannelFor<C extends ChannelList, T extends string> = [C] extends [never] ? AnyChannel
  : _Serving<C[number], T>;

type _Serving<D, T extends string> = D extends unknown ? T extends _TopicsOf<D> ? D : never
  : never;

/** The join params of a channel: what its `joinParams` schema accepts. */
export type JoinParamsOf<D> = D extends { joinParams?: infer S }
  ? [Exclude<S, undefined>] extends [z.ZodType<infer P>] ? unknown extends P ? Payload
    : P & Payload
  : Payload
  : Payload;

type _Events<D> = D extends { events?: infer E } ? [E] extends [undefined] ? never
  : Exclude<E, undefined>
  : never;

/**
 * The events a client may push and their payloads: those of `events`, or any event when the
 * channel declares none (it may still answer them with `handleIn`).
 */
export type PushMapOf<D> = [keyof _Events<D>] extends [never] ? Record<string, Payload>
  : {
    [K in keyof _Events<D> & string]: _Events<D>[K] extends EventHandler<infer _P, infer In>
      ? In & Payload
      : Payload;
  };

/** The events a client receives and their payloads (any event when the channel declares none). */
export type MessageMapOf<D> = D extends { messages?: infer M }
  ? [Exclude<M, undefined>] extends [never] ? Record<string, Payload>
  : { [K in keyof Exclude<M, undefined> & string]: z.output<Exclude<M, undefined>[K]> & Payload }
  : Record<string, Payload>;
