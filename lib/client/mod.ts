/**
 * The Switchboard client, served by the app as `/assets/switchboard-client.js` and importable
 * as TypeScript from Deno and Node: {@link connect} gives channels (join, push with replies,
 * messages, presence) and read-only feeds over one connection per browser, shared by its tabs
 * (a SharedWorker, else a leader tab elected with Web Locks), typed from the app's channel
 * definitions. Also: {@link openFeed} (a single SSE feed with resume and a polling fallback),
 * helpers for the official `phoenix` client, and formatting helpers. See `lib/client/README.md`.
 *
 * @example
 * ```ts
 * import { connect } from "/assets/switchboard-client.js";
 * const client = connect({ params: { user_id: "ann" } });
 * const record = client.channel("record:42", { name: "Ann" });
 * record.on("patch", (patch) => console.log(patch));
 * await record.join();
 * ```
 * @module
 */
export {
  type Channel,
  type ChannelPresence,
  type Client,
  type ClientOptions,
  connect,
  type FeedMessage,
  type FeedRequest,
  type PayloadSchema,
  type PushOptions,
  ReplyError,
  type SharedFeed,
} from "./client.ts";
export { availableSharing, type SharingMode } from "./link.ts";
export type {
  AnyChannel,
  ChannelFor,
  ChannelList,
  JoinParamsOf,
  MessageMapOf,
  PushMapOf,
  TopicOf,
} from "./typed.ts";
export type { PresenceCount, PresenceEntry } from "./wire.ts";
export { MAX_PAGE_LIMIT, type PresenceCounts, type PresencePage } from "./crowd.ts";
export {
  type ConnectionState,
  type Feed,
  type FeedEvent,
  type FeedOptions,
  openFeed,
} from "./feed.ts";
export {
  browserUserId,
  type ConnectOptions,
  connectPhoenix,
  type PhoenixConnection,
  type PresenceUser,
  presenceUsers,
} from "./phoenix_helpers.ts";
export { describeStatus, formatAgo, formatClock, initials } from "./format.ts";
