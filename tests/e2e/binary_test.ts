/**
 * Phoenix v2 binary frames with the unmodified official client (phoenix 1.8.16):
 * `channel.push(event, arrayBuffer)` reaches a binary event, its reply and broadcasts come back
 * as binary frames; JSON-only events refuse bytes with an error reply; long-poll sends them as
 * base64 lines and gets a clear error for a binary reply; SSE gets them in base64; malformed
 * binary frames get `bad_frame`. The app is served in-process with a channel written for it.
 */
import { serveInProcess } from "../support/in_process.ts";
import assert from "node:assert/strict";
import { z } from "zod";
import { binaryEvent, defineChannel, error, event } from "../../lib/mod.ts";
import { LongPoll } from "phoenix";
import { connectSocket, disconnect, join, push } from "../support/phoenix.ts";
import { openRaw, type RawFrame } from "../support/raw_ws.ts";
import { openSse } from "../support/sse.ts";
import { waitFor } from "../support/wait.ts";

const filesChannel = defineChannel({
  topic: "files:*",
  events: {
    // Echoes the bytes reversed as a binary reply, and hands them to the others.
    upload: binaryEvent((ctx, bytes) => {
      ctx.broadcastFrom("chunk", bytes);
      return bytes.slice().reverse();
    }),
    // Bytes in, JSON out: works on every transport.
    size: binaryEvent((_ctx, bytes) => ({ size: bytes.length })),
    note: event(z.object({ text: z.string() }), (_ctx, p) => p),
  },
});

/** A channel with only `handleIn` (like `status:*`): bytes never reach it. */
const readOnlyChannel = defineChannel({
  topic: "ro:*",
  handleIn: () => error({ reason: "read_only" }),
});

function serve() {
  return serveInProcess({ channels: [filesChannel, readOnlyChannel], env: { LOG_LEVEL: "error" } });
}

function bytesOf(...values: number[]): ArrayBuffer {
  return new Uint8Array(values).buffer;
}

/** Pushes an ArrayBuffer (the client sends a binary frame) and resolves with the reply. */
function pushBinary(
  channel: ReturnType<Awaited<ReturnType<typeof connectSocket>>["channel"]>,
  eventName: string,
  data: ArrayBuffer,
): Promise<{ status: string; response: unknown }> {
  return new Promise((resolve, reject) => {
    channel.push(eventName, data as never, 3000)
      .receive("ok", (response: unknown) => resolve({ status: "ok", response }))
      .receive("error", (response: unknown) => resolve({ status: "error", response }))
      .receive("timeout", () => reject(new Error(`binary push ${eventName} timed out`)));
  });
}

Deno.test("Phoenix v2 binary frames", async (t) => {
  const app = serve();
  try {
    await t.step(
      "a binary push gets a binary reply; the others get a binary broadcast",
      async () => {
        const ann = await connectSocket(app.socketUrl, { user_id: "ann" });
        const bob = await connectSocket(app.socketUrl, { user_id: "bob" });
        const annChannel = ann.channel("files:1");
        const bobChannel = bob.channel("files:1");
        const got: unknown[] = [];
        const annGot: unknown[] = [];
        bobChannel.on("chunk", (p: unknown) => got.push(p));
        annChannel.on("chunk", (p: unknown) => annGot.push(p));
        await join(annChannel);
        await join(bobChannel);
        const reply = await pushBinary(annChannel, "upload", bytesOf(1, 2, 3, 250));
        assert.equal(reply.status, "ok");
        assert.ok(reply.response instanceof ArrayBuffer, "the reply's response is an ArrayBuffer");
        assert.deepEqual([...new Uint8Array(reply.response)], [250, 3, 2, 1]);
        await waitFor(() => got.length === 1, "bob's binary broadcast");
        assert.ok(got[0] instanceof ArrayBuffer, "the broadcast payload is an ArrayBuffer");
        assert.deepEqual([...new Uint8Array(got[0] as ArrayBuffer)], [1, 2, 3, 250]);
        assert.equal(annGot.length, 0, "broadcastFrom skips the sender");
        // JSON still works beside it on the same channel.
        assert.deepEqual(await push(annChannel, "note", { text: "hi" }), {
          status: "ok",
          response: { text: "hi" },
        });
        await Promise.all([disconnect(ann), disconnect(bob)]);
      },
    );

    await t.step(
      "a JSON-only event refuses bytes with an error reply; the channel stays",
      async () => {
        const socket = await connectSocket(app.socketUrl, { user_id: "cy" });
        const channel = socket.channel("files:2");
        await join(channel);
        assert.deepEqual(await pushBinary(channel, "note", bytesOf(1)), {
          status: "error",
          response: { reason: "binary_not_accepted", event: "note" },
        });
        assert.deepEqual(await pushBinary(channel, "nope", bytesOf(1)), {
          status: "error",
          response: { reason: "unknown_event", event: "nope" },
        });
        assert.deepEqual(await push(channel, "upload", { text: "json" }), {
          status: "error",
          response: { reason: "binary_expected" },
        });
        assert.equal(channel.state, "joined");
        assert.equal((await pushBinary(channel, "size", bytesOf(1, 2))).status, "ok");
        await disconnect(socket);
      },
    );

    await t.step(
      "long-poll sends bytes as base64 lines; a binary reply becomes an error",
      async () => {
        const lp = await connectSocket(app.socketUrl, { user_id: "lp" }, { transport: LongPoll });
        const channel = lp.channel("files:3");
        await join(channel);
        assert.deepEqual(await pushBinary(channel, "size", bytesOf(9, 8, 7)), {
          status: "ok",
          response: { size: 3 },
        });
        const refused = await pushBinary(channel, "upload", bytesOf(1));
        assert.equal(refused.status, "error");
        assert.equal((refused.response as { reason: string }).reason, "binary_unsupported");
        await disconnect(lp);
      },
    );

    await t.step("SSE gets a binary broadcast with its bytes in base64", async () => {
      const sse = await openSse(`${app.url}/events?topic=files:4&user_id=viewer`);
      try {
        await sse.next((e) => e.event === "joined");
        const sender = await connectSocket(app.socketUrl, { user_id: "up" });
        const channel = sender.channel("files:4");
        await join(channel);
        await pushBinary(channel, "upload", bytesOf(0, 255, 16));
        const chunk = await sse.next((e) => e.event === "chunk");
        const data = JSON.parse(chunk.data);
        assert.deepEqual(data, { topic: "files:4", payload: {}, binary: "AP8Q" });
        await disconnect(sender);
      } finally {
        await sse.close();
      }
    });

    await t.step("malformed binary frames get bad_frame naming the problem", async () => {
      const ws = await openRaw(`${app.socketUrl}/websocket?vsn=2.0.0&user_id=raw`);
      try {
        const isError = (f: RawFrame) => f.event === "phx_error";
        const cases: [Uint8Array, RegExp][] = [
          [new Uint8Array([9, 1, 2]), /kind 9 is not a client frame/],
          [new Uint8Array([0, 1, 1, 5]), /too short/],
          [new Uint8Array([0, 1, 1, 40, 1, 49, 49, 102]), /field 3 ends past the frame/],
          [new Uint8Array([0, 0, 1, 1, 1, 49, 0xff, 101]), /not valid UTF-8/],
          [new Uint8Array([0, 0, 1, 0, 1, 49, 101]), /topic must be a non-empty string/],
        ];
        for (const [frame, detail] of cases) {
          ws.send(frame);
          const err = await ws.next(isError);
          assert.deepEqual([err.joinRef, err.ref, err.topic], [null, null, "phoenix"]);
          const payload = err.payload as { reason: string; detail: string };
          assert.equal(payload.reason, "bad_frame");
          assert.match(payload.detail, detail);
        }
        // Still usable: a heartbeat is answered.
        ws.push(null, "h1", "phoenix", "heartbeat", {});
        await ws.next((f) => f.ref === "h1");
      } finally {
        await ws.close();
      }
      const v1 = await openRaw(`${app.socketUrl}/websocket?user_id=old`);
      try {
        v1.send(new Uint8Array([0, 1, 1, 7, 1, 49, 49, 102, 105, 108, 101, 115, 58, 49, 101]));
        const err = await v1.next((f) => f.event === "phx_error");
        assert.match((err.payload as { detail: string }).detail, /need vsn=2.0.0/);
      } finally {
        await v1.close();
      }
    });
  } finally {
    await app.close();
  }
});
