/**
 * Definition-time checks of channels, as Phoenix raises at compile time on a malformed
 * channel: `defineChannel` and the channel set of a node refuse a topic pattern that is
 * neither exact nor `prefix:*`, schemas that are not zod, option names they do not know (with
 * the nearest known name), callbacks that are not functions, and two channels for one pattern.
 * Each error names the channel, the field and the fix. TypeScript catches most of these
 * already; these checks are for code that was never type-checked (`deno run`, JavaScript).
 *
 * @example
 * ```ts
 * checkChannel({ topic: "chat*" }, { topic: "topic" });
 * // ChannelDefinitionError: channel "chat*": topic "chat*": a prefix pattern is "prefix:*" …
 * ```
 * @module
 */
import { topicProblem } from "./topic.ts";

/** Thrown for a malformed channel definition; the message names the field and the fix. */
export class ChannelDefinitionError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = "ChannelDefinitionError";
  }
}

/**
 * What a channel option's value must be. The table of options and kinds is
 * `CHANNEL_OPTION_KINDS` in `channel.ts`, next to the definition type it must match.
 */
export type OptionKind =
  | "topic"
  | "access"
  | "boolean"
  | "number"
  | "object"
  | "function"
  | "boolean-or-function"
  | "grace"
  | "schema"
  | "events"
  | "functions"
  | "schemas";

/** The options a channel takes, by name, and what each value must be. */
export type OptionTable = Readonly<Record<string, OptionKind>>;

/** The topic the Phoenix protocol keeps for heartbeats: no channel may take it. */
const _RESERVED_TOPIC = "phoenix";

/** What is wrong with a topic pattern (exact, or `prefix:*`), or undefined. */
export function topicPatternProblem(pattern: unknown): string | undefined {
  if (typeof pattern !== "string") {
    return `must be a string: an exact topic ("lobby") or a prefix pattern ("room:*")`;
  }
  const problem = topicProblem(pattern);
  if (problem) return problem;
  if (pattern === _RESERVED_TOPIC) return `"phoenix" is reserved for heartbeats: pick another`;
  const star = pattern.indexOf("*");
  if (star === -1) {
    if (pattern.endsWith(":")) {
      return `ends with ":", which would match only itself: write "${pattern}*" to match ` +
        `every "${pattern}…" topic, or drop the ":" for an exact topic`;
    }
    return undefined;
  }
  const prefix = pattern.slice(0, star);
  if (star !== pattern.length - 1 || prefix === "" || !prefix.endsWith(":")) {
    const stem = prefix.replace(/[:*]+$/, "") || "room";
    return `a pattern is "prefix:*" (one "*", last, after a ":"): write "${stem}:*", ` +
      `or an exact topic without "*"`;
  }
  return undefined;
}

/** True for a zod schema (duck-typed: any zod copy or version with `safeParse`). */
function _isSchema(value: unknown): boolean {
  return typeof value === "object" && value !== null &&
    typeof (value as { safeParse?: unknown }).safeParse === "function";
}

function _describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") {
    const json = JSON.stringify(value);
    return json.length <= 60 ? `the object ${json}` : "an object";
  }
  return typeof value === "string" ? `the string ${JSON.stringify(value)}` : `a ${typeof value}`;
}

/** The known name nearest to `name` (edit distance at most 3), for "did you mean". */
export function nearestName(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const candidate of known) {
    const d = _editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

function _editDistance(a: string, b: string): number {
  // Names are short (options, event names): the plain O(|a|·|b|) table with one row.
  if (Math.abs(a.length - b.length) > 3) return 4;
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
}

/** The problems of one option's value, each as `field: what is wrong and the fix`. */
function _optionProblems(name: string, kind: OptionKind, value: unknown): string[] {
  if (value === undefined) return [];
  switch (kind) {
    case "topic": {
      const problem = topicPatternProblem(value);
      return problem ? [`topic ${JSON.stringify(value)}: ${problem}`] : [];
    }
    case "access":
      return value === "public" || value === "token"
        ? []
        : [`access: use "public" or "token", not ${_describe(value)}`];
    case "boolean":
      return typeof value === "boolean"
        ? []
        : [`${name} must be true or false, not ${_describe(value)}`];
    case "number":
      return typeof value === "number" && Number.isFinite(value)
        ? []
        : [`${name} must be a finite number, not ${_describe(value)}`];
    case "object":
      return typeof value === "object" && value !== null && !Array.isArray(value)
        ? []
        : [`${name} must be an object, not ${_describe(value)}`];
    case "function":
      return typeof value === "function"
        ? []
        : [`${name} must be a function, not ${_describe(value)}`];
    case "boolean-or-function":
      return typeof value === "boolean" || typeof value === "function"
        ? []
        : [`${name} must be true, false or a function (ctx) => boolean, not ${_describe(value)}`];
    case "grace":
      return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 60_000
        ? []
        : [`${name} ${JSON.stringify(value) ?? String(value)} is out of range: use 0-60000 (ms)`];
    case "schema":
      return _isSchema(value) ? [] : [_notZod(name, value)];
    case "schemas":
    case "functions":
    case "events":
      return _recordProblems(name, kind, value);
  }
}

function _notZod(field: string, value: unknown): string {
  return `${field} must be a zod schema, not ${_describe(value)}: write e.g. ` +
    `z.object({ nick: z.string() }) (import { z } from "zod")`;
}

function _recordProblems(name: string, kind: OptionKind, value: unknown): string[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return [`${name} must be an object keyed by event name, not ${_describe(value)}`];
  }
  const problems: string[] = [];
  for (const [key, item] of Object.entries(value)) {
    const field = `${name}.${key}`;
    if (kind === "schemas" && !_isSchema(item)) problems.push(_notZod(field, item));
    if (kind === "functions" && typeof item !== "function") {
      problems.push(
        `${field} must be a function (ctx, payload) => payload | null, not ${_describe(item)}`,
      );
    }
    if (kind === "events") problems.push(..._eventProblems(field, item));
  }
  return problems;
}

function _eventProblems(field: string, handler: unknown): string[] {
  if (typeof handler === "function") {
    return [
      `${field} is a bare function: wrap it as event(schema, handler) or { handle: handler }`,
    ];
  }
  if (typeof handler !== "object" || handler === null) {
    return [`${field} must be event(schema, handler), not ${_describe(handler)}`];
  }
  const { schema, handle, binary } = handler as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof handle !== "function") {
    problems.push(`${field}.handle must be a function, not ${_describe(handle)}`);
  }
  if (schema !== undefined && !_isSchema(schema)) problems.push(_notZod(`${field}.schema`, schema));
  if (binary !== undefined && typeof binary !== "boolean") {
    problems.push(`${field}.binary must be true or false, not ${_describe(binary)}`);
  }
  return problems;
}

/**
 * Throws a {@link ChannelDefinitionError} listing every problem of `definition`, each naming
 * the field and the fix; returns quietly for a sound one.
 */
export function checkChannel(definition: unknown, options: OptionTable): void {
  if (typeof definition !== "object" || definition === null) {
    throw new ChannelDefinitionError(
      `a channel must be an object made with defineChannel({ topic, ... }), not ${
        _describe(definition)
      }`,
    );
  }
  const fields = definition as Record<string, unknown>;
  const problems: string[] = [];
  if (fields.topic === undefined) problems.push(`topic is missing: add e.g. topic: "room:*"`);
  for (const [name, value] of Object.entries(fields)) {
    const kind = Object.hasOwn(options, name) ? options[name] : undefined;
    if (kind === undefined) {
      const known = Object.keys(options);
      const near = nearestName(name, known);
      problems.push(
        `unknown option "${name}": ${near ? `did you mean "${near}"? ` : ""}` +
          `the options are ${known.join(", ")}`,
      );
    } else problems.push(..._optionProblems(name, kind, value));
  }
  if (problems.length === 0) return;
  const topic = typeof fields.topic === "string" ? JSON.stringify(fields.topic) : "(no topic)";
  throw new ChannelDefinitionError(`channel ${topic}: ${problems.join("; ")}`);
}

/**
 * Checks a node's channel set: each channel (also those not made with `defineChannel`), and no
 * two channels for one topic pattern (the second would never be reached).
 */
export function checkChannelSet(channels: readonly unknown[], options: OptionTable): void {
  if (!Array.isArray(channels)) {
    throw new ChannelDefinitionError(
      `channels must be an array of defineChannel(...) results, not ${_describe(channels)}`,
    );
  }
  const seen = new Map<string, number>();
  for (const [i, channel] of channels.entries()) {
    checkChannel(channel, options);
    const topic = (channel as { topic: string }).topic;
    const first = seen.get(topic);
    if (first !== undefined) {
      throw new ChannelDefinitionError(
        `channels[${i}] and channels[${first}] both serve topic "${topic}": ` +
          "merge them into one channel, or give one another pattern",
      );
    }
    seen.set(topic, i);
  }
}
