/**
 * A crowd of raw Phoenix v2 WebSocket members on one presence topic, for the crowd tests: joins
 * in waves of bounded concurrency, counts the presence bytes each member receives, and reads the
 * member list page by page.
 *
 * @example
 * ```ts
 * const crowd = await joinCrowd({ socketUrls: [server.socketUrl], topic: "record:big", count: 500 });
 * await waitFor(() => crowd.members.every((m) => m.users() >= 500), "everyone told the count");
 * await crowd.close();
 * ```
 * @module
 */
import { isReply, openRaw, type RawFrame, type RawSocket, replyOf } from "./raw_ws.ts";

/** Events that carry presence to a member. */
const _PRESENCE_EVENTS = new Set(["presence_state", "presence_diff", "occupancy"]);

/** One member of the crowd. */
export interface CrowdMember {
  key: string;
  socket: RawSocket;
  /** Bytes of presence frames (state, diffs, occupancy) received so far. */
  presenceBytes(): number;
  /** The largest `users` of an `occupancy` event received so far (0: none). */
  users(): number;
  /** The presence frames received so far. */
  presenceFrames(): RawFrame[];
}

/** Options of {@link joinCrowd}. */
export interface CrowdOptions {
  /** Member `i` connects to `socketUrls[i % length]`. */
  socketUrls: string[];
  topic: string;
  count: number;
  /** Keys are `<prefix><i>` (default `u`). */
  prefix?: string;
  /** Connections opened and joined at a time (default 200). */
  concurrency?: number;
  /** Called after each wave with the members so far (say, to page in the middle of a storm). */
  onWave?: (members: CrowdMember[]) => void | Promise<void>;
}

/** The crowd; {@link close} closes every socket. */
export interface Crowd {
  members: CrowdMember[];
  close(): Promise<void>;
}

/** Opens `count` sockets and joins each to `topic`, `concurrency` at a time. */
export async function joinCrowd(options: CrowdOptions): Promise<Crowd> {
  const { socketUrls, topic, count, prefix = "u", concurrency = 200 } = options;
  const members: CrowdMember[] = [];
  const crowd: Crowd = {
    members,
    close: async () => {
      await Promise.all(members.map((m) => m.socket.close()));
    },
  };
  try {
    for (let start = 0; start < count; start += concurrency) {
      const wave = Array.from({ length: Math.min(concurrency, count - start) }, (_, i) => {
        const index = start + i;
        const url = `${socketUrls[index % socketUrls.length]}/websocket?vsn=2.0.0&user_id=` +
          `${prefix}${index}`;
        return _member(url, `${prefix}${index}`, topic);
      });
      members.push(...await Promise.all(wave));
      await options.onWave?.(members);
    }
  } catch (err) {
    await crowd.close();
    throw err;
  }
  return crowd;
}

async function _member(url: string, key: string, topic: string): Promise<CrowdMember> {
  const socket = await openRaw(url, { timeoutMs: 20_000 });
  let bytes = 0;
  let users = 0;
  let seen = 0;
  const frames: RawFrame[] = [];
  // The log grows as frames arrive; read what is new since the last look.
  const scan = () => {
    for (; seen < socket.log.length; seen++) {
      const frame = socket.log[seen];
      if (typeof frame.event !== "string" || !_PRESENCE_EVENTS.has(frame.event)) continue;
      frames.push(frame);
      bytes += typeof frame.raw === "string" ? frame.raw.length : frame.raw.byteLength;
      if (frame.event === "occupancy") {
        users = Math.max(users, (frame.payload as { users: number }).users);
      }
    }
  };
  socket.push("1", "1", topic, "phx_join", { name: `Member ${key}` });
  const reply = replyOf(await socket.next(isReply("1"), 20_000));
  if (reply.status !== "ok") {
    await socket.close();
    throw new Error(`${key} could not join ${topic}: ${JSON.stringify(reply.response)}`);
  }
  return {
    key,
    socket,
    presenceBytes: () => (scan(), bytes),
    users: () => (scan(), users),
    presenceFrames: () => (scan(), frames),
  };
}

/** One page of a `presence_page` reply. */
export interface PageReply {
  members: { key: string; metas: unknown[] }[];
  next: string | null;
  users: number;
  subscribers: number;
}

let _pageRef = 0;

/** Pushes `presence_page` on a member's socket and returns the ok reply's response. */
export async function requestPage(
  member: CrowdMember,
  topic: string,
  payload: Record<string, unknown>,
): Promise<PageReply> {
  const ref = `page${++_pageRef}`;
  member.socket.push("1", ref, topic, "presence_page", payload);
  const reply = replyOf(await member.socket.next(isReply(ref), 10_000));
  if (reply.status !== "ok") throw new Error(`page refused: ${JSON.stringify(reply.response)}`);
  return reply.response as unknown as PageReply;
}

/** Reads every page from the start (at most `maxPages`); returns the keys in order. */
export async function readAllPages(
  member: CrowdMember,
  topic: string,
  { limit = 200, maxPages = 1_000 } = {},
): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < maxPages; page++) {
    const reply: PageReply = await requestPage(member, topic, { cursor, limit });
    keys.push(...reply.members.map((m) => m.key));
    if (reply.next === null) return keys;
    cursor = reply.next;
  }
  throw new Error(`more than ${maxPages} pages of ${limit}`);
}
