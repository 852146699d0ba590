/**
 * HTTP routing of the Upstash REST protocol: auth, `POST /`, `/pipeline`, `/multi-exec`,
 * `/subscribe/<channel>`, `/psubscribe/<pattern>` and path-style commands (`GET /get/key`).
 * @module
 */
import {
  answerFor,
  BadRequestError,
  type Command,
  isBlocking,
  parseCommand,
  parsePipeline,
  runCommand,
  runMulti,
  runPipeline,
  withTimeout,
} from "./commands.ts";
import { openDedicated, type RedisConnection } from "./redis.ts";
import { openSubscription, type Subscription, type SubscriptionKind } from "./subscribe.ts";

/** What the handler needs from the bridge. */
export interface HandlerContext {
  /** The bearer token clients must send. */
  token: string;
  /** URL for dedicated (subscriber, blocking) connections. */
  redisUrl: string;
  /** The shared, multiplexed connection for ordinary commands. */
  connection: RedisConnection;
  /** As in `BridgeOptions` of bridge.ts. */
  commandTimeoutMs: number;
  /** As in `BridgeOptions` of bridge.ts. */
  connectTimeoutMs: number;
  /** As in `BridgeOptions` of bridge.ts. */
  sseHeartbeatMs: number;
  /** As in `BridgeOptions` of bridge.ts. */
  maxBufferedEvents: number;
  /** Open subscription streams, closed by the bridge on shutdown. */
  subscriptions: Set<Subscription>;
  /** Dedicated connections in use by blocking commands, destroyed on shutdown. */
  dedicated: Set<RedisConnection>;
  /** True once the bridge is closing; new requests get 503. */
  isClosing(): boolean;
}

const encoder = new TextEncoder();

/** Compares two secrets in time independent of where they differ. */
export function safeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ (y[i % (y.length || 1)] ?? 0);
  return diff === 0;
}

function json(body: unknown, status = 200): Response {
  return Response.json(body, { status });
}

function fail(status: number, error: string): Response {
  return json({ error }, status);
}

function authorized(request: Request, url: URL, token: string): boolean {
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  const given = match?.[1] ?? url.searchParams.get("_token") ?? "";
  return given !== "" && safeEqual(given, token);
}

async function readJson(request: Request): Promise<unknown> {
  const text = await request.text();
  if (text.trim() === "") {
    throw new BadRequestError('ERR empty request body: expected JSON such as ["PING"]');
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new BadRequestError(
      `ERR failed to parse request body as JSON: ${(error as Error).message}`,
    );
  }
}

/** Splits `/set/key/value` into `["set","key","value"]`, percent-decoded. */
function pathCommand(pathname: string): Command {
  return pathname.split("/").filter((part) => part !== "").map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw new BadRequestError(`ERR invalid percent-encoding in path segment '${part}'`);
    }
  });
}

/** Creates the request handler (a `Deno.serve` handler). */
export function createHandler(ctx: HandlerContext): (request: Request) => Promise<Response> {
  /** Runs `work` on the shared connection, or on a dedicated one if it may block. */
  async function execute<T>(
    request: Request,
    blocking: boolean,
    work: (connection: RedisConnection) => Promise<T>,
  ): Promise<T> {
    if (!blocking) return await withTimeout(work(ctx.connection), ctx.commandTimeoutMs);
    const connection = await openDedicated(ctx.redisUrl, {
      reconnect: false,
      name: "upstash-bridge-blocking",
      timeoutMs: ctx.connectTimeoutMs,
      signal: request.signal,
    });
    ctx.dedicated.add(connection);
    const onAbort = () => connection.destroy();
    request.signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await work(connection);
    } finally {
      request.signal.removeEventListener("abort", onAbort);
      ctx.dedicated.delete(connection);
      connection.destroy();
    }
  }

  async function subscribe(request: Request, kind: SubscriptionKind, rest: string) {
    const what = kind === "subscribe" ? "channel" : "pattern";
    let target: string;
    try {
      target = decodeURIComponent(rest);
    } catch {
      return fail(400, `ERR invalid percent-encoding in ${what} '${rest}'`);
    }
    if (target === "") return fail(400, `ERR missing ${what}: POST /${kind}/<${what}>`);
    if (!ctx.connection.isReady) return answer(new Error("The client is offline"));
    await request.body?.cancel();
    const opened: { subscription?: Subscription } = {};
    const subscription = opened.subscription = await openSubscription({
      redisUrl: ctx.redisUrl,
      kind,
      target,
      heartbeatMs: ctx.sseHeartbeatMs,
      connectTimeoutMs: ctx.connectTimeoutMs,
      maxBufferedEvents: ctx.maxBufferedEvents,
      onClose: () => {
        if (opened.subscription) ctx.subscriptions.delete(opened.subscription);
      },
    });
    if (!subscription.closed) ctx.subscriptions.add(subscription);
    if (ctx.isClosing()) subscription.close();
    return subscription.response;
  }

  async function route(request: Request, url: URL): Promise<Response> {
    const path = url.pathname;
    const base64 = request.headers.get("upstash-encoding")?.toLowerCase() === "base64";
    const streamMatch = /^\/(subscribe|psubscribe)(?:\/(.*))?$/.exec(path);
    if (streamMatch) {
      return await subscribe(request, streamMatch[1] as SubscriptionKind, streamMatch[2] ?? "");
    }
    if (request.method !== "POST" && request.method !== "GET") {
      return fail(405, `ERR method ${request.method} not allowed: use POST`);
    }
    if (path === "/pipeline" || path === "/multi-exec") {
      if (request.method !== "POST") return fail(405, `ERR use POST ${path}`);
      const commands = parsePipeline(await readJson(request));
      const entries = path === "/multi-exec"
        ? await execute(request, false, (c) => runMulti(c, commands, base64))
        : await execute(
          request,
          commands.some(isBlocking),
          (c) => runPipeline(c, commands, base64),
        );
      return json(entries);
    }
    let command: Command;
    if (path === "/") {
      if (request.method !== "POST") {
        return fail(400, 'ERR send a command as a JSON array in a POST body, e.g. ["PING"]');
      }
      command = parseCommand(await readJson(request));
    } else {
      command = pathCommand(path);
      if (request.method === "POST") {
        const body = await request.text();
        if (body !== "") command.push(body);
      }
      if (command.length === 0) return fail(400, "ERR empty command");
    }
    const result = await execute(
      request,
      isBlocking(command),
      (c) => runCommand(c, command, base64),
    );
    return json({ result });
  }

  function answer(error: unknown): Response {
    const { status, error: message } = answerFor(error);
    return fail(status, message);
  }

  return async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    if (!authorized(request, url, ctx.token)) return fail(401, "Unauthorized");
    if (ctx.isClosing()) return fail(503, "ERR upstash-bridge is shutting down");
    try {
      return await route(request, url);
    } catch (error) {
      return answer(error);
    }
  };
}
