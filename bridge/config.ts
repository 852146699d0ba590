/**
 * Environment of `deno task upstash-bridge`, validated with zod.
 *
 * @example
 * ```ts
 * const env = parseBridgeEnv({ UPSTASH_REDIS_REST_TOKEN: "secret" });
 * env.port; // 8079
 * ```
 * @module
 */
import { z } from "zod";

const schema = z.object({
  REDIS_URL: z.string()
    .regex(/^rediss?:\/\/\S+$/, "must be a redis:// or rediss:// URL")
    .default("redis://127.0.0.1:6379"),
  PORT: z.coerce.number().int("must be an integer").min(0).max(65535).default(8079),
  HOST: z.string().min(1).default("127.0.0.1"),
  UPSTASH_REDIS_REST_TOKEN: z.string({
    error: "is required: set it to the token clients send as `Authorization: Bearer <token>`",
  }).min(1, "must not be empty"),
});

/** The validated bridge environment. */
export interface BridgeEnv {
  /** `REDIS_URL`, default `redis://127.0.0.1:6379`. */
  redisUrl: string;
  /** `PORT`, default 8079 (0 picks a free port). */
  port: number;
  /** `HOST`, default `127.0.0.1`. */
  hostname: string;
  /** `UPSTASH_REDIS_REST_TOKEN` (required). */
  token: string;
}

/** Thrown by {@link parseBridgeEnv}; the message names every bad variable. */
export class BridgeEnvError extends Error {
  /** Creates the error; `message` is the full, printable message. */
  constructor(message: string) {
    super(message);
    this.name = "BridgeEnvError";
  }
}

/** The variables read by {@link parseBridgeEnv}. */
export const BRIDGE_ENV_VARS = ["REDIS_URL", "PORT", "HOST", "UPSTASH_REDIS_REST_TOKEN"] as const;

/**
 * Validates the environment. Empty values count as unset.
 * @param env variable values, e.g. from `Deno.env.get`
 * @throws {BridgeEnvError} listing each invalid or missing variable
 */
export function parseBridgeEnv(env: Record<string, string | undefined>): BridgeEnv {
  const present = Object.fromEntries(
    BRIDGE_ENV_VARS.filter((name) => env[name]).map((name) => [name, env[name]]),
  );
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) =>
      `  ${issue.path.join(".") || "(env)"}: ${issue.message}`
    );
    throw new BridgeEnvError(`upstash-bridge: invalid environment\n${lines.join("\n")}`);
  }
  return {
    redisUrl: parsed.data.REDIS_URL,
    port: parsed.data.PORT,
    hostname: parsed.data.HOST,
    token: parsed.data.UPSTASH_REDIS_REST_TOKEN,
  };
}
