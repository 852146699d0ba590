/**
 * Bad input over raw WebSocket frames: every malformed, misdirected or oversized frame gets the
 * protocol's answer, the server stays up, the offending socket stays usable (unless the contract
 * says it closes), and another connected client keeps working.
 */
import assert from "node:assert/strict";
import {
  isReply,
  openRaw,
  type RawFrame,
  type RawSocket,
  replyOf,
  upgradeOutcome,
} from "../support/raw_ws.ts";
import { type ServerProcess, startServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

const WATCH_TOPIC = "status:watch";

function wsUrl(server: ServerProcess, userId: string, vsn: string | null = "2.0.0"): string {
  const query = new URLSearchParams({ user_id: userId });
  if (vsn !== null) query.set("vsn", vsn);
  return `${server.socketUrl}/websocket?${query}`;
}

function payloadOf(frame: RawFrame): Record<string, unknown> {
  return (frame.payload ?? {}) as Record<string, unknown>;
}

async function presenceOf(
  server: ServerProcess,
  topic: string,
): Promise<Record<string, { metas: Record<string, unknown>[] }>> {
  const res = await fetch(`${server.url}/api/presence/${topic}`);
  assert.equal(res.status, 200);
  const body = await res.json();
  return body.presences;
}

async function broadcast(server: ServerProcess, topic: string, payload: Record<string, unknown>) {
  const res = await fetch(`${server.url}/api/broadcast`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ topic, event: "status", payload }),
  });
  assert.equal(res.status, 202, await res.text());
}

let _refs = 0;
/** A ref no other frame of this file uses. */
function ref(): string {
  return `r${++_refs}`;
}

/** A heartbeat on the socket still gets its ok reply. */
async function assertUsable(ws: RawSocket): Promise<void> {
  const r = ref();
  ws.push(null, r, "phoenix", "heartbeat", {});
  const reply = await ws.next(isReply(r));
  assert.deepEqual(reply.json, [null, r, "phoenix", "phx_reply", { status: "ok", response: {} }]);
}

/** Joins `topic` and returns the ok reply's response. */
async function join(
  ws: RawSocket,
  topic: string,
  joinRef: string,
  params: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  ws.push(joinRef, joinRef, topic, "phx_join", params);
  const reply = await ws.next(isReply(joinRef));
  assert.equal(reply.joinRef, joinRef);
  assert.equal(replyOf(reply).status, "ok", reply.raw as string);
  return replyOf(reply).response;
}

Deno.test("bad input on the WebSocket transport", async (t) => {
  const server = await startServer();
  let observer: RawSocket | undefined;
  try {
    observer = await openRaw(wsUrl(server, "observer"));
    const watcher = observer;
    await join(watcher, WATCH_TOPIC, "w1");

    /** The server is up and the observer still gets heartbeat replies and broadcasts. */
    const assertOthersFine = async () => {
      await assertUsable(watcher);
      const marker = ref();
      await broadcast(server, WATCH_TOPIC, { marker });
      const got = await watcher.next((f) => f.event === "status" && payloadOf(f).marker === marker);
      assert.deepEqual(got.json, [null, null, WATCH_TOPIC, "status", { marker }]);
    };

    /** Runs `body` on a fresh socket, then checks it and the observer, and closes it. */
    const withSocket = async (
      userId: string,
      body: (ws: RawSocket) => Promise<void>,
      { stillUsable = true } = {},
    ) => {
      const ws = await openRaw(wsUrl(server, userId));
      try {
        await body(ws);
        if (stillUsable) await assertUsable(ws);
        await assertOthersFine();
      } finally {
        await ws.close();
      }
    };

    await t.step("a non-JSON frame gets a bad_frame phx_error on topic phoenix", async () => {
      await withSocket("nonjson", async (ws) => {
        ws.send("this is not json {");
        const err = await ws.next((f) => f.event === "phx_error");
        assert.equal(err.json !== undefined, true);
        const [joinRef, r, topic, event, payload] = err.json as unknown[];
        assert.deepEqual([joinRef, r, topic, event], [null, null, "phoenix", "phx_error"]);
        assert.equal((payload as Record<string, unknown>).reason, "bad_frame");
        assert.equal(typeof (payload as Record<string, unknown>).detail, "string");
        assert.match(String((payload as Record<string, unknown>).detail), /JSON/i);
      });
    });

    await t.step("wrong frame shapes get bad_frame with a detail naming the problem", async () => {
      await withSocket("shapes", async (ws) => {
        const cases: [string, string, RegExp][] = [
          [
            "an object in v2",
            JSON.stringify({ topic: "phoenix", event: "heartbeat", payload: {}, ref: "1" }),
            /array/i,
          ],
          ["an array of 4", JSON.stringify([null, "1", "phoenix", "heartbeat"]), /array/i],
          [
            "a payload that is not an object",
            JSON.stringify([null, "1", "phoenix", "heartbeat", "x"]),
            /payload/i,
          ],
          [
            "an array payload",
            JSON.stringify([null, "1", "phoenix", "heartbeat", [1]]),
            /payload/i,
          ],
          ["a numeric topic", JSON.stringify([null, "1", 42, "heartbeat", {}]), /topic/i],
          ["a numeric event", JSON.stringify([null, "1", "phoenix", 7, {}]), /event/i],
        ];
        for (const [what, text, detail] of cases) {
          ws.send(text);
          const err = await ws.next((f) => f.event === "phx_error");
          assert.deepEqual(
            [err.joinRef, err.ref, err.topic, payloadOf(err).reason],
            [null, null, "phoenix", "bad_frame"],
            what,
          );
          assert.match(String(payloadOf(err).detail), detail, what);
          // None of them was treated as a heartbeat.
          assert.equal(ws.log.some((f) => f.event === "phx_reply" && f.ref === "1"), false, what);
        }
      });
    });

    await t.step(
      "a push to a topic not joined gets 'unmatched topic' with join_ref null",
      async () => {
        await withSocket("unjoined", async (ws) => {
          const r = ref();
          ws.push("7", r, "record:99", "state", { state: "editing" });
          const reply = await ws.next(isReply(r));
          assert.deepEqual(reply.json, [null, r, "record:99", "phx_reply", {
            status: "error",
            response: { reason: "unmatched topic" },
          }]);
        });
      },
    );

    await t.step(
      "a join of an unknown topic gets 'unmatched topic' with join_ref null",
      async () => {
        await withSocket("unknown", async (ws) => {
          const r = ref();
          ws.push(r, r, "nope:1", "phx_join", {});
          const reply = await ws.next(isReply(r));
          assert.deepEqual(reply.json, [null, r, "nope:1", "phx_reply", {
            status: "error",
            response: { reason: "unmatched topic" },
          }]);
        });
      },
    );

    await t.step(
      "a duplicate join closes the old instance first; presence keeps one meta",
      async () => {
        await withSocket("dup", async (ws) => {
          const first = ref();
          await join(ws, "record:1", first, { name: "Dup" });
          const before = await waitFor(async () => {
            const p = await presenceOf(server, "record:1");
            return p.dup?.metas.length === 1 ? p.dup.metas[0] : undefined;
          }, "dup in the presence of record:1");

          const second = ref();
          ws.push(second, second, "record:1", "phx_join", { name: "Dup" });
          const isClose = (f: RawFrame) => f.topic === "record:1" && f.event === "phx_close";
          const firstFrame = await ws.next((f) => isClose(f) || isReply(second)(f));
          assert.deepEqual(firstFrame.json, [first, first, "record:1", "phx_close", {}]);
          const reply = await ws.next(isReply(second));
          assert.deepEqual(reply.json, [second, second, "record:1", "phx_reply", {
            status: "ok",
            response: {},
          }]);
          const state = await ws.next((f) => f.event === "presence_state" && f.joinRef === second);
          assert.equal(
            (payloadOf(state).dup as { metas: unknown[] }).metas.length,
            1,
            "presence_state after the rejoin holds one meta for the user",
          );

          const presences = await presenceOf(server, "record:1");
          assert.equal(presences.dup.metas.length, 1, JSON.stringify(presences));
          assert.notEqual(presences.dup.metas[0].phx_ref, before.phx_ref);
          assert.equal(presences.dup.metas[0].name, "Dup");

          // The new instance works.
          const r = ref();
          ws.push(second, r, "record:1", "state", { state: "editing" });
          assert.equal(replyOf(await ws.next(isReply(r))).status, "ok");
        });
      },
    );

    await t.step(
      "a payload failing the schema gets invalid_payload; the channel stays joined",
      async () => {
        await withSocket("schema", async (ws) => {
          const jr = ref();
          await join(ws, "record:1", jr, { name: "Schema" });
          const bad = ref();
          ws.push(jr, bad, "record:1", "state", { state: "bogus" });
          const reply = await ws.next(isReply(bad));
          assert.equal(reply.joinRef, jr);
          const { status, response } = replyOf(reply);
          assert.equal(status, "error");
          assert.equal(response.reason, "invalid_payload");
          const errors = response.errors as { field: string; message: string }[];
          assert.ok(Array.isArray(errors) && errors.length > 0, JSON.stringify(response));
          assert.equal(errors[0].field, "state");
          assert.equal(typeof errors[0].message, "string");

          const good = ref();
          ws.push(jr, good, "record:1", "state", { state: "editing" });
          const ok = await ws.next(isReply(good));
          assert.deepEqual(ok.json, [jr, good, "record:1", "phx_reply", {
            status: "ok",
            response: {},
          }]);
          await waitFor(
            async () =>
              (await presenceOf(server, "record:1")).schema?.metas[0]?.state === "editing",
            "the state push to update the presence meta",
          );
        });
      },
    );

    await t.step("join params failing the schema get invalid_params naming the field", async () => {
      await withSocket("params", async (ws) => {
        const jr = ref();
        ws.push(jr, jr, "record:2", "phx_join", { name: "x".repeat(200) });
        const reply = await ws.next(isReply(jr));
        assert.equal(reply.joinRef, jr);
        const { status, response } = replyOf(reply);
        assert.equal(status, "error");
        assert.equal(response.reason, "invalid_params");
        const errors = response.errors as { field: string }[];
        assert.ok(errors.some((e) => e.field === "name"), JSON.stringify(response));
        // Refused: not tracked, and pushes are unmatched.
        assert.equal((await presenceOf(server, "record:2")).params, undefined);
        const r = ref();
        ws.push(jr, r, "record:2", "state", { state: "editing" });
        assert.equal(replyOf(await ws.next(isReply(r))).response.reason, "unmatched topic");
      });
    });

    await t.step(
      "a push on a status topic gets read_only and the channel stays joined",
      async () => {
        await withSocket("reader", async (ws) => {
          const jr = ref();
          await join(ws, "status:ro", jr);
          for (const event of ["status", "anything"]) {
            const r = ref();
            ws.push(jr, r, "status:ro", event, { state: "outage" });
            const reply = await ws.next(isReply(r));
            assert.deepEqual(reply.json, [jr, r, "status:ro", "phx_reply", {
              status: "error",
              response: { reason: "read_only" },
            }]);
          }
          // Still subscribed: an API broadcast arrives.
          await broadcast(server, "status:ro", { state: "degraded" });
          const got = await ws.next((f) => f.topic === "status:ro" && f.event === "status");
          assert.deepEqual(got.json, [null, null, "status:ro", "status", { state: "degraded" }]);
        });
      },
    );

    await t.step("a push with a stale join_ref gets no reply and has no effect", async () => {
      await withSocket("stale", async (ws) => {
        const old = ref();
        await join(ws, "record:3", old, { name: "Stale" });
        const current = ref();
        ws.push(current, current, "record:3", "phx_join", { name: "Stale" });
        await ws.next(isReply(current));
        const staleRef = ref();
        ws.push(old, staleRef, "record:3", "state", { state: "editing" });
        // Frames of one socket are handled in order: once this heartbeat is answered, the stale
        // push has been handled too.
        await assertUsable(ws);
        assert.equal(ws.log.some((f) => f.ref === staleRef), false, "no frame for the stale push");
        const presences = await presenceOf(server, "record:3");
        assert.equal(presences.stale.metas.length, 1);
        assert.equal(presences.stale.metas[0].state, "viewing");
      });
    });

    await t.step("a leave of a topic not joined gets an ok reply", async () => {
      await withSocket("leaver", async (ws) => {
        const r = ref();
        ws.push("9", r, "record:77", "phx_leave", {});
        const reply = await ws.next(isReply(r));
        assert.equal(reply.ref, r);
        assert.equal(reply.joinRef, "9", "a reply to a channel message echoes its join_ref");
        assert.equal(reply.topic, "record:77");
        assert.deepEqual(reply.payload, { status: "ok", response: {} });
      });
    });

    await t.step("a frame over 64 KiB closes the socket with 1009", async () => {
      await withSocket("big", async (ws) => {
        ws.push(null, ref(), "phoenix", "heartbeat", { pad: "x".repeat(65 * 1024) });
        const { code } = await ws.closed;
        assert.equal(code, 1009);
      }, { stillUsable: false });
    });

    await t.step(
      "MAX_FRAME_BYTES=1024: a 2 KiB frame closes with 1009, 500 bytes is fine",
      async () => {
        const small = await startServer({ MAX_FRAME_BYTES: "1024" });
        try {
          const ws = await openRaw(wsUrl(small, "small"));
          try {
            const okRef = ref();
            const okFrame = JSON.stringify([null, okRef, "phoenix", "heartbeat", { pad: "" }]);
            const padded = okFrame.replace(
              '"pad":""',
              `"pad":"${"y".repeat(500 - okFrame.length)}"`,
            );
            assert.equal(padded.length, 500);
            ws.send(padded);
            assert.equal(replyOf(await ws.next(isReply(okRef))).status, "ok");
            ws.push(null, ref(), "phoenix", "heartbeat", { pad: "z".repeat(2048) });
            assert.equal((await ws.closed).code, 1009);
          } finally {
            await ws.close();
          }
          // The small server still accepts connections.
          const again = await openRaw(wsUrl(small, "small2"));
          try {
            await assertUsable(again);
          } finally {
            await again.close();
          }
        } finally {
          await small.stop();
        }
      },
    );

    await t.step("a binary frame gets a bad_frame phx_error", async () => {
      await withSocket("binary", async (ws) => {
        ws.send(new TextEncoder().encode(JSON.stringify([null, "1", "phoenix", "heartbeat", {}])));
        const err = await ws.next((f) => f.event === "phx_error");
        assert.deepEqual([err.joinRef, err.ref, err.topic], [null, null, "phoenix"]);
        assert.equal(payloadOf(err).reason, "bad_frame");
        assert.equal(typeof payloadOf(err).detail, "string");
      });
    });

    await t.step("an unsupported vsn is refused, saying so (close 4008)", async () => {
      const url = wsUrl(server, "future", "3.0.0");
      assert.equal(await upgradeOutcome(url), "unsupported_vsn");
      const raw = await openRaw(url);
      assert.deepEqual(await raw.closed, {
        code: 4008,
        reason: 'unsupported vsn "3.0.0": use 2.0.0 (or omit it for 1.0.0)',
      });
      await assertOthersFine();
    });

    await t.step("a heartbeat is answered ok with join_ref null without any join", async () => {
      await withSocket("beat", async (ws) => {
        const r = ref();
        ws.push(null, r, "phoenix", "heartbeat", {});
        const reply = await ws.next(isReply(r));
        assert.deepEqual(reply.json, [null, r, "phoenix", "phx_reply", {
          status: "ok",
          response: {},
        }]);
        // Even a heartbeat frame carrying a join_ref is answered with join_ref null.
        const r2 = ref();
        ws.push("5", r2, "phoenix", "heartbeat", {});
        assert.equal((await ws.next(isReply(r2))).joinRef, null);
      });
    });

    await t.step("v1 (no vsn): object frames, replies without join_ref", async () => {
      const ws = await openRaw(wsUrl(server, "oldclient", null));
      try {
        ws.send(
          JSON.stringify({
            topic: "record:5",
            event: "phx_join",
            payload: { name: "V1" },
            ref: "1",
          }),
        );
        const reply = await ws.next((f) => f.event === "phx_reply" && f.ref === "1");
        assert.deepEqual(reply.json, {
          topic: "record:5",
          event: "phx_reply",
          payload: { status: "ok", response: {} },
          ref: "1",
        });
        const state = await ws.next((f) => f.event === "presence_state");
        assert.equal(Array.isArray(state.json), false);
        assert.equal("join_ref" in (state.json as object), false);
        assert.ok("oldclient" in payloadOf(state));

        ws.send(JSON.stringify({ topic: "phoenix", event: "heartbeat", payload: {}, ref: "2" }));
        const beat = await ws.next((f) => f.event === "phx_reply" && f.ref === "2");
        assert.deepEqual(beat.json, {
          topic: "phoenix",
          event: "phx_reply",
          payload: { status: "ok", response: {} },
          ref: "2",
        });
        // A v2 array is not a v1 frame.
        ws.send(JSON.stringify([null, "3", "phoenix", "heartbeat", {}]));
        const err = await ws.next((f) => f.event === "phx_error");
        assert.equal(payloadOf(err).reason, "bad_frame");
      } finally {
        await ws.close();
      }
      await assertOthersFine();
    });

    await t.step("v1 (no vsn): pushes without join_ref reach the joined channel", async () => {
      // Phoenix v1 clients send no join_ref; Phoenix matches them to the current instance.
      const ws = await openRaw(wsUrl(server, "v1push", null));
      try {
        ws.send(JSON.stringify({ topic: "record:6", event: "phx_join", payload: {}, ref: "1" }));
        const joined = await ws.next((f) => f.event === "phx_reply" && f.ref === "1");
        assert.equal(replyOf(joined).status, "ok");
        ws.send(
          JSON.stringify({
            topic: "record:6",
            event: "state",
            payload: { state: "editing" },
            ref: "2",
          }),
        );
        const reply = await ws.next((f) => f.event === "phx_reply" && f.ref === "2");
        assert.deepEqual(reply.payload, { status: "ok", response: {} });
        ws.send(JSON.stringify({ topic: "record:6", event: "phx_leave", payload: {}, ref: "3" }));
        const left = await ws.next((f) => f.event === "phx_reply" && f.ref === "3");
        assert.equal(replyOf(left).status, "ok");
        await ws.next((f) => f.event === "phx_close" && f.topic === "record:6");
      } finally {
        await ws.close();
      }
    });
  } finally {
    await observer?.close();
    await server.stop();
  }
});
