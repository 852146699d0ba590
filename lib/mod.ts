/**
 * Switchboard's library module, re-exported by the package entry (`mod.ts` at the root,
 * `@switchboard/switchboard`, which adds `createApp`). Channels import the package entry;
 * channel tests import `@switchboard/switchboard/testing`.
 *
 * @example A channel in ten lines
 * ```ts
 * import { defineChannel, error, event } from "@switchboard/switchboard";
 * import { z } from "zod";
 *
 * export const room = defineChannel({
 *   topic: "room:*",
 *   join: (ctx) => ctx.userId === "banned" ? error({ reason: "unauthorized" }) : { welcome: ctx.subtopic },
 *   events: {
 *     shout: event(z.object({ body: z.string().max(500) }), (ctx, msg) => ctx.broadcast("shout", msg)),
 *   },
 * });
 * ```
 *
 * @example Embedding a node, configured from the environment
 * ```ts
 * import { CONFIG_KEYS, createApp, createSwitchboard, loadConfig } from "@switchboard/switchboard";
 * import { denoRuntime, readEnv } from "@switchboard/switchboard/deno";
 * const switchboard = createSwitchboard({ config: loadConfig(readEnv(CONFIG_KEYS)), channels: [room], timers: denoRuntime.timers });
 * Deno.serve(createApp(switchboard, { upgrade: denoRuntime.upgrade }).fetch);
 * ```
 * @module
 */

// Writing channels.
export {
  binaryEvent,
  type ChannelContext,
  type ChannelDefinition,
  defineChannel,
  error,
  event,
  type EventHandler,
  type HandlerResult,
  ok,
  Reply,
  type TokenRefresh,
  type TopicPatternCheck,
  type TransportName,
} from "./core/channel.ts";
export { ChannelDefinitionError } from "./core/channel_checks.ts";
export { InvalidPayloadError } from "./core/outbound.ts";
export type { FieldError } from "./core/validation.ts";
export type { Payload } from "./core/message.ts";
export type { PresenceMeta, PresenceState } from "./core/presence.ts";
export type { PresencePage } from "./core/crowd.ts";
export type { Broadcast } from "./core/broadcast.ts";
export {
  CloseCode,
  ControlEvent,
  EndReason,
  eventNameProblem,
  PhxEvent,
  ReplyReason,
  SupabaseEvent,
} from "./core/protocol.ts";
export { inScope, signToken, type TokenClaims, verifyToken } from "./auth.ts";
export type { AccessDecision } from "./core/access.ts";

// Built-in channel kinds.
export { REALTIME_PREFIX, realtimeChannel } from "./supabase/realtime.ts";

// Running a node.
export { type Admission, Switchboard, type SwitchboardOptions } from "./core/switchboard.ts";
export type { Identity } from "./core/session_services.ts";
export { createSwitchboard, type NodeSetup, warnDevDefaults } from "./server.ts";
export { type Config, CONFIG_KEYS, ConfigError, loadConfig } from "./config.ts";
export { createLogger, type Logger, type LogLevel } from "./log.ts";
export { type Clock, plainTimers, type Timers } from "./core/time.ts";
export type { UpgradedWebSocket, UpgradeWebSocket } from "./transports/upgrade.ts";

// Who is watching: occupancy (one node, the cluster) and webhooks to the app's backend.
export {
  LocalOccupancy,
  type NodeExtensions,
  type Occupancy,
  type OccupancyReader,
} from "./core/occupancy.ts";
export { ClusterOccupancy, type ClusterOccupancyOptions } from "./cluster/occupancy.ts";
export {
  SIGNATURE_HEADER,
  signWebhook,
  type WebhookBody,
  type WebhookEvent,
  type WebhookEventName,
  WebhookSender,
  type WebhookSenderOptions,
} from "./webhooks/sender.ts";

// Brokers: how nodes act as one.
export type { Broker, BrokerState } from "./core/broker.ts";
export { MemoryBroker } from "./core/broker_memory.ts";
export { RedisBroker, type RedisBrokerOptions } from "./cluster/redis/broker.ts";
