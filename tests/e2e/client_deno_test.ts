/**
 * The Switchboard client from Deno, as TypeScript: typed channels (a mistyped push or event
 * does not compile, checked with `deno check` on small files), and against a real server:
 * join, push with replies, messages, presence, runtime validation of incoming payloads; and
 * two engines handing a connection over (what a leader tab and its follower do).
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineChannel } from "../../lib/core/channel.ts";
import { connect, type ConnectionState, ReplyError } from "../../lib/client/mod.ts";
import { nowSeconds, signToken } from "../../lib/auth.ts";
import { metricValue } from "../support/metrics.ts";
import { Engine } from "../../lib/client/engine.ts";
import { type EngineMessage, ResumeState } from "../../lib/client/wire.ts";
import type { channels } from "../../channels/mod.ts";
import { startServer } from "../support/server.ts";
import { delay, waitFor } from "../support/wait.ts";

const API = "client-refusal-api-token";

const root = new URL("../../", import.meta.url);

async function check(source: string): Promise<{ ok: boolean; output: string }> {
  // Inside the repo, so the import map (zod, phoenix) applies as for any app module.
  const file = new URL(`tests/e2e/.typing_${crypto.randomUUID().slice(0, 8)}.ts`, root);
  await Deno.writeTextFile(file, source);
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", file.pathname],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    return { ok: out.success, output: text };
  } finally {
    await Deno.remove(file);
  }
}

const _PRELUDE = `import { connect } from "../../lib/client/mod.ts";
import type { channels } from "../../channels/mod.ts";
const client = connect<typeof channels>({ share: "none" });
const record = client.channel("record:42", { name: "Ann" });
`;

Deno.test("typed channels: the app's definitions type the client", async (t) => {
  await t.step("a correctly typed use compiles", async () => {
    const { ok, output } = await check(`${_PRELUDE}
await record.push("state", { state: "editing" });
await record.push("patch", { text: "hello" });
record.on("patch", (patch) => console.log(patch.text));
client.channel("status:acme").on("status", (s) => console.log(s.state));
client.feed("status:acme", { events: ["joined", "status"] });
`);
    assert.ok(ok, output);
  });

  await t.step("a mistyped push payload does not compile", async () => {
    const { ok, output } = await check(`${_PRELUDE}
await record.push("state", { state: "sleeping" });
`);
    assert.equal(ok, false);
    assert.match(
      output,
      /TS2322.*'"sleeping"' is not assignable to type '"(editing" \| "viewing|viewing" \| "editing)"'/s,
    );
  });

  await t.step("an unknown event, topic or join param does not compile", async () => {
    const { ok, output } = await check(`${_PRELUDE}
await record.push("stat", { state: "editing" });
client.channel("room:1");
client.channel("record:1", { name: 42 });
record.on("pach", () => {});
`);
    assert.equal(ok, false);
    assert.match(output, /'"stat"' is not assignable to parameter of type '"state" \| "patch"'/);
    assert.match(
      output,
      /'"room:1"' is not assignable to parameter of type '`record:\$\{string\}` \| `status:\$\{string\}`'/,
    );
    assert.match(output, /Type 'number' is not assignable to type 'string'/);
    assert.match(output, /'"pach"' is not assignable to parameter of type '"patch"'/);
  });
});

Deno.test("a refused socket stays closed: disconnected by the app's backend, state refused", async () => {
  const server = await startServer({ SOCKET_SECRET: "client-refusal-secret", API_TOKEN: API });
  const token = await signToken("client-refusal-secret", { sub: "ann", exp: nowSeconds() + 600 });
  const states: ConnectionState[] = [];
  const ann = connect<typeof channels>({
    endpoint: `${server.url.replace("http", "ws")}/socket`,
    params: { token },
    share: "none",
  });
  ann.onState((state) => states.push(state));
  try {
    assert.deepEqual(await ann.channel("record:refused", { name: "Ann" }).join(), {});
    const res = await fetch(`${server.url}/api/disconnect`, {
      method: "POST",
      headers: { authorization: `Bearer ${API}` },
      body: JSON.stringify({ user_id: "ann" }),
    });
    assert.deepEqual(await res.json(), { sessions: 1 });
    await waitFor(() => ann.state.kind === "refused", "the refused state");
    const refused = ann.state as Extract<ConnectionState, { kind: "refused" }>;
    assert.equal(refused.code, 4010);
    assert.match(refused.reason, /disconnected by the server/);
    // Phoenix would come back with the revoked token within a second (refused, 4011); the
    // client does not: the node saw no second connection.
    await delay(1_500);
    assert.equal(await metricValue(server.url, "switchboard_refused_total", 'reason="revoked"'), 0);
    assert.equal(await metricValue(server.url, "switchboard_connections_total"), 1);
    assert.equal(states.at(-1)?.kind, "refused");
  } finally {
    ann.close();
    await server.stop();
  }
});

Deno.test("the client in Deno: join, push with replies, messages, presence, validation", async () => {
  const server = await startServer();
  const ws = server.url.replace("http", "ws");
  const invalid: unknown[] = [];
  // The client's own schemas: stricter than the demo's, to see validation drop a message.
  const strict = [
    defineChannel({
      topic: "record:*",
      messages: { patch: z.object({ text: z.string() }) },
    }),
  ];
  const ann = connect<typeof channels>({
    endpoint: `${ws}/socket`,
    eventsUrl: `${server.url}/events`,
    pollUrl: `${server.url}/api/topics/`,
    params: { user_id: "ann" }, // share: "auto", which is "none" outside pages
    validate: strict,
    onInvalid: (info) => invalid.push(info.payload),
    presenceLeaveGraceMs: 300,
  });
  const bob = connect<typeof channels>({
    endpoint: `${ws}/socket`,
    params: { user_id: "bob" },
    share: "none",
  });
  try {
    assert.equal(ann.sharing, "none");
    const record = ann.channel("record:deno", { name: "Ann" });
    const patches: unknown[] = [];
    record.on("patch", (p) => patches.push(p));
    let keys: string[] = [];
    record.presence.onSync((entries) => keys = entries.map((e) => e.key));
    assert.deepEqual(await record.join(), {});
    assert.deepEqual(await record.push("state", { state: "editing" }), {});
    await assert.rejects(
      record.push("state", { state: "sleeping" } as never),
      (err) => err instanceof ReplyError && err.response.reason === "invalid_payload",
    );
    const bobRecord = bob.channel("record:deno", { name: "Bob" });
    await bobRecord.join();
    await waitFor(() => keys.join() === "ann,bob", "both in Ann's presence");
    await bobRecord.push("patch", { text: 7 });
    await bobRecord.push("patch", { text: "seven" });
    await waitFor(() => patches.length === 1 && invalid.length === 1, "one valid, one dropped");
    assert.deepEqual(patches, [{ text: "seven" }]);
    assert.deepEqual(invalid, [{ text: 7 }]);
    const status = ann.channel("status:deno");
    assert.deepEqual(await status.join(), { status: null, updated_at: null });
    await assert.rejects(
      status.push("anything", {}),
      (err) => err instanceof ReplyError && err.response.reason === "read_only",
    );
    const refused = ann.channel("nope:1" as "status:x");
    const closed: string[] = [];
    refused.onClose((reason) => closed.push(reason));
    await assert.rejects(refused.join(), /unmatched topic/);
    await waitFor(() => closed.length === 1, "the refused channel to close");
    assert.deepEqual(closed, ["unmatched topic"]);
    bobRecord.leave();
    await waitFor(() => keys.join() === "ann", "Bob left (after the leave grace)");
  } finally {
    ann.close();
    bob.close();
    await server.stop();
  }
});

Deno.test("a handover between engines: resumed from the cursor, nothing lost, nothing twice", async () => {
  const server = await startServer();
  const options = {
    endpoint: `${server.url.replace("http", "ws")}/socket`,
    eventsUrl: `${server.url}/events`,
    pollUrl: `${server.url}/api/topics/`,
    params: { user_id: "ann" },
    longPollFallbackMs: 2500,
    presenceLeaveGraceMs: 0,
    // Each engine rebuilds deltas from its own messages: the new one starts with full ones.
    deltas: true,
  };
  const topic = "record:handover";
  const publish = async (from: number, to: number) => {
    for (let i = from; i <= to; i++) {
      const res = await fetch(`${server.url}/api/broadcast`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ topic, event: "patch", payload: { text: `n${i}` } }),
      });
      await res.body?.cancel();
    }
  };
  // What the tabs got, from whichever engine held the connection.
  const delivered: string[] = [];
  let joins = 0;
  // A follower tab's copy of the leader's resume state, fed by the leader's messages.
  const mirror = new ResumeState();
  const tab = (msg: EngineMessage) => {
    if (msg.t === "msg") delivered.push(String(msg.payload.text));
    if (msg.t === "joined" && msg.status === "ok") joins++;
  };
  const first = new Engine(options, (msg) => {
    mirror.observe(msg);
    tab(msg);
  });
  let second: Engine | undefined;
  try {
    const join = { t: "join", from: "t1", cid: 1, topic, params: { name: "Ann" } } as const;
    first.handle(join);
    await waitFor(() => joins === 1, "the first join");
    await publish(1, 5);
    await waitFor(() => delivered.length === 5, "five patches");
    first.close(); // the leading tab closes
    await publish(6, 8); // nobody is connected
    second = new Engine(options, tab, mirror);
    second.handle(join);
    await waitFor(() => joins === 2, "the resumed join");
    await publish(9, 9);
    const all = Array.from({ length: 9 }, (_, i) => `n${i + 1}`);
    await waitFor(() => delivered.length >= 9, "nine patches");
    assert.deepEqual(delivered, all);
  } finally {
    first.close();
    second?.close();
    await server.stop();
  }
});
