/**
 * The Upstash bridge (bridge/) driven by the real `@upstash/redis` client against a real
 * `redis-server`. Needs `redis-server` on PATH (`apt-get install redis-server`).
 */
import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";
import { createBridge } from "../../bridge/main.ts";
import { freePort, startBridge, startRedis } from "../support/redis.ts";

const TOKEN = "bridge-test-token";

/** Polls `check` every 50 ms until it returns true; fails after `timeoutMs`. */
async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${lastError ?? ""})`);
}

/** Resolves with the first event of `type`, or rejects after `timeoutMs`. */
function nextEvent<T>(
  on: (listener: (event: T) => void) => void,
  what: string,
  timeoutMs = 5000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new Error(`no ${what} within ${timeoutMs} ms`));
    }, timeoutMs);
    on((event) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(event);
    });
  });
}

async function rawPost(url: string, body: string, token = TOKEN): Promise<[number, unknown]> {
  const response = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body,
  });
  return [response.status, await response.json()];
}

Deno.test("upstash bridge subprocess with @upstash/redis", async (t) => {
  await using redis = await startRedis();
  await using bridge = await startBridge({ redisUrl: redis.url, token: TOKEN });
  const client = new Redis({ url: bridge.url, token: TOKEN });
  const plain = new Redis({ url: bridge.url, token: TOKEN, responseEncoding: false });

  await t.step("strings", async () => {
    assert.equal(await client.set("s:a", "hello"), "OK");
    assert.equal(await client.get("s:a"), "hello");
    assert.equal(await client.set("s:a", "other", { nx: true }), null);
    assert.equal(await client.set("s:ex", "v", { ex: 100 }), "OK");
    const ttl = await client.ttl("s:ex");
    assert.ok(ttl > 90 && ttl <= 100, `ttl ${ttl}`);
    await client.set("s:px", "v", { px: 60_000 });
    assert.ok((await client.pttl("s:px")) > 50_000);
    assert.equal(await client.incr("s:n"), 1);
    assert.equal(await client.incrby("s:n", 41), 42);
    assert.deepEqual(await client.mget("s:a", "s:missing", "s:n"), ["hello", null, 42]);
    assert.equal(await client.expire("s:a", 50), 1);
    assert.ok((await client.ttl("s:a")) > 40);
    assert.equal(await client.del("s:a", "s:n", "s:missing"), 2);
    assert.equal(await client.get("s:a"), null);
    await client.set("s:obj", { id: 1, tags: ["x"] });
    assert.deepEqual(await client.get("s:obj"), { id: 1, tags: ["x"] });
    await assert.rejects(client.incr("s:obj"), /ERR value is not an integer/);
  });

  await t.step("hashes, sets, lists", async () => {
    assert.equal(await client.hset("h", { name: "ann", age: 7 }), 2);
    assert.equal(await client.hget("h", "name"), "ann");
    assert.deepEqual(await client.hgetall("h"), { name: "ann", age: 7 });
    assert.equal(await client.hdel("h", "age"), 1);
    assert.deepEqual(await client.hgetall("h"), { name: "ann" });
    assert.equal(await client.hgetall("h:missing"), null);

    assert.equal(await client.sadd("set", "a", "b", "c"), 3);
    assert.deepEqual((await client.smembers("set")).sort(), ["a", "b", "c"]);
    assert.equal(await client.sismember("set", "b"), 1);
    assert.equal(await client.srem("set", "b"), 1);
    assert.equal(await client.scard("set"), 2);

    assert.equal(await client.rpush("list", "one", "two", "three"), 3);
    assert.deepEqual(await client.lrange("list", 0, -1), ["one", "two", "three"]);
    assert.equal(await client.lpop("list"), "one");
    assert.equal(await client.llen("list"), 2);
  });

  await t.step("sorted sets", async () => {
    assert.equal(
      await client.zadd("z", { score: 1, member: "a" }, { score: 2.5, member: "b" }),
      2,
    );
    assert.deepEqual(await client.zrange("z", 0, -1), ["a", "b"]);
    assert.deepEqual(await client.zrange("z", 0, -1, { withScores: true }), ["a", 1, "b", 2.5]);
    assert.deepEqual(await client.zrange("z", 0, -1, { rev: true }), ["b", "a"]);
    assert.equal(await client.zscore("z", "b"), 2.5);
    assert.equal(await client.zincrby("z", 2, "a"), 3);
    assert.equal(await client.zcard("z"), 2);
  });

  await t.step("streams", async () => {
    for (let i = 0; i < 5; i++) {
      await client.xadd("stream", "*", { n: i, text: `msg ${i}` }, {
        trim: { type: "MAXLEN", threshold: 3, comparison: "=" },
      });
    }
    assert.equal(await client.xlen("stream"), 3);
    const range = await client.xrange("stream", "-", "+");
    assert.deepEqual(Object.values(range).map((entry) => entry.n), [2, 3, 4]);
    const read = await client.xread("stream", "0-0", { count: 2 }) as [
      string,
      [string, string[]][],
    ][];
    assert.equal(read[0][0], "stream");
    assert.equal(read[0][1].length, 2);
    assert.deepEqual(read[0][1][0][1], ["n", 2, "text", "msg 2"]);
  });

  await t.step("pipeline and multi-exec", async () => {
    const results = await client.pipeline().set("p:a", 1).incr("p:a").get("p:a").exec();
    assert.deepEqual(results, ["OK", 2, 2]);
    await assert.rejects(
      client.pipeline().set("p:b", "x").incr("p:b").exec(),
      /Command 2 \[ incr \] failed: ERR value is not an integer/,
    );
    const kept = await client.pipeline().incr("p:b").get("p:b").exec({ keepErrors: true });
    assert.match(String(kept[0].error), /not an integer/);
    assert.equal(kept[1].result, "x");

    assert.deepEqual(await client.multi().set("m:a", "1").incr("m:a").exec(), ["OK", 2]);
    const [status, body] = await rawPost(
      `${bridge.url}/multi-exec`,
      '[["SET","m:b","x"],["INCR","m:b"],["GET","m:b"]]',
    );
    assert.equal(status, 200);
    assert.deepEqual(body, [
      { result: "OK" },
      { error: "ERR value is not an integer or out of range" },
      { result: "x" },
    ]);
    const [abortStatus, aborted] = await rawPost(
      `${bridge.url}/multi-exec`,
      '[["SET","m:c"],["SET","m:c","1"]]',
    );
    assert.equal(abortStatus, 400);
    assert.match(String((aborted as { error: string }).error), /^EXECABORT.*wrong number/);
    assert.equal(await client.exists("m:c"), 0);
  });

  await t.step("eval and evalsha", async () => {
    const script = "return {KEYS[1], ARGV[1], 7, redis.call('SET', KEYS[1], ARGV[1])}";
    assert.deepEqual(await client.eval(script, ["e:k"], ["v"]), ["e:k", "v", 7, "OK"]);
    const sha = await client.scriptLoad("return redis.call('GET', KEYS[1])");
    assert.equal(await client.evalsha(sha, ["e:k"], []), "v");
  });

  await t.step("base64 and plain response encoding", async () => {
    const tricky = ["héllo ✓ 🚀", "OK", "dGVzdA==", "123", "", "a,b\nc"];
    for (const [i, value] of tricky.entries()) await plain.set(`enc:${i}`, value);
    for (const c of [client, plain]) {
      for (const [i, value] of tricky.entries()) {
        assert.equal(await c.get(`enc:${i}`), value === "123" ? 123 : value);
      }
      const keys = tricky.map((_, i) => `enc:${i}`);
      assert.deepEqual(await c.mget(...keys), tricky.map((v) => v === "123" ? 123 : v));
      assert.equal(await c.ping(), "PONG");
      assert.equal(await c.type("enc:0"), "string");
    }
    const [, b64] = await rawPost(bridge.url, '["GET","enc:0"]');
    assert.deepEqual(b64, { result: "héllo ✓ 🚀" }); // no Upstash-Encoding header → plain
    const response = await fetch(bridge.url, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "upstash-encoding": "base64" },
      body: '["MGET","enc:1","nope"]',
    });
    assert.deepEqual(await response.json(), { result: ["T0s=", null] });
  });

  await t.step("subscribe receives messages published by another client", async () => {
    const publisher = new Redis({ url: bridge.url, token: TOKEN });
    const sub = client.subscribe<{ text: string } | string>(["chat"]);
    try {
      await nextEvent<number>((l) => sub.on("subscribe", l), "subscribe event");
      const got = nextEvent<{ channel: string; message: unknown }>(
        (l) => sub.on("message", l),
        "message",
      );
      assert.equal(await publisher.publish("chat", { text: "hi, there" }), 1);
      assert.deepEqual(await got, { channel: "chat", message: { text: "hi, there" } });
      const second = nextEvent<{ message: unknown }>((l) => sub.on("message:chat", l), "msg 2");
      await publisher.publish("chat", "plain text");
      assert.equal((await second).message, "plain text");
    } finally {
      await sub.unsubscribe();
    }
    // The bridge must close its subscriber connection when the client aborts the stream.
    await waitFor("the bridge to drop the subscriber", async () => {
      const counts = await client.exec<[string, number]>(["PUBSUB", "NUMSUB", "chat"]);
      return counts[1] === 0;
    });
  });

  await t.step("a payload with line breaks arrives whole, as one message", async () => {
    const sub = client.subscribe<unknown>(["lines"]);
    const got: unknown[] = [];
    try {
      await nextEvent<number>((l) => sub.on("subscribe", l), "subscribe event");
      sub.on("message", ({ message }) => got.push(message));
      // Published raw (not through the client's JSON encoding), as another tool would.
      await client.exec(["PUBLISH", "lines", "first line\nsecond, line\r\nthird"]);
      await client.exec(["PUBLISH", "lines", '{\n  "a": 1,\n  "b": "x\\ny"\n}']);
      await client.exec(["PUBLISH", "lines", "after"]);
      await waitFor("three messages", () => got.length >= 3);
      assert.deepEqual(got, ["first line\nsecond, line\r\nthird", { a: 1, b: "x\ny" }, "after"]);
    } finally {
      await sub.unsubscribe();
    }
  });

  await t.step("psubscribe receives pattern messages", async () => {
    const sub = client.psubscribe(["news.*"]);
    try {
      await nextEvent<number>((l) => sub.on("psubscribe", l), "psubscribe event");
      const got = nextEvent<{ pattern: string; channel: string; message: unknown }>(
        (l) => sub.on("pmessage", l),
        "pmessage",
      );
      await plain.publish("news.sport", { score: [1, 2] });
      assert.deepEqual(await got, {
        pattern: "news.*",
        channel: "news.sport",
        message: { score: [1, 2] },
      });
    } finally {
      await sub.unsubscribe();
    }
    await waitFor("the bridge to drop the pattern subscriber", async () => {
      return await client.exec<number>(["PUBSUB", "NUMPAT"]) === 0;
    });
  });

  await t.step("blocking commands do not block other requests", async () => {
    const popped = client.exec<[string, string] | null>(["BLPOP", "queue", "5"]);
    // Were the shared connection blocked, PING would wait for BLPOP to time out (null), and
    // the job pushed after it would not be what BLPOP returns.
    assert.equal(await client.ping(), "PONG");
    await new Promise((resolve) => setTimeout(resolve, 100));
    await plain.rpush("queue", "job-1");
    assert.deepEqual(await popped, ["queue", "job-1"]);
    assert.equal(await client.exec(["BLPOP", "queue", "0.1"]), null);
  });

  await t.step("wrong token is rejected with 401", async () => {
    const intruder = new Redis({ url: bridge.url, token: "wrong", retry: false });
    await assert.rejects(intruder.get("s:a"), /Unauthorized/);
    const response = await fetch(bridge.url, { method: "POST", body: '["PING"]' });
    assert.equal(response.status, 401);
    assert.deepEqual(await response.json(), { error: "Unauthorized" });
    const viaQuery = await fetch(`${bridge.url}/?_token=${TOKEN}`, {
      method: "POST",
      body: '["PING"]',
    });
    assert.deepEqual(await viaQuery.json(), { result: "PONG" });
  });

  await t.step("malformed bodies get 400 with a clear error", async () => {
    const [status, body] = await rawPost(bridge.url, '["SET","k"');
    assert.equal(status, 400);
    assert.match(String((body as { error: string }).error), /failed to parse request body as JSON/);
    const [shapeStatus, shape] = await rawPost(bridge.url, '{"cmd":"GET"}');
    assert.equal(shapeStatus, 400);
    assert.match(String((shape as { error: string }).error), /expected a JSON array/);
    const [pipeStatus] = await rawPost(`${bridge.url}/pipeline`, '["GET","k"]');
    assert.equal(pipeStatus, 400);
    const [emptyStatus] = await rawPost(bridge.url, "");
    assert.equal(emptyStatus, 400);
    const [deniedStatus, denied] = await rawPost(bridge.url, '["SUBSCRIBE","x"]');
    assert.equal(deniedStatus, 400);
    assert.match(String((denied as { error: string }).error), /subscribe/);
  });

  await t.step("Redis killed: fast 5xx errors, bridge stays up", async () => {
    await redis.kill();
    const offline = new Redis({ url: bridge.url, token: TOKEN, retry: false });
    await assert.rejects(offline.get("s:obj"), /Redis unavailable/);
    const [status, body] = await rawPost(bridge.url, '["GET","x"]');
    assert.ok(status >= 500 && status < 600, `status ${status}`);
    assert.match(String((body as { error: string }).error), /Redis unavailable/);
    const [pipeStatus] = await rawPost(`${bridge.url}/pipeline`, '[["GET","x"]]');
    assert.ok(pipeStatus >= 500, `pipeline status ${pipeStatus}`);
    const [multiStatus] = await rawPost(`${bridge.url}/multi-exec`, '[["GET","x"]]');
    assert.ok(multiStatus >= 500, `multi-exec status ${multiStatus}`);
    const sse = await fetch(`${bridge.url}/subscribe/chat`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, accept: "text/event-stream" },
    });
    assert.equal(sse.status, 503);
    await sse.body?.cancel();
    assert.ok(bridge.running, `bridge exited:\n${bridge.output()}`);
  });

  await t.step("Redis restarted on the same port: bridge works again", async () => {
    await redis.restart();
    await waitFor("the bridge to reconnect", async () => (await client.ping()) === "PONG", 10_000);
    assert.equal(await client.set("after", "restart"), "OK");
    assert.equal(await client.get("after"), "restart");
    assert.match(bridge.output(), /connected again/);
    assert.doesNotMatch(bridge.output(), /unhandled|uncaught/i);
  });
});

Deno.test("createBridge in-process: commands, subscription, close", async (t) => {
  await using redis = await startRedis();
  const logs: string[] = [];
  const bridge = createBridge({ redisUrl: redis.url, token: TOKEN, log: (m) => logs.push(m) });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, bridge.fetch);
  try {
    assert.equal(await bridge.ready, true);
    const client = new Redis({ url: `http://127.0.0.1:${server.addr.port}`, token: TOKEN });

    await t.step("commands", async () => {
      assert.equal(await client.set("k", { a: 1 }), "OK");
      assert.deepEqual(await client.get("k"), { a: 1 });
    });

    await t.step("close() ends open subscription streams", async () => {
      const sub = client.subscribe(["room"]);
      await nextEvent<number>((l) => sub.on("subscribe", l), "subscribe event");
      const got = nextEvent<{ message: unknown }>((l) => sub.on("message", l), "message");
      await client.publish("room", "before close");
      assert.equal((await got).message, "before close");
      await bridge.close();
      await sub.unsubscribe();
      const [status, body] = await rawPost(`http://127.0.0.1:${server.addr.port}`, '["PING"]');
      assert.equal(status, 503);
      assert.match(String((body as { error: string }).error), /shutting down/);
    });
  } finally {
    await bridge.close();
    await server.shutdown();
  }
});

Deno.test("SSE wire format, heartbeats, and a bridge started before Redis", async (t) => {
  const port = freePort();
  const bridge = createBridge({
    redisUrl: `redis://127.0.0.1:${port}`,
    token: TOKEN,
    sseHeartbeatMs: 50,
    log: () => {},
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, bridge.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  try {
    await t.step("Redis not running yet: 503 at once", async () => {
      const [status, body] = await rawPost(url, '["PING"]');
      assert.equal(status, 503);
      assert.match(String((body as { error: string }).error), /Redis unavailable/);
    });

    await using _redis = await startRedis({ port });
    await t.step("Redis started: the bridge connects by itself", async () => {
      assert.equal(await bridge.ready, true);
      assert.deepEqual(await rawPost(url, '["PING"]'), [200, { result: "PONG" }]);
    });

    await t.step("raw SSE stream of /psubscribe/<pattern>", async () => {
      const response = await fetch(`${url}/psubscribe/${encodeURIComponent("a:*")}`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, accept: "text/event-stream" },
        body: "[]",
      });
      assert.equal(response.headers.get("content-type"), "text/event-stream");
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      const readUntil = async (pattern: RegExp) => {
        while (!pattern.test(text)) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`stream ended; got: ${text}`);
          text += value;
        }
      };
      try {
        await readUntil(/data: psubscribe,a:\*,1\n\n/);
        await rawPost(url, '["PUBLISH","a:1","x,y"]');
        await readUntil(/data: pmessage,a:\*,a:1,x,y\n\n/);
        await readUntil(/: ping\n\n/);
      } finally {
        await reader.cancel();
      }
      await waitFor("the subscriber connection to close", async () => {
        const [, body] = await rawPost(url, '["PUBSUB","NUMPAT"]');
        return (body as { result: number }).result === 0;
      });
    });
  } finally {
    await bridge.close();
    await server.shutdown();
  }
});

Deno.test("bridge/main.ts exits 1 with a clear message on a bad environment", async () => {
  const main = new URL("../../bridge/main.ts", import.meta.url).pathname;
  const run = async (env: Record<string, string>) => {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-env", main],
      env: { NO_COLOR: "1", UPSTASH_REDIS_REST_TOKEN: "", PORT: "", ...env },
      stdout: "null",
      stderr: "piped",
    }).output();
    return { code, stderr: new TextDecoder().decode(stderr) };
  };
  const missing = await run({});
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /UPSTASH_REDIS_REST_TOKEN: is required/);
  const badPort = await run({ UPSTASH_REDIS_REST_TOKEN: "t", PORT: "http" });
  assert.equal(badPort.code, 1);
  assert.match(badPort.stderr, /PORT/);
});

Deno.test("bridge/main.ts exits 1 with a clear message when its port is taken", async () => {
  const main = new URL("../../bridge/main.ts", import.meta.url).pathname;
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", main],
    env: { NO_COLOR: "1", UPSTASH_REDIS_REST_TOKEN: "t", PORT: String(port), HOST: "127.0.0.1" },
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).output();
  assert.equal(code, 1);
  assert.match(new TextDecoder().decode(stderr), new RegExp(`port ${port} .* already in use`));
});
