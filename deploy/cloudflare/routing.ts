/**
 * Which node Durable Object serves a request: the Worker's only decision.
 *
 * One node by default. With the Redis broker, a `node` query parameter (a connect param for the
 * Phoenix client, so every long-poll request carries it too) pins a client to a named node, and
 * `SWITCHBOARD_NODES` > 1 spreads clients over `node-1` … `node-N`: SSE streams by their first
 * topic (viewers of one status page share a node, so one broadcast is one delivery loop),
 * WebSockets by a hash of their query and subprotocols, long-poll sessions by a hash of what all
 * their requests share (the query without the session `token`, the `X-Phoenix-AuthToken`), and
 * everything else (API, pages, health) to `node-1`, since Redis makes any node answer for all.
 *
 * @example
 * ```ts
 * const choice = chooseNode(request, { nodes: 1, clustered: false });
 * if ("node" in choice) env.SWITCHBOARD_NODE.idFromName(choice.node);
 * ```
 * @module
 */

/** The node every request goes to when nothing else decides. */
export const DEFAULT_NODE = "node-1";

/** A node name: what `NODE_ID` accepts. */
const _NODE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** What {@link chooseNode} needs to know about the deployment. */
export interface NodeRouting {
  /** How many node objects share the load (`SWITCHBOARD_NODES`, default 1). */
  nodes: number;
  /** Whether the Redis broker joins the nodes into one; without it only one node makes sense. */
  clustered: boolean;
}

/** The chosen node, or why the request names one that cannot serve it. */
export type NodeChoice = { node: string } | { error: string; status: 400 };

/** Picks the node object for a request (see the module documentation). */
export function chooseNode(request: Request, routing: NodeRouting): NodeChoice {
  const url = new URL(request.url);
  const pinned = url.searchParams.get("node");
  if (pinned !== null) {
    if (!_NODE_NAME.test(pinned)) {
      return {
        status: 400,
        error: `node "${pinned}" is not a node name: use letters, digits, _ . -`,
      };
    }
    if (!routing.clustered && pinned !== DEFAULT_NODE) {
      return {
        status: 400,
        error: `node=${pinned} needs the Redis broker (set UPSTASH_REDIS_REST_URL and ` +
          `UPSTASH_REDIS_REST_TOKEN); without it there is one node, ${DEFAULT_NODE}`,
      };
    }
    return { node: pinned };
  }
  if (routing.nodes <= 1 || !routing.clustered) return { node: DEFAULT_NODE };
  const path = url.pathname;
  let key: string | undefined;
  if (path === "/events") {
    key = url.searchParams.get("topic") ?? undefined;
  } else if (path === "/socket/websocket") {
    key = url.search + (request.headers.get("sec-websocket-protocol") ?? "");
  } else if (path === "/socket/longpoll") {
    // Every request of a session has the same query but for the session `token` it appends.
    const params = new URLSearchParams(url.search);
    params.delete("token");
    params.sort();
    key = params.toString() + (request.headers.get("x-phoenix-authtoken") ?? "");
  }
  if (key === undefined) return { node: DEFAULT_NODE };
  return { node: `node-${1 + fnv1a(key) % routing.nodes}` };
}

/** A small, stable string hash (FNV-1a, 32 bits). */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
