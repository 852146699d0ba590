/**
 * Configuration from the environment: defaults, coercion of strings, a {@link ConfigError}
 * naming every bad variable, and a server that refuses to start with a bad value.
 */
import assert from "node:assert/strict";
import { CONFIG_KEYS, ConfigError, loadConfig } from "../lib/config.ts";
import { runServerExpectingExit } from "./support/server.ts";

/** Asserts `loadConfig(env)` throws a ConfigError whose message names every one of `names`. */
function assertRejects(env: Record<string, string>, ...names: string[]): ConfigError {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError for ${JSON.stringify(env)}`);
  for (const name of names) {
    assert.ok(caught.message.includes(name), `"${caught.message}" should name ${name}`);
  }
  return caught;
}

Deno.test("loadConfig", async (t) => {
  await t.step("defaults for an empty environment", () => {
    const config = loadConfig({});
    assert.equal(config.port, 8000);
    assert.equal(config.host, "0.0.0.0");
    assert.equal(config.apiToken, undefined);
    assert.equal(config.socketSecret, undefined);
    assert.equal(config.redis, undefined);
    assert.equal(config.logLevel, "info");
    assert.equal(config.maxFrameBytes, 64 * 1024);
    assert.equal(config.maxApiBodyBytes, 1024 * 1024);
    assert.equal(config.heartbeatTimeoutMs, 60_000);
    assert.equal(config.sseHeartbeatMs, 15_000);
    assert.equal(config.presenceBatchMs, 20);
    assert.equal(config.presenceLeaveGraceMs, 2_000);
    assert.match(config.nodeId, /^[A-Za-z0-9_.-]{1,64}$/);
  });

  await t.step("a random NODE_ID differs per load", () => {
    assert.notEqual(loadConfig({}).nodeId, loadConfig({}).nodeId);
  });

  await t.step("strings are coerced and kept", () => {
    const config = loadConfig({
      PORT: "8080",
      HOST: "127.0.0.1",
      API_TOKEN: "t0ken",
      SOCKET_SECRET: "0123456789abcdef",
      UPSTASH_REDIS_REST_URL: "http://127.0.0.1:8079",
      UPSTASH_REDIS_REST_TOKEN: "redis-token",
      NODE_ID: "node-a.1",
      LOG_LEVEL: "debug",
      MAX_FRAME_BYTES: "1024",
      MAX_API_BODY_BYTES: "1000",
      HEARTBEAT_TIMEOUT_MS: "5000",
      SSE_HEARTBEAT_MS: "250",
      PRESENCE_BATCH_MS: "0",
      PRESENCE_LEAVE_GRACE_MS: "0",
      REDIS_PREFIX: "app1",
      REDIS_HEARTBEAT_MS: "2000",
      HISTORY_SIZE: "50",
      HISTORY_MAX_AGE_MS: "60000",
      LONGPOLL_TIMEOUT_MS: "9000",
      ALLOWED_ORIGINS: "https://a.example, http://localhost:3000",
      MAX_TOPICS_PER_SESSION: "7",
      PUSH_RATE_PER_SEC: "5",
      PUSH_BURST: "9",
      MAX_OUTBOUND_BYTES: "4096",
      TOKEN_LEEWAY_SECONDS: "0",
      MAX_PAYLOAD_DEPTH: "8",
      HISTORY_MAX_BYTES: "100000",
      MAX_LONGPOLL_BODY_BYTES: "2048",
      MAX_CONNECTIONS: "300",
      CLOSE_TIMEOUT_MS: "1500",
      WEBHOOK_URL: "https://app.example/hooks",
      WEBHOOK_SECRET: "webhook-secret-16",
      WEBHOOK_RETRY_MS: "100, 200,400",
      WEBHOOK_TIMEOUT_MS: "3000",
      WEBHOOK_MAX_QUEUE: "50",
      MAX_PRESENCE_META_BYTES: "1000",
      MAX_PRESENCES_PER_USER: "3",
      MAX_PRESENCE_BYTES_PER_USER: "2500",
      MAX_TOPICS_PER_USER: "4",
      MAX_LONGPOLL_SESSIONS: "40",
      MAX_LONGPOLL_SESSIONS_PER_ADDRESS: "5",
      LONGPOLL_FIRST_POLL_MS: "700",
      API_AUTH_FAILURES_PER_MINUTE: "6",
    });
    assert.deepEqual({ ...config }, {
      port: 8080,
      host: "127.0.0.1",
      apiToken: "t0ken",
      socketSecret: "0123456789abcdef",
      redis: { url: "http://127.0.0.1:8079", token: "redis-token" },
      nodeId: "node-a.1",
      logLevel: "debug",
      maxFrameBytes: 1024,
      maxApiBodyBytes: 1000,
      heartbeatTimeoutMs: 5000,
      sseHeartbeatMs: 250,
      presenceBatchMs: 0,
      presenceLeaveGraceMs: 0,
      redisPrefix: "app1",
      redisHeartbeatMs: 2000,
      history: { size: 50, maxAgeMs: 60000, maxBytes: 100000 },
      maxLongpollBodyBytes: 2048,
      maxConnections: 300,
      closeTimeoutMs: 1500,
      longpollTimeoutMs: 9000,
      allowedOrigins: ["https://a.example", "http://localhost:3000"],
      maxTopicsPerSession: 7,
      pushRate: { perSecond: 5, burst: 9 },
      maxOutboundBytes: 4096,
      tokenLeewaySeconds: 0,
      maxPayloadDepth: 8,
      webhook: {
        url: "https://app.example/hooks",
        secret: "webhook-secret-16",
        retryMs: [100, 200, 400],
        timeoutMs: 3000,
        maxQueue: 50,
      },
      limits: {
        presenceMetaBytes: 1000,
        presencesPerUser: 3,
        presenceBytesPerUser: 2500,
        topicsPerUser: 4,
      },
      longpoll: { maxSessions: 40, maxSessionsPerAddress: 5, firstPollMs: 700 },
      apiAuthFailuresPerMinute: 6,
    });
    assert.equal(loadConfig({ ALLOWED_ORIGINS: "*" }).allowedOrigins, undefined, "* means any");
    assert.throws(() => loadConfig({ ALLOWED_ORIGINS: "example.com" }), /ALLOWED_ORIGINS/);
    // A dead node must still be noticed within 30 s (2.5 heartbeats).
    assert.throws(() => loadConfig({ REDIS_HEARTBEAT_MS: "13000" }), /REDIS_HEARTBEAT_MS/);
    // Webhooks are always signed; the retry schedule is a short list of waits.
    assert.throws(() => loadConfig({ WEBHOOK_URL: "https://a.example/h" }), /WEBHOOK_SECRET/);
    assert.throws(() => loadConfig({ WEBHOOK_RETRY_MS: "1s,2s" }), /WEBHOOK_RETRY_MS/);
    assert.throws(() => loadConfig({ WEBHOOK_URL: "ftp://a.example/h" }), /WEBHOOK_URL/);
    assert.equal(loadConfig({}).webhook, undefined, "no URL: no webhooks");
  });

  await t.step("PORT=0 (any free port) is allowed", () => {
    assert.equal(loadConfig({ PORT: "0" }).port, 0);
  });

  await t.step("empty and undefined values mean unset", () => {
    const config = loadConfig({ PORT: "", API_TOKEN: "", LOG_LEVEL: undefined, SOCKET_SECRET: "" });
    assert.equal(config.port, 8000);
    assert.equal(config.apiToken, undefined);
    assert.equal(config.logLevel, "info");
    assert.equal(config.socketSecret, undefined);
  });

  await t.step("unrelated variables are ignored", () => {
    assert.equal(loadConfig({ PATH: "/usr/bin", HOME: "/root", PORT: "9000" }).port, 9000);
  });

  await t.step("PORT=abc is a ConfigError naming PORT", () => {
    assertRejects({ PORT: "abc" }, "PORT");
  });

  await t.step("PORT=70000 is a ConfigError naming PORT", () => {
    assertRejects({ PORT: "70000" }, "PORT");
  });

  await t.step("PORT that is not an integer or negative is a ConfigError", () => {
    assertRejects({ PORT: "80.5" }, "PORT");
    assertRejects({ PORT: "-1" }, "PORT");
  });

  await t.step("a blank PORT never silently means a random port", () => {
    // "" is unset (8000); whitespace must not coerce to 0, which binds a random port.
    let port: number | undefined;
    try {
      port = loadConfig({ PORT: "  " }).port;
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /PORT/);
      return;
    }
    assert.equal(port, 8000, `PORT="  " gave port ${port}`);
  });

  await t.step("LOG_LEVEL=loud is a ConfigError naming LOG_LEVEL", () => {
    assertRejects({ LOG_LEVEL: "loud" }, "LOG_LEVEL");
  });

  await t.step("only one of the Upstash variables is a ConfigError naming both", () => {
    assertRejects(
      { UPSTASH_REDIS_REST_URL: "http://127.0.0.1:8079" },
      "UPSTASH_REDIS_REST_URL",
      "UPSTASH_REDIS_REST_TOKEN",
    );
    assertRejects(
      { UPSTASH_REDIS_REST_TOKEN: "redis-token" },
      "UPSTASH_REDIS_REST_URL",
      "UPSTASH_REDIS_REST_TOKEN",
    );
  });

  await t.step("UPSTASH_REDIS_REST_URL that is not a URL is a ConfigError naming it", () => {
    assertRejects(
      { UPSTASH_REDIS_REST_URL: "not a url", UPSTASH_REDIS_REST_TOKEN: "t" },
      "UPSTASH_REDIS_REST_URL",
    );
  });

  await t.step("a too short SOCKET_SECRET is a ConfigError naming SOCKET_SECRET", () => {
    const err = assertRejects({ SOCKET_SECRET: "short" }, "SOCKET_SECRET");
    assert.match(err.message, /16/);
  });

  await t.step("MAX_FRAME_BYTES=0 is a ConfigError naming MAX_FRAME_BYTES", () => {
    assertRejects({ MAX_FRAME_BYTES: "0" }, "MAX_FRAME_BYTES");
    assertRejects({ MAX_FRAME_BYTES: "lots" }, "MAX_FRAME_BYTES");
  });

  await t.step("other numeric limits are checked too", () => {
    assertRejects({ MAX_API_BODY_BYTES: "-5" }, "MAX_API_BODY_BYTES");
    assertRejects({ HEARTBEAT_TIMEOUT_MS: "0" }, "HEARTBEAT_TIMEOUT_MS");
    assertRejects({ SSE_HEARTBEAT_MS: "soon" }, "SSE_HEARTBEAT_MS");
    assertRejects({ PRESENCE_BATCH_MS: "-1" }, "PRESENCE_BATCH_MS");
    assertRejects({ PRESENCE_LEAVE_GRACE_MS: "-1" }, "PRESENCE_LEAVE_GRACE_MS");
    assertRejects({ PRESENCE_LEAVE_GRACE_MS: "60001" }, "PRESENCE_LEAVE_GRACE_MS");
  });

  await t.step("a NODE_ID with bad characters is a ConfigError naming NODE_ID", () => {
    assertRejects({ NODE_ID: "node one" }, "NODE_ID");
  });

  await t.step("several bad values are all named in one error", () => {
    assertRejects(
      { PORT: "abc", LOG_LEVEL: "loud", MAX_FRAME_BYTES: "0" },
      "PORT",
      "LOG_LEVEL",
      "MAX_FRAME_BYTES",
    );
  });

  await t.step("a half-set Upstash pair is named alongside other bad values", () => {
    assertRejects(
      { PORT: "abc", UPSTASH_REDIS_REST_URL: "http://127.0.0.1:8079" },
      "PORT",
      "UPSTASH_REDIS_REST_TOKEN",
    );
  });

  await t.step("CONFIG_KEYS lists the variables read", () => {
    for (const key of ["PORT", "HOST", "API_TOKEN", "SOCKET_SECRET", "LOG_LEVEL", "NODE_ID"]) {
      assert.ok(CONFIG_KEYS.includes(key), key);
    }
    assert.ok(CONFIG_KEYS.includes("UPSTASH_REDIS_REST_URL"));
    assert.ok(CONFIG_KEYS.includes("MAX_FRAME_BYTES"));
  });
});

Deno.test("the server refuses to start with a bad environment", async (t) => {
  await t.step("PORT=abc: non-zero exit and a message naming PORT", async () => {
    const { code, output } = await runServerExpectingExit({ PORT: "abc" });
    assert.notEqual(code, 0);
    assert.match(output, /PORT/);
    assert.doesNotMatch(output, /listening on/);
  });
});

Deno.test("deno task start/dev allow exactly the variables the server reads", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).tasks;
  for (const name of ["start", "dev"]) {
    const flag = (tasks[name] as string).match(/--allow-env=(\S+)/);
    assert.ok(flag, `deno task ${name} reads env by name (--allow-env=<list>)`);
    const allowed = new Set(flag[1].split(","));
    // The server's own variables, plus what @upstash/redis reads when the broker starts.
    const needed = [
      ...CONFIG_KEYS,
      "UPSTASH_CONSOLE",
      "VERCEL",
      "AWS_REGION",
    ];
    for (const key of needed) assert.ok(allowed.has(key), `deno task ${name} misses ${key}`);
  }
});
