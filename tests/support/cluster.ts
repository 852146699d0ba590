/**
 * Waiting for server processes joined through the Redis broker to form a cluster.
 *
 * A node listens before its bus subscription is up, and learns of the other nodes from their
 * heartbeats: a message published in between never reaches it. Tests that assert a cross-node
 * effect first wait here, on what each node reports on `/healthz`.
 *
 * @example
 * ```ts
 * const [a, b] = await Promise.all([startServer(env("a")), startServer(env("b"))]);
 * await waitForCluster([a, b]);
 * ```
 * @module
 */
import type { ServerProcess } from "./server.ts";
import { waitFor } from "./wait.ts";

/** The broker part of `/healthz`. */
export interface BrokerHealth {
  kind: string;
  connected: boolean;
  nodes: number;
}

/** Reads the broker state a node reports on `/healthz`. */
export async function brokerHealth(node: ServerProcess): Promise<BrokerHealth> {
  const res = await fetch(`${node.url}/healthz`);
  return (await res.json()).broker as BrokerHealth;
}

/**
 * Resolves once every node's broker is subscribed to the bus (`connected`) and counts all
 * `nodes.length` nodes; fails after `timeoutMs` naming the states it saw last.
 */
export async function waitForCluster(nodes: ServerProcess[], timeoutMs = 15_000): Promise<void> {
  let states: BrokerHealth[] = [];
  try {
    await waitFor(
      async () => {
        states = await Promise.all(nodes.map(brokerHealth));
        return states.every((s) => s.connected && s.nodes === nodes.length);
      },
      `${nodes.length} nodes subscribed and seeing each other`,
      timeoutMs,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; brokers: ${JSON.stringify(states)}`);
  }
}
