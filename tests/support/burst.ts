/**
 * The burst of issue 21 (600 × 20 KB status messages in 15 batches of 40, through the API) and
 * the check that a viewer converged: every message in order, or a reset then the current state.
 *
 * @example
 * ```ts
 * const reading = followSse(`${url}/events?topic=status:burst`, { done: sawLast(600), maxConnects: 25 });
 * await publishBurst(url, "status:burst");
 * checkConverged((await reading).events).last; // 600
 * ```
 * @module
 */
import assert from "node:assert/strict";
import { openRaw } from "./raw_ws.ts";
import { followSse, openSse, type SseEvent } from "./sse.ts";
import { waitFor } from "./wait.ts";

/**
 * 600 × 20 KB in 15 batches of 40, as the reproduction published them (`from`: the
 * first number, for a second burst on the same topic).
 */
export async function publishBurst(
  url: string,
  topic: string,
  { total = 600, batch = 40, from = 1 } = {},
) {
  const pad = "x".repeat(20_000);
  const last = from + total - 1;
  for (let first = from; first <= last; first += batch) {
    const body = Array.from({ length: Math.min(batch, last - first + 1) }, (_, i) => ({
      topic,
      event: "status",
      payload: { n: first + i, pad },
    }));
    const res = await fetch(`${url}/api/broadcast`, { method: "POST", body: JSON.stringify(body) });
    await res.body?.cancel();
    assert.equal(res.status, 202);
  }
}

/**
 * Checks a viewer's events: every status in order, none twice, none skipped, except that a
 * `reset` may jump to the current state (the status it carries); returns the last number seen.
 */
export function checkConverged(events: SseEvent[]): { last: number; resets: number } {
  let expected = 1;
  let resets = 0;
  for (const event of events) {
    if (event.event === "reset") {
      resets++;
      const state = event.json!.payload.state as { status: { n: number } | null };
      expected = (state.status?.n ?? 0) + 1;
    } else if (event.event === "status") {
      const n = event.json!.payload.n as number;
      assert.equal(n, expected, `status ${n} arrived where ${expected} was due`);
      expected++;
    }
  }
  return { last: expected - 1, resets };
}

/**
 * A viewer of `viewerUrl` that reads `topic` from the start while a burst is published on
 * `publisherUrl` (the same node or another), cut as a slow consumer and reconnecting with its
 * Last-Event-ID as EventSource does. Asserts it ends with every message in order (or a reset
 * then the current state) and at most one empty resume.
 */
export async function followBurst(
  options: { viewerUrl: string; publisherUrl: string; topic: string; pauseMs: number },
): Promise<void> {
  const { viewerUrl, publisherUrl, topic, pauseMs } = options;
  let opened!: () => void;
  const subscribed = new Promise<void>((resolve) => opened = resolve);
  const reading = followSse(`${viewerUrl}/events?topic=${topic}`, {
    done: sawLast(600),
    maxConnects: 25,
    pauseMs,
    opened,
  });
  // Published once the viewer is subscribed: a late joiner starts from the last message.
  await Promise.race([subscribed, reading]);
  await publishBurst(publisherUrl, topic);
  const follow = await reading;
  const { last } = checkConverged(follow.events);
  assert.equal(last, 600, `ended at ${last} of 600 after ${follow.connects} connects`);
  assert.ok(follow.empty <= 1, `${follow.empty} of ${follow.connects} resumes were empty`);
}

/** Done once the last status, or a reset carrying it, was read. */
export const sawLast = (total: number) => (events: SseEvent[]) =>
  events.some((e) =>
    (e.event === "status" && e.json!.payload.n === total) ||
    (e.event === "reset" &&
      (e.json!.payload.state as { status: { n: number } | null }).status?.n === total)
  );

/** Waits until the node at `url` holds the whole burst (its last message is the 600th). */
async function holdsBurst(url: string, topic: string): Promise<void> {
  await waitFor(
    async () => (await (await fetch(`${url}/api/topics/${topic}`)).json()).payload?.n === 600,
    "the viewer's node holds the whole burst",
    15_000,
  );
}

/** Where {@link resumeAfterBurst} reads and publishes, and how fast its viewer reads. */
export interface ResumeAfterBurst {
  /** The node the viewer reads from. */
  viewerUrl: string;
  /** The node the burst is published on (the same, or another node of the cluster). */
  publisherUrl: string;
  topic: string;
  /** Pause after each chunk read (0: full speed). */
  pauseMs: number;
}

/**
 * A viewer reads the start of a burst, loses its connection, and comes back with its
 * Last-Event-ID once the burst is over and the viewer's node holds all of it (~11 MB to
 * replay, past MAX_OUTBOUND_BYTES), reconnecting as EventSource does. Asserts it ends with
 * every message in order (or a reset then the current state) and no empty resume.
 */
export async function resumeAfterBurst(options: ResumeAfterBurst): Promise<void> {
  const { viewerUrl, publisherUrl, topic, pauseMs } = options;
  const url = `${viewerUrl}/events?topic=${topic}`;
  const first = await openSse(url);
  await first.next((e) => e.event === "joined");
  const publishing = publishBurst(publisherUrl, topic);
  await first.next((e) => e.event === "status" && e.json!.payload.n === 20, 15_000);
  await first.close();
  await publishing;
  await holdsBurst(viewerUrl, topic);
  const follow = await followSse(url, {
    done: sawLast(600),
    maxConnects: 10,
    pauseMs,
    lastEventId: first.events.at(-1)!.lastEventId,
  });
  const { last } = checkConverged([...first.events, ...follow.events]);
  assert.equal(last, 600, `ended at ${last} of 600 after ${follow.connects} connects`);
  assert.equal(follow.empty, 0, `${follow.empty} of ${follow.connects} resumes were empty`);
}

/** Where a resume by join cursor reads and the burst is published. */
export interface CursorResume {
  /** The node the client joins (http URL). */
  viewerUrl: string;
  /** The node the burst is published on (the same, or another node of the cluster). */
  publisherUrl: string;
  topic: string;
}

/**
 * The topic's cursor on the viewer's node now, then a burst published on the publisher's,
 * waited for until the viewer's node holds all of it: resuming from the cursor replays ~12 MB.
 */
export async function missBurst({ viewerUrl, publisherUrl, topic }: CursorResume): Promise<string> {
  const { cursor } = await (await fetch(`${viewerUrl}/api/topics/${topic}`)).json();
  await publishBurst(publisherUrl, topic);
  await holdsBurst(viewerUrl, topic);
  return cursor as string;
}

/** Status numbers and resets, as Phoenix frames (`[joinRef, ref, topic, event, payload]`) carry them. */
export function frameEvents(frames: unknown[][]): SseEvent[] {
  return frames.filter((f) => f[3] === "status" || f[3] === "reset").map((f) => ({
    event: f[3] as string,
    data: "",
    lastEventId: "",
    json: { topic: f[2] as string, payload: f[4] as Record<string, unknown> },
  }));
}

/**
 * A raw WebSocket joins with the cursor from before a burst (see {@link missBurst}) and gets
 * every status in order, paced by its connection.
 */
export async function resumeWebSocketAfterBurst(options: CursorResume): Promise<void> {
  const cursor = await missBurst(options);
  const raw = await openRaw(
    `${options.viewerUrl.replace("http", "ws")}/socket/websocket?vsn=2.0.0`,
  );
  try {
    raw.push("1", "1", options.topic, "phx_join", { cursor });
    await raw.next(
      (f) =>
        (f.event === "status" && (f.payload as { n: number }).n === 600) || f.event === "reset",
      30_000,
    );
    const { last, resets } = checkConverged(frameEvents(raw.log.map((f) => f.json as unknown[])));
    // The burst is over and fits the window: every message, no reset.
    assert.deepEqual({ last, resets }, { last: 600, resets: 0 });
  } finally {
    await raw.close();
  }
}

/**
 * A long-poll session joins with the cursor from before a burst (see {@link missBurst}); the
 * replay comes paced by its polls (more than one), every status in order.
 */
export async function resumeLongPollAfterBurst(options: CursorResume): Promise<void> {
  const cursor = await missBurst(options);
  const endpoint = `${options.viewerUrl}/socket/longpoll?vsn=2.0.0`;
  const { token } = await (await fetch(endpoint)).json();
  const post = await fetch(`${endpoint}&token=${token}`, {
    method: "POST",
    body: JSON.stringify(["1", "1", options.topic, "phx_join", { cursor }]),
  });
  assert.equal((await post.json()).status, 200);
  const frames: unknown[][] = [];
  let polls = 0;
  while (!sawLast(600)(frameEvents(frames)) && polls < 200) {
    polls++;
    const answer = await (await fetch(`${endpoint}&token=${token}`)).json();
    assert.ok([200, 204].includes(answer.status), `poll ${polls}: ${JSON.stringify(answer)}`);
    for (const m of answer.messages ?? []) frames.push(JSON.parse(m));
  }
  // The burst is over and fits the window: every message, no reset.
  assert.deepEqual(checkConverged(frameEvents(frames)), { last: 600, resets: 0 });
  assert.ok(polls > 1, "the replay came in several polls");
}
