/**
 * Topic history and last messages in Redis, shared by every node: a stream per topic
 * (`XADD … MAXLEN ~ size`), a hash of the newest sequence per origin stream, and the last
 * message; all expire with the window's age.
 * @module
 */
import type { Redis } from "@upstash/redis";
import type { BrokerMessage, SharedHistory } from "../broker.ts";
import type { Heads, HistoryLimits } from "../../resume/history.ts";
import { pairs, type RedisKeys } from "./keys.ts";

type _Pipeline = ReturnType<Redis["pipeline"]>;

/** Adds the commands that keep `m` to a pipeline (the broker's per-tick request). */
export function appendToHistory(
  p: _Pipeline,
  keys: RedisKeys,
  limits: HistoryLimits,
  m: BrokerMessage,
): void {
  const json = JSON.stringify(m);
  const [history, heads] = [keys.history(m.topic), keys.heads(m.topic)];
  p.set(keys.last(m.topic), json);
  p.xadd(history, "*", { m: json }, {
    trim: { type: "MAXLEN", threshold: limits.size, comparison: "~" },
  });
  p.hset(heads, { [m.stream]: `${m.seq}:${m.at}` });
  p.pexpire(history, limits.maxAgeMs);
  p.pexpire(heads, limits.maxAgeMs);
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

/** A topic's window (without messages past the age limit) and heads. */
export async function readHistory(
  redis: Redis,
  keys: RedisKeys,
  limits: HistoryLimits,
  topic: string,
  now: number,
): Promise<SharedHistory> {
  const p = redis.pipeline();
  p.xrange(keys.history(topic), "-", "+");
  p.hgetall(keys.heads(topic));
  const [entries, flatHeads] = await p.exec() as [unknown, unknown];
  const oldest = now - limits.maxAgeMs;
  const messages: BrokerMessage[] = [];
  for (const entry of (entries ?? []) as [string, string[]][]) {
    const fields = pairs(entry[1]);
    if (!fields.m) continue;
    const msg = JSON.parse(fields.m) as BrokerMessage;
    if (msg.at >= oldest) messages.push(msg);
  }
  const heads: Heads = new Map();
  for (const [stream, value] of Object.entries(pairs((flatHeads ?? []) as string[]))) {
    const [seq, at] = value.split(":").map(Number);
    if (at >= oldest) heads.set(stream, { seq, at });
  }
  return { messages, heads };
}
