/**
 * Switchboard on Cloudflare Workers. The Worker's `fetch` routes every request (sockets, SSE,
 * long-poll, API, pages, health, metrics) to a node Durable Object ({@link SwitchboardNode}),
 * and one node object is one Switchboard node: hub, sessions and presence live in its memory,
 * its configuration comes from the Worker's bindings (`[vars]` and secrets, the same variables
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
  CONFIG_KEYS,
  ConfigError,
  createApp,
  createLogger,
  createSwitchboard,
  loadConfig,
  warnDevDefaults,
} from "@switchboard/switchboard";
import { bindingsEnv, cloudflareRuntime } from "@switchboard/switchboard/cloudflare";
import { chooseNode, DEFAULT_NODE } from "./routing.ts";

/** A Durable Object's id: `name` is set for ids made with `idFromName`. */
interface DurableObjectId {
  readonly name?: string;
}

/** What the runtime hands a Durable Object's constructor (the part used here). */
export interface DurableObjectState {
  readonly id: DurableObjectId;
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

/** One Switchboard node: a Durable Object holding a hub, its sessions and their presence. */
export class SwitchboardNode {
  readonly #state: DurableObjectState;
  readonly #env: Env;
  #app?: { fetch(request: Request): Response | Promise<Response> };

  constructor(state: DurableObjectState, env: Env) {
    this.#state = state;
    this.#env = env;
  }

  /** Every request the Worker routes to this node. */
  fetch(request: Request): Response | Promise<Response> {
    this.#app ??= this.#start(request.headers.get(_NODE_HEADER) ?? DEFAULT_NODE);
    return this.#app.fetch(request);
  }

  /** Builds the node on its first request. A bad configuration answers every request with it. */
  #start(forwardedName: string): { fetch(request: Request): Response | Promise<Response> } {
    const nodeId = this.#state.id.name ?? forwardedName;
    let config;
    try {
      config = loadConfig({ ...bindingsEnv(this.#env, CONFIG_KEYS), NODE_ID: nodeId });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      const error = `switchboard configuration: ${err.message}. Fix the Worker's variables ` +
        "(wrangler.toml [vars], secrets, or the environment of deno task dev:worker).";
      console.error(error);
      return { fetch: () => Response.json({ error }, { status: 500 }) };
    }
    const log = createLogger(config.logLevel);
    const switchboard = createSwitchboard({
      config,
      channels,
      timers: cloudflareRuntime.timers,
      log,
    });
    warnDevDefaults(config, log);
    log.info(`switchboard node ${nodeId} started (${switchboard.brokerState().kind} broker)`);
    return createApp(switchboard, { upgrade: cloudflareRuntime.upgrade, pages: true });
  }
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
      env.UPSTASH_REDIS_REST_URL !== "" && typeof env.UPSTASH_REDIS_REST_TOKEN === "string" &&
      env.UPSTASH_REDIS_REST_TOKEN !== "";
    if (nodes > 1 && !clustered) {
      return Response.json({
        error: `SWITCHBOARD_NODES=${nodes} needs the Redis broker: set UPSTASH_REDIS_REST_URL ` +
          "and UPSTASH_REDIS_REST_TOKEN, or use one node",
      }, { status: 500 });
    }
    const choice = chooseNode(request, { nodes, clustered });
    if ("error" in choice) return Response.json({ error: choice.error }, { status: choice.status });
    const forwarded = new Request(request);
    forwarded.headers.set(_NODE_HEADER, choice.node);
    const node = env.SWITCHBOARD_NODE.get(env.SWITCHBOARD_NODE.idFromName(choice.node));
    return node.fetch(forwarded);
  },
};
