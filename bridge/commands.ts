/**
 * Validation and execution of Upstash REST command bodies against Redis: single commands,
 * `/pipeline` and `/multi-exec`.
 * @module
 */
import { z } from "zod";
import { BridgeTimeoutError, errorAnswer, isRedisReplyError, toUpstash } from "./resp.ts";
import type { ErrorAnswer, UpstashValue } from "./resp.ts";
import type { RedisConnection } from "./redis.ts";

/** A validated command: name and arguments as strings. */
export type Command = string[];

/** One entry of a `/pipeline` or `/multi-exec` answer. */
export type PipelineEntry = { result: UpstashValue } | { error: string };

/** Thrown for a request body that is not a valid command (→ HTTP 400). */
export class BadRequestError extends Error {
  /** Creates the error; `message` is shown to the client as is, e.g. `ERR ...`. */
  constructor(message: string) {
    super(message);
    this.name = "BadRequestError";
  }
}

const argSchema = z.union([z.string(), z.number(), z.boolean()]);
const commandSchema = z.array(argSchema).min(1, "a command needs at least its name");
const pipelineSchema = z.array(commandSchema).min(1, "the pipeline is empty");

function describeIssues(error: z.ZodError): string {
  return error.issues.slice(0, 3).map((issue) =>
    `${issue.path.length ? `at [${issue.path.join("][")}]: ` : ""}${issue.message}`
  ).join("; ");
}

/** Parses the body of `POST /`: a JSON array such as `["SET","k","v"]`. */
export function parseCommand(body: unknown): Command {
  const parsed = commandSchema.safeParse(body);
  if (!parsed.success) {
    throw new BadRequestError(
      `ERR expected a JSON array of strings/numbers like ["SET","key","value"] (${
        describeIssues(parsed.error)
      })`,
    );
  }
  return parsed.data.map(String);
}

/** Parses the body of `/pipeline` and `/multi-exec`: `[["SET","k","v"],["GET","k"]]`. */
export function parsePipeline(body: unknown): Command[] {
  const parsed = pipelineSchema.safeParse(body);
  if (!parsed.success) {
    throw new BadRequestError(
      `ERR expected a JSON array of commands like [["SET","k","v"],["GET","k"]] (${
        describeIssues(parsed.error)
      })`,
    );
  }
  return parsed.data.map((command) => command.map(String));
}

/** Commands that change or depend on connection state; they would break the shared socket. */
const DENIED = new Set([
  "SUBSCRIBE",
  "PSUBSCRIBE",
  "SSUBSCRIBE",
  "UNSUBSCRIBE",
  "PUNSUBSCRIBE",
  "SUNSUBSCRIBE",
  "MONITOR",
  "SELECT",
  "MULTI",
  "EXEC",
  "DISCARD",
  "WATCH",
  "UNWATCH",
  "QUIT",
  "RESET",
  "HELLO",
  "AUTH",
  "SYNC",
  "PSYNC",
  "REPLCONF",
]);
const DENIED_CLIENT = new Set(["REPLY", "TRACKING", "CACHING", "SETNAME", "SETINFO", "NO-EVICT"]);

/** Returns why `command` cannot run through the bridge, or undefined if it can. */
export function deniedReason(command: Command): string | undefined {
  const name = command[0].toUpperCase();
  const sub = command[1]?.toUpperCase() ?? "";
  if (name === "SUBSCRIBE" || name === "PSUBSCRIBE") {
    return `ERR ${name} is not a REST command: POST /${name.toLowerCase()}/<channel> instead`;
  }
  if (DENIED.has(name) || (name === "CLIENT" && DENIED_CLIENT.has(sub))) {
    return `ERR Command is not available via the upstash-bridge: '${command[0]}'`;
  }
  return undefined;
}

const BLOCKING = new Set([
  "BLPOP",
  "BRPOP",
  "BRPOPLPUSH",
  "BLMOVE",
  "BLMPOP",
  "BZPOPMIN",
  "BZPOPMAX",
  "BZMPOP",
  "WAIT",
  "WAITAOF",
]);

/** True if `command` may block the connection (so it must not run on the shared socket). */
export function isBlocking(command: Command): boolean {
  const name = command[0].toUpperCase();
  if (BLOCKING.has(name)) return true;
  if (name === "XREAD" || name === "XREADGROUP") {
    for (const arg of command.slice(1)) {
      const upper = arg.toUpperCase();
      if (upper === "STREAMS") return false;
      if (upper === "BLOCK") return true;
    }
  }
  return false;
}

/** Rejects with {@link BridgeTimeoutError} if `promise` does not settle within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BridgeTimeoutError(ms)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs one command; error replies and connection failures reject. */
export async function runCommand(
  connection: RedisConnection,
  command: Command,
  base64: boolean,
): Promise<UpstashValue> {
  const denied = deniedReason(command);
  if (denied) throw new BadRequestError(denied);
  return toUpstash(await connection.sendCommand(command), { base64 });
}

/**
 * Runs commands in order without atomicity. Redis error replies become `{error}` entries;
 * a connection failure rejects the whole call (→ 5xx).
 */
export async function runPipeline(
  connection: RedisConnection,
  commands: Command[],
  base64: boolean,
): Promise<PipelineEntry[]> {
  const settled = await Promise.allSettled(commands.map((command) => {
    const denied = deniedReason(command);
    return denied ? Promise.reject(new BadRequestError(denied)) : connection.sendCommand(command);
  }));
  return settled.map((outcome) => entryOf(outcome, base64));
}

function entryOf(outcome: PromiseSettledResult<unknown>, base64: boolean): PipelineEntry {
  if (outcome.status === "fulfilled") return { result: toUpstash(outcome.value, { base64 }) };
  const reason = outcome.reason;
  if (isRedisReplyError(reason)) return { error: reason.message };
  if (reason instanceof BadRequestError) return { error: reason.message };
  throw reason;
}

/**
 * Runs commands atomically as `MULTI ... EXEC`, written back to back on `connection` so no
 * other command interleaves. Runtime errors of single commands become `{error}` entries (Redis
 * does not roll back); a command rejected while queueing aborts the transaction (→ 400).
 */
export async function runMulti(
  connection: RedisConnection,
  commands: Command[],
  base64: boolean,
): Promise<PipelineEntry[]> {
  for (const command of commands) {
    const denied = deniedReason(command);
    if (denied) throw new BadRequestError(denied);
  }
  const chainId = Symbol("multi-exec");
  const all = [
    connection.sendCommand(["MULTI"], { chainId }),
    ...commands.map((command) => connection.sendCommand(command, { chainId })),
  ];
  const exec = connection.sendCommand(["EXEC"], { chainId });
  const [queued, execOutcome] = await Promise.all([
    Promise.allSettled(all),
    exec.then(
      (value) => ({ ok: true as const, value }),
      (reason) => ({ ok: false as const, reason }),
    ),
  ]);
  if (!execOutcome.ok) {
    const reason = execOutcome.reason;
    if (!isRedisReplyError(reason)) throw reason;
    const cause = queued.find((o) => o.status === "rejected" && isRedisReplyError(o.reason));
    const detail = cause?.status === "rejected" ? `: ${(cause.reason as Error).message}` : "";
    throw new BadRequestError(`${reason.message.replace(/\.$/, "")}${detail}`);
  }
  const replies = execOutcome.value;
  if (!Array.isArray(replies)) {
    throw new BadRequestError("EXECABORT Transaction aborted");
  }
  return replies.map((reply): PipelineEntry =>
    reply instanceof Error ? { error: reply.message } : { result: toUpstash(reply, { base64 }) }
  );
}

/** Converts an execution error to an HTTP status and message (400 for bad requests). */
export function answerFor(error: unknown): ErrorAnswer {
  if (error instanceof BadRequestError) return { status: 400, error: error.message };
  return errorAnswer(error);
}
