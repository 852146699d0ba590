/**
 * Topic history and last messages in Redis, shared by every node: a stream per topic
 * (`XADD … MAXLEN ~ size`), a hash of the newest sequence per origin stream, and the last
 * message. History and heads expire with the window's age, the last message after
 * `lastTtlMs`. Reads are bounded by what a resume missed: the heads first (one small hash),
 * then only the newest entries the heads say are missing (`XREVRANGE … COUNT n`).
 * @module
 */
import type { Redis } from "@upstash/redis";
import type { BrokerMessage } from "../../core/broker.ts";
import type { Heads, HistoryLimits } from "../../resume/history.ts";
import { pairs, type RedisKeys } from "./keys.ts";

type _Pipeline = ReturnType<Redis["pipeline"]>;

/** How the commands that keep one message are written. */
export interface AppendOptions {
  keys: RedisKeys;
  limits: HistoryLimits;
  /** Lifetime of the `last:<topic>` key. */
  lastTtlMs: number;
  /** Also (re)set the lifetime of the topic's stream and heads. */
  refreshTtl: boolean;
}

/**
 * Adds the commands that keep `m` (encoded as `json`) to a pipeline (the broker's per-tick
 * request): 3 commands, 5 when the topic's lifetimes are refreshed. Returns the position of the
 * heads' `HSET` in the pipeline: it answers 1 when the field was new, which for a stream that
 * wrote there before means Redis lost the key (restarted empty).
 */
export function appendToHistory(
  p: _Pipeline,
  m: BrokerMessage,
  json: string,
  options: AppendOptions,
): number {
  const { keys, limits } = options;
  const [history, heads] = [keys.history(m.topic), keys.heads(m.topic)];
  p.set(keys.last(m.topic), json, { px: options.lastTtlMs });
  p.xadd(history, "*", { m: json }, {
    trim: { type: "MAXLEN", threshold: limits.size, comparison: "~" },
  });
  const position = p.length();
  p.hset(heads, { [m.stream]: `${m.seq}:${m.at}` });
  if (options.refreshTtl) appendLifetimes(p, options, m.topic);
  return position;
}

/** Gives a topic's stream and heads the window's lifetime (2 commands). */
export function appendLifetimes(
  p: _Pipeline,
  options: Pick<AppendOptions, "keys" | "limits">,
  topic: string,
): void {
  p.pexpire(options.keys.history(topic), options.limits.maxAgeMs);
  p.pexpire(options.keys.heads(topic), options.limits.maxAgeMs);
}

/** The last message of a topic, if Redis has it. */
export async function readLast(
  redis: Redis,
  keys: RedisKeys,
  topic: string,
): Promise<BrokerMessage | undefined> {
  const raw = await redis.get<string>(keys.last(topic));
  return typeof raw === "string" ? JSON.parse(raw) as BrokerMessage : undefined;
}

/** The newest sequence per origin stream of a topic (streams past the age limit left out). */
export async function readHeads(
  redis: Redis,
  keys: RedisKeys,
  limits: HistoryLimits,
  topic: string,
  now: number,
): Promise<Heads> {
  const flat = await redis.hgetall(keys.heads(topic)) as unknown;
  const fields = Array.isArray(flat)
    ? pairs(flat as string[])
    : (flat ?? {}) as Record<string, string>;
  const heads: Heads = new Map();
  const oldest = now - limits.maxAgeMs;
  for (const [stream, value] of Object.entries(fields)) {
    const [seq, at] = String(value).split(":").map(Number);
    if (at >= oldest) heads.set(stream, { seq, at });
  }
  return heads;
}

/** The newest `count` messages of a topic's stream, oldest first, none past the age limit. */
export async function readRecent(
  redis: Redis,
  keys: RedisKeys,
  limits: HistoryLimits,
  topic: string,
  options: { count: number; now: number },
): Promise<BrokerMessage[]> {
  if (options.count <= 0) return [];
  const entries = await redis.xrevrange(keys.history(topic), "+", "-", options.count) as unknown;
  const oldest = options.now - limits.maxAgeMs;
  const messages: BrokerMessage[] = [];
  // Raw replies are [[id, [field, value…]]…]; the client may also hand back an object.
  const list: [string, string[]][] = Array.isArray(entries)
    ? entries as [string, string[]][]
    : Object.entries((entries ?? {}) as Record<string, Record<string, string>>).map((
      [id, fields],
    ) => [id, Object.entries(fields).flat()]);
  for (const entry of list) {
    const fields = pairs(entry[1]);
    if (!fields.m) continue;
    const msg = JSON.parse(fields.m) as BrokerMessage;
    if (msg.at >= oldest) messages.push(msg);
  }
  return messages.reverse();
}
