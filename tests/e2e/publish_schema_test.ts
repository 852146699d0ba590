/**
 * A channel's `messages` schemas are enforced on publish: the API (one message or a batch), a
 * handler's `ctx.broadcast` and `switchboard.publish` refuse a payload that fails the schema of
 * its event, and nothing reaches the subscribers (the official phoenix client and an SSE
 * reader, on a served app).
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineChannel, event, InvalidPayloadError } from "@switchboard/switchboard";
import { serveInProcess } from "../support/in_process.ts";
import { connectSocket, disconnect, join, push } from "../support/phoenix.ts";
import { openSse } from "../support/sse.ts";
import { waitFor } from "../support/wait.ts";

const score = defineChannel({
  topic: "score:*",
  events: {
    // Looser than the message schema on purpose: the handler passes on what it got.
    goal: event(z.object({ team: z.string(), minute: z.unknown() }), (ctx, msg) => {
      ctx.broadcast("goal", msg);
      return {};
    }),
  },
  messages: { goal: z.object({ team: z.string(), minute: z.number().int() }) },
});

// deno-lint-ignore no-explicit-any
async function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}/api/broadcast`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

Deno.test("payloads that fail the channel's messages schema are refused on every publish path, and nothing is delivered", async (t) => {
  await using app = serveInProcess({ channels: [score] });
  const socket = await connectSocket(app.socketUrl, { user_id: "ann" });
  const channel = socket.channel("score:final");
  const goals: unknown[] = [];
  channel.on("goal", (p: unknown) => goals.push(p));
  await join(channel);
  const sse = await openSse(`${app.url}/events?topic=score:final`);
  await sse.next((e) => e.event === "joined");
  /** Publishes a valid marker and waits for it: everything sent before it has arrived. */
  const delivered = async (minute: number) => {
    assert.equal(
      (await post(app.url, { topic: "score:final", event: "goal", payload: { team: "m", minute } }))
        .status,
      202,
    );
    await waitFor(
      () => goals.some((g) => (g as { minute: number }).minute === minute),
      `marker ${minute}`,
    );
    await sse.next((e) => e.event === "goal" && e.json?.payload.minute === minute);
    const seen = sse.events.filter((e) => e.event === "goal").map((e) => e.json?.payload);
    return { phoenix: goals.splice(0), sse: seen };
  };

  await t.step("the API answers 422 invalid_payload naming the field", async () => {
    const res = await post(app.url, {
      topic: "score:final",
      event: "goal",
      payload: { team: "a", minute: "late" },
    });
    assert.equal(res.status, 422);
    assert.equal(res.json.reason, "invalid_payload");
    assert.deepEqual(res.json.errors.map((e: { field: string }) => e.field), ["payload.minute"]);
    assert.match(res.json.errors[0].message, /number/);
    assert.match(res.json.error, /payload\.minute/);
  });

  await t.step("a batch with one bad message publishes none of it", async () => {
    const res = await post(app.url, [
      { topic: "score:final", event: "goal", payload: { team: "a", minute: 1 } },
      { topic: "score:final", event: "goal", payload: { minute: 2 } },
    ]);
    assert.equal(res.status, 422);
    assert.deepEqual(res.json.errors.map((e: { field: string }) => e.field), ["[1].payload.team"]);
  });

  await t.step(
    "ctx.broadcast of a bad payload: the push gets invalid_payload, nothing goes out",
    async () => {
      const reply = await push(channel, "goal", { team: "a", minute: "late" });
      assert.equal(reply.status, "error");
      assert.equal(reply.response.reason, "invalid_payload");
      assert.deepEqual(
        (reply.response.errors as { field: string }[]).map((e) => e.field),
        ["payload.minute"],
      );
    },
  );

  await t.step("switchboard.publish throws InvalidPayloadError", () => {
    assert.throws(
      () => app.switchboard.publish("score:final", "goal", { team: 1, minute: 3 }),
      (err) => err instanceof InvalidPayloadError && err.errors[0].field === "payload.team",
    );
  });

  await t.step(
    "none of the refused payloads reached a subscriber; valid ones and unschematized events pass",
    async () => {
      const other = await post(app.url, {
        topic: "score:final",
        event: "note",
        payload: { any: 1 },
      });
      assert.equal(other.status, 202);
      const seen = await delivered(90);
      assert.deepEqual(seen.phoenix, [{ team: "m", minute: 90 }]);
      assert.deepEqual(seen.sse, [{ team: "m", minute: 90 }]);
      const viaPush = await push(channel, "goal", { team: "b", minute: 91 });
      assert.equal(viaPush.status, "ok");
      await waitFor(() => goals.length === 1, "the valid pushed goal");
    },
  );
  await sse.close();
  await disconnect(socket);
});
