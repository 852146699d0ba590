/**
 * The Switchboard browser client, served by the app as `/assets/switchboard-client.js`:
 * a Server-Sent Events feed with resume, honest state and a polling fallback, and helpers for
 * the official `phoenix` client. See `lib/client/README.md`.
 * @module
 */
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
