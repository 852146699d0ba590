/** Replay from a cursor: what is missed, in order, and when the window can no longer serve it. */
import assert from "node:assert/strict";
import { Broadcast } from "../../lib/core/broadcast.ts";
import { headCursor, judgedCursor, replayFrom, TopicHistory } from "../../lib/resume/history.ts";

const msg = (stream: string, seq: number, at: number) =>
  new Broadcast({
    topic: "t:1",
    event: "e",
    payload: { stream, seq },
    origin: { nodeId: stream },
    stream,
    seq,
    at,
  });

function historyOf(size: number, ...messages: Broadcast[]) {
  const history = new TopicHistory({ size, maxAgeMs: 1_000_000 });
  for (const m of messages) history.add(m);
  return history;
}

Deno.test("replays exactly what came after the cursor, per stream, in arrival order", () => {
  const h = historyOf(
    10,
    msg("a~1", 1, 100),
    msg("b~1", 1, 101),
    msg("a~1", 2, 102),
    msg("b~1", 2, 103),
  );
  const cursor = { since: 50, streams: new Map([["a~1", 1], ["b~1", 1]]) };
  const { messages, complete } = replayFrom(h.entries(200), h.heads(200), cursor);
  assert.ok(complete);
  assert.deepEqual(messages.map((m) => `${m.stream}:${m.seq}`), ["a~1:2", "b~1:2"]);
});

Deno.test("an up-to-date cursor replays nothing; a head cursor is up to date", () => {
  const h = historyOf(10, msg("a~1", 1, 100), msg("a~1", 2, 101));
  const head = headCursor(h.heads(200), 200);
  assert.deepEqual(replayFrom(h.entries(200), h.heads(200), head), {
    messages: [],
    complete: true,
  });
});

Deno.test("a stream the client did not know counts from the cursor's start time", () => {
  const h = historyOf(10, msg("a~1", 1, 100), msg("c~1", 1, 150), msg("c~1", 2, 160));
  const cursor = { since: 155, streams: new Map([["a~1", 1]]) };
  const { messages, complete } = replayFrom(h.entries(200), h.heads(200), cursor);
  assert.deepEqual(messages.map((m) => `${m.stream}:${m.seq}`), ["c~1:2"]);
  assert.ok(complete, "the window reaches back before the start: nothing is missing");
});

Deno.test("messages that left the window make the replay incomplete", () => {
  const h = historyOf(2, msg("a~1", 1, 100), msg("a~1", 2, 101), msg("a~1", 3, 102));
  const behind = { since: 50, streams: new Map([["a~1", 0]]) };
  assert.equal(replayFrom(h.entries(200), h.heads(200), behind).complete, false);
  const justInside = { since: 50, streams: new Map([["a~1", 1]]) };
  const r = replayFrom(h.entries(200), h.heads(200), justInside);
  assert.ok(r.complete);
  assert.deepEqual(r.messages.map((m) => m.seq), [2, 3]);
});

Deno.test("the age limit empties the window, and the heads still show what was missed", () => {
  const history = new TopicHistory({ size: 10, maxAgeMs: 100 });
  history.add(msg("a~1", 1, 1000));
  history.add(msg("a~1", 2, 1050));
  assert.equal(history.entries(1120).length, 1, "the first is older than 100 ms");
  const cursor = { since: 0, streams: new Map([["a~1", 0]]) };
  assert.equal(replayFrom(history.entries(1120), history.heads(1120), cursor).complete, false);
});

Deno.test("a cursor naming a stream the heads do not know cannot be resumed", () => {
  const h = historyOf(10, msg("a~1", 1, 100), msg("a~1", 2, 101));
  const known = { since: 50, streams: new Map([["a~1", 1]]) };
  assert.equal(replayFrom(h.entries(200), h.heads(200), known).complete, true);
  // A run that left the window (its last messages may have gone unseen), or one made up.
  const unknown = { since: 50, streams: new Map([["a~1", 1], ["gone~7", 4]]) };
  const replay = replayFrom(h.entries(200), h.heads(200), unknown);
  assert.equal(replay.complete, false);
});

Deno.test("judgedCursor keeps the client's streams with their publish times", () => {
  const h = historyOf(10, msg("a~1", 1, 100), msg("b~1", 3, 120));
  const judged = judgedCursor({ since: 50, streams: new Map([["a~1", 1]]) }, h.heads(200));
  assert.deepEqual([...judged.streams], [["a~1", 1]]);
  assert.deepEqual([...judged.publishedAt!], [["a~1", 100]]);
  assert.deepEqual([...headCursor(h.heads(200), 200).publishedAt!], [["a~1", 100], ["b~1", 120]]);
});
