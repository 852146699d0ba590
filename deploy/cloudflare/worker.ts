/**
 * Switchboard on Cloudflare Workers. The Worker's `fetch` routes every request (sockets, SSE,
 * long-poll, API, pages, health, metrics) to a node Durable Object ({@link SwitchboardNode}),
 * and one node object is one Switchboard node: hub, sessions and presence live in its memory
 * while it is awake; its WebSockets are hibernatable, so it may sleep while they stay open and
 * rebuilds them from their attachments and its storage on the next event (docs/hibernation.md).
 * Its configuration comes from the Worker's bindings (`[vars]` and secrets, the same variables
 * as `deno task start`), its node id is the object's name. Several node objects act as one
 * through the Redis broker (`UPSTASH_REDIS_REST_URL` / `_TOKEN`, Upstash over HTTP). Which node
 * serves which request is {@link chooseNode}'s decision.
 *
 * Run it locally on workerd with `deno task dev:worker`; deploy with `wrangler deploy`
 * (docs/deployment.md, "Cloudflare Workers").
 * @module
 */
import { channels } from "../../channels/mod.ts";
import {
  type Config,
  CONFIG_KEYS,
  ConfigError,
  createApp,
  createLogger,
  createSwitchboard,
  loadConfig,
  type Switchboard,
  warnDevDefaults,
} from "@switchboard/switchboard";
import {
  AwakeTimers,
  bindingsEnv,
  cloudflareRuntime,
  FIXED_PING,
  FIXED_PONG,
  HibernatingSockets,
  type HibernationState,
  NodeStorage,
  type SqlStorage,
} from "@switchboard/switchboard/cloudflare";
import { chooseNode, DEFAULT_NODE } from "./routing.ts";

/** A Durable Object's id: `name` is set for ids made with `idFromName`. */
interface DurableObjectId {
  readonly name?: string;
}

/** What the runtime hands a Durable Object's constructor (the part used here). */
export interface DurableObjectState extends HibernationState {
  readonly id: DurableObjectId;
  readonly storage: {
    readonly sql: SqlStorage;
    setAlarm(at: number): Promise<void> | void;
  };
  setWebSocketAutoResponse(pair?: unknown): void;
}

/** A binding to the node objects (`[[durable_objects.bindings]]` in wrangler.toml). */
interface DurableObjectNamespace {
  idFromName(name: string): DurableObjectId;
  get(id: DurableObjectId): { fetch(request: Request): Promise<Response> };
}

/** The Worker's bindings: the node namespace and the configuration variables. */
export interface Env {
  SWITCHBOARD_NODE: DurableObjectNamespace;
  /** How many node objects share the clients (default 1; more need the Redis broker). */
  SWITCHBOARD_NODES?: string;
  [variable: string]: unknown;
}

/** Set by the Worker on what it forwards, for runtimes whose ids do not carry their name. */
const _NODE_HEADER = "x-switchboard-node";
/** More node objects than this is a typo, not a deployment. */
const _MAX_NODES = 256;

/** A running node: its app and what the object's events reach. */
interface _Running {
  fetch(request: Request): Response | Promise<Response>;
  switchboard?: Switchboard<Config>;
  sockets?: HibernatingSockets;
  storage?: NodeStorage;
  sweepTimers?: AwakeTimers;
}

/**
 * One Switchboard node: a Durable Object holding a hub, its sessions and their presence. Its
 * WebSockets are hibernatable (docs/hibernation.md): with only idle WebSockets connected the
 * object leaves memory, and is rebuilt from its sockets' attachments and its storage on the
 * next event, before handling it.
 */
export class SwitchboardNode {
  readonly #state: DurableObjectState;
  readonly #env: Env;
  #node?: _Running;
  /** When the alarm is set for (ms), as far as this life of the object knows. */
  #alarmAt?: number;

  constructor(state: DurableObjectState, env: Env) {
    this.#state = state;
    this.#env = env;
    // Our client's fixed heartbeat is answered by the runtime, without waking the object.
    const Pair = (globalThis as {
      WebSocketRequestResponsePair?: new (a: string, b: string) => unknown;
    })
      .WebSocketRequestResponsePair;
    if (Pair) state.setWebSocketAutoResponse(new Pair(FIXED_PING, FIXED_PONG));
    // Woken with sockets still open: rebuild every session before the event is handled.
    if (state.getWebSockets().length > 0) this.#running();
  }

  /** Every request the Worker routes to this node. */
  async fetch(request: Request): Promise<Response> {
    const node = this.#running(request.headers.get(_NODE_HEADER) ?? undefined);
    node.sweepTimers?.tick();
    const response = await node.fetch(request);
    // After the response: a WebSocket's session (and its token's expiry) exists only now.
    this.#arm();
    const path = new URL(request.url).pathname;
    if (path !== "/healthz" || node.storage === undefined || !response.ok) return response;
    return _withWakes(response, node.storage.wakes);
  }

  /** A frame from a hibernatable socket. */
  webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): void {
    const node = this.#running();
    node.sweepTimers?.tick();
    node.sockets?.message(ws, data);
    this.#arm();
  }

  /** A hibernatable socket closed (the client left, also while the object slept). */
  webSocketClose(ws: WebSocket, code: number): void {
    this.#running().sockets?.close(ws, code);
    this.#arm();
  }

  /** A hibernatable socket failed: as a close. */
  webSocketError(ws: WebSocket): void {
    this.#running().sockets?.close(ws, 1011);
    this.#arm();
  }

  /** The alarm: a sweep that had to happen while the object slept (tokens expiring). */
  alarm(): void {
    this.#alarmAt = undefined;
    const node = this.#running();
    node.sweepTimers?.tick(true);
    node.sockets?.earliestExpiry(true);
    this.#arm();
  }

  /**
   * Sets the alarm for the next sweep that cannot wait for an event: the earliest token
   * expiry of a WebSocket session, and, while SSE or long-poll sessions (which keep the object
   * awake anyway) are open, the sweep's own interval.
   */
  #arm(): void {
    const node = this.#node;
    if (!node?.switchboard || !node.sockets || !node.sweepTimers) return;
    const leewayMs = node.switchboard.config.tokenLeewaySeconds * 1000;
    const exp = node.sockets.earliestExpiry();
    let next = exp === undefined ? undefined : exp * 1000 + leewayMs;
    if (node.switchboard.sessionCount > node.sockets.size) {
      const due = node.sweepTimers.nextDue;
      if (due !== undefined && !(next! <= due)) next = due;
    }
    if (next === undefined || next === this.#alarmAt) return;
    this.#alarmAt = next;
    void this.#state.storage.setAlarm(next);
  }

  /** The node, built on the first event of this life of the object. */
  #running(forwardedName?: string): _Running {
    return this.#node ??= this.#start(forwardedName);
  }

  /**
   * Builds the node. Its name is the object's; it is kept in storage for wakes, which have no
   * request to read it from. A bad configuration answers every request with it.
   */
  #start(forwardedName: string | undefined): _Running {
    let config;
    let storage;
    try {
      storage = new NodeStorage(this.#state.storage.sql);
      const stored = storage.meta("node");
      const nodeId = this.#state.id.name ?? stored ?? forwardedName ??
        DEFAULT_NODE;
      config = loadConfig({
        ...bindingsEnv(this.#env, CONFIG_KEYS),
        NODE_ID: nodeId,
      });
      storage.limits = config.history;
      if (stored === undefined) storage.setMeta("node", nodeId);
      // Built before, in an earlier life: this is a wake (after hibernation or eviction).
      else storage.countWake();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      const error = `switchboard configuration: ${err.message}. Fix the Worker's variables ` +
        "(wrangler.toml [vars], secrets, or the environment of deno task dev:worker).";
      console.error(error);
      return { fetch: () => Response.json({ error }, { status: 500 }) };
    }
    const log = createLogger(config.logLevel);
    const sweepTimers = new AwakeTimers();
    const switchboard = createSwitchboard({
      config,
      channels,
      timers: cloudflareRuntime.timers,
      sweepTimers,
      log,
    });
    const kept = storage;
    switchboard.hub.restore(kept.messages(config.nodeId, Date.now()));
    switchboard.hub.persistWith((b) => kept.keep(b));
    switchboard.metrics.counter(
      "switchboard_wakes_total",
      "times this node object was rebuilt after hibernation or eviction (kept in its storage)",
      () => kept.wakes,
    );
    const sockets = new HibernatingSockets(this.#state, storage);
    const restored = sockets.restore(switchboard, {
      maxBuffered: config.maxOutboundBytes,
      closeTimeoutMs: config.closeTimeoutMs,
    });
    warnDevDefaults(config, log);
    log.info(
      `switchboard node ${config.nodeId} started (${switchboard.brokerState().kind} broker, ` +
        `wake ${storage.wakes}, ${restored} sessions rebuilt)`,
    );
    const app = createApp(switchboard, { upgrade: sockets.upgrade, pages: true });
    return {
      fetch: (request) => app.fetch(request),
      switchboard,
      sockets,
      storage,
      sweepTimers,
    };
  }
}

/** `/healthz` with the node object's `wakes` added. */
async function _withWakes(
  response: Response,
  wakes: number,
): Promise<Response> {
  if (!response.ok) return response;
  const body = await response.json();
  return Response.json({ ...body, wakes }, {
    status: response.status,
    headers: response.headers,
  });
}

/** `SWITCHBOARD_NODES` as a count, or why it is not one. */
export function nodeCount(value: unknown): number | { error: string } {
  if (value === undefined || value === "") return 1;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > _MAX_NODES) {
    return {
      error: `SWITCHBOARD_NODES=${String(value)}: use a whole number from 1 to ${_MAX_NODES}`,
    };
  }
  return n;
}

/**
 * The Worker: routes every request to its node object ({@link chooseNode}); refuses
 * `SWITCHBOARD_NODES` > 1 without Redis, since unconnected nodes would split the clients.
 */
export default {
  /** Routes the request to its node object. */
  fetch(request: Request, env: Env): Promise<Response> | Response {
    const nodes = nodeCount(env.SWITCHBOARD_NODES);
    if (typeof nodes !== "number") return Response.json(nodes, { status: 500 });
    const clustered = typeof env.UPSTASH_REDIS_REST_URL === "string" &&
      env.UPSTASH_REDIS_REST_URL !== "" &&
      typeof env.UPSTASH_REDIS_REST_TOKEN === "string" &&
      env.UPSTASH_REDIS_REST_TOKEN !== "";
    if (nodes > 1 && !clustered) {
      return Response.json({
        error: `SWITCHBOARD_NODES=${nodes} needs the Redis broker: set UPSTASH_REDIS_REST_URL ` +
          "and UPSTASH_REDIS_REST_TOKEN, or use one node",
      }, { status: 500 });
    }
    const choice = chooseNode(request, { nodes, clustered });
    if ("error" in choice) {
      return Response.json({ error: choice.error }, { status: choice.status });
    }
    const forwarded = new Request(request);
    forwarded.headers.set(_NODE_HEADER, choice.node);
    const node = env.SWITCHBOARD_NODE.get(
      env.SWITCHBOARD_NODE.idFromName(choice.node),
    );
    return node.fetch(forwarded);
  },
};
