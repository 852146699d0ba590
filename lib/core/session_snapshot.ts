/**
 * What a session can be rebuilt from after its node's memory is gone while its connection
 * stays open (a Cloudflare Durable Object that hibernated: the sockets outlive the object):
 * who the client is, its connect params and serializer, and each joined topic with its join
 * ref, join params and the presences it tracks (metas with their `phx_ref`s). Plain JSON, so a
 * runtime can keep it beside the socket (`serializeAttachment`) or in storage.
 *
 * Not kept: a channel's `assigns` (a channel that needs them after a wake reads them again
 * from its params), and a push being handled at that moment (the object does not sleep
 * while one is).
 *
 * @example
 * ```ts
 * const snapshot = snapshotSession(session, "2.0.0");
 * // … the object sleeps and wakes: a new node, the same socket …
 * const again = restoreSession(switchboard, { connection, snapshot });
 * again.topics; // the topics of `session`, presences unchanged
 * ```
 * @module
 */
import type { Identity } from "./identity.ts";
import { PhxEvent, ReplyReason } from "./protocol.ts";
import type { PresenceMeta } from "./presence.ts";
import { serializerFor } from "./serializer.ts";
import type { Session } from "./session.ts";
import { ChannelServer } from "./channel_server.ts";
import type { Connection } from "./connection.ts";
import type { Switchboard } from "./switchboard.ts";

/** One joined topic of a {@link SessionSnapshot}. */
export interface TopicSnapshot {
  topic: string;
  joinRef: string | null;
  /** The join params as the channel's `joinParams` schema returned them. */
  params: unknown;
  /** The presences this join tracks: key and meta (with its `phx_ref`). */
  presences: [string, PresenceMeta][];
  /** The client takes deltas (its first message after the wake is a full one). */
  deltas?: boolean;
}

/** Everything a session is rebuilt from; see the module documentation. */
export interface SessionSnapshot {
  /** The format; a snapshot of another version is not restored (the client reconnects). */
  v: 1;
  identity: Identity;
  /** Connect params without `token` and `vsn`. */
  params: Record<string, string>;
  /** The serializer's version (`vsn`). */
  vsn: string;
  topics: TopicSnapshot[];
}

/** A session as a {@link SessionSnapshot}. */
export function snapshotSession(session: Session): SessionSnapshot {
  const topics: TopicSnapshot[] = [];
  for (const topic of session.topics) {
    const server = session.channel(topic);
    if (!server || server.stopped) continue;
    const { presences, deltas } = server.snapshot();
    const joined: TopicSnapshot = {
      topic,
      joinRef: server.joinRef,
      params: server.params,
      presences,
    };
    if (deltas) joined.deltas = true;
    topics.push(joined);
  }
  return {
    v: 1,
    identity: session.identity,
    params: { ...session.connectParams },
    vsn: session.serializer.vsn,
    topics,
  };
}

/** What {@link restoreSession} needs: the node, the client's connection, the snapshot. */
export interface RestoreSession {
  connection: Connection;
  snapshot: SessionSnapshot;
}

/**
 * Rebuilds a session from its snapshot on a fresh node, before the event that woke the node
 * is handled: subscriptions and presences come back as they were (same `phx_ref`s), nothing
 * is sent to the client and no presence diff goes out. A topic whose channel is gone (a new
 * deploy) is dropped, and the client is told with `phx_error`, as for a crashed channel.
 * Throws a `TypeError` for a snapshot it cannot read.
 */
export function restoreSession(
  switchboard: Switchboard,
  { connection, snapshot }: RestoreSession,
): Session {
  const serializer = serializerFor(snapshot.vsn);
  if (snapshot.v !== 1 || !serializer) {
    throw new TypeError(`session snapshot v${snapshot.v} (vsn ${snapshot.vsn}) is not readable`);
  }
  const session = switchboard.openSession({
    connection,
    params: snapshot.params,
    identity: snapshot.identity,
    serializer,
    restored: true,
  });
  for (const joined of snapshot.topics) {
    const match = switchboard.router.match(joined.topic);
    if (!match) {
      session.send({
        joinRef: joined.joinRef,
        ref: joined.joinRef,
        topic: joined.topic,
        event: PhxEvent.error,
        payload: { reason: ReplyReason.unmatchedTopic },
      });
      continue;
    }
    const server = new ChannelServer({
      owner: session,
      definition: match.channel,
      topic: joined.topic,
      subtopic: match.subtopic,
      joinRef: joined.joinRef,
      params: joined.params,
      deltas: joined.deltas,
    });
    server.restore(joined.presences);
    session.restoreChannel(server);
  }
  return session;
}
