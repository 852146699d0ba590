/**
 * What a `Switchboard` is built from ({@link SwitchboardOptions}) and what opening a
 * session takes ({@link OpenSession}).
 *
 * @example
 * ```ts
 * const options: SwitchboardOptions = { config: { nodeId: "eu-1" }, channels: [] };
 * ```
 * @module
 */
import type { Broker } from "./broker.ts";
import type { ChannelDefinition } from "./channel.ts";
import type { Connection } from "./connection.ts";
import type { Authenticate, Identity } from "./identity.ts";
import type { Logger } from "../log.ts";
import type { NodeOptions } from "./options.ts";
import type { Serializer } from "./serializer.ts";
import type { Clock, Timers } from "./time.ts";

/**
 * Options of `Switchboard`. `C` is what the embedder passes as `config`: the core reads
 * only its {@link NodeOptions} fields (defaults for the rest); the server wiring passes its
 * whole configuration and reads it back as {@link Switchboard.config}.
 */
export interface SwitchboardOptions<C extends Partial<NodeOptions> = Partial<NodeOptions>> {
  config: C;
  /**
   * Tells who holds a connect token (the server wiring injects the HS256 JWT verifier when
   * `SOCKET_SECRET` is set). Without it nothing is verified and `user_id` is trusted (dev).
   */
  authenticate?: Authenticate;
  // deno-lint-ignore no-explicit-any
  channels: ChannelDefinition<any>[];
  /** Defaults to the in-memory broker (one process). */
  broker?: Broker;
  clock?: Clock;
  /** The runtime's timers (default: plain `setInterval`; Deno's adapter unrefs them). */
  timers?: Timers;
  /**
   * The timers of the idle and token sweep (default `timers`). A Cloudflare node object that
   * hibernates passes timers that run only while it is awake anyway (a pending interval would
   * keep it in memory), and sweeps from an alarm where it must.
   */
  sweepTimers?: Timers;
  /** Where the library logs (default: warnings and errors to stderr). */
  log?: Logger;
}

/** What `Switchboard.openSession` needs. */
export interface OpenSession {
  connection: Connection;
  /** The connect params; `token` and `vsn` are not kept. */
  params: Record<string, string>;
  identity: Identity;
  /** Decodes the client's frames (default v2). */
  serializer?: Serializer;
  /**
   * The session is rebuilt from a snapshot (`session_snapshot.ts`), not a new connection: not
   * counted in `switchboard_connections_total`.
   */
  restored?: boolean;
}
