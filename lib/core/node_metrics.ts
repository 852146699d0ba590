/**
 * The gauges and counters a node registers in its {@link Metrics} at start (`/metrics`): open
 * sessions by transport, admission budgets, broadcasts and deliveries, topics, kept history and
 * the broker's state. Read when `/metrics` is served, so nothing is counted twice.
 *
 * @example
 * ```ts
 * registerNodeMetrics(switchboard, () => sessions);
 * const text = switchboard.metrics.render();
 * ```
 * @module
 */
import type { BrokerState } from "./broker.ts";
import type { Hub } from "./hub.ts";
import type { Metrics } from "../metrics.ts";
import type { TransportName } from "./connection.ts";

/** What the node's metrics read of it. */
export interface MeteredNode {
  readonly metrics: Metrics;
  readonly hub: Hub;
  readonly longPolls: { readonly size: number };
  readonly sseResponses: { readonly size: number };
  brokerState(): BrokerState;
}

/** Registers the node's gauges and counters; `sessions` lists its open sessions. */
export function registerNodeMetrics(
  node: MeteredNode,
  sessions: () => Iterable<{ readonly transport: TransportName }>,
): void {
  node.metrics.gauge(
    "switchboard_admission",
    "long-poll sessions (own budget) and SSE responses held until their socket is done",
    () => [[{ kind: "longpoll_sessions" }, node.longPolls.size], [
      { kind: "sse_responses" },
      node.sseResponses.size,
    ]],
  );
  node.metrics.gauge("switchboard_connections", "open sessions by transport", () => {
    const counts: Record<string, number> = { websocket: 0, longpoll: 0, sse: 0 };
    for (const s of sessions()) counts[s.transport]++;
    return Object.entries(counts).map(([transport, n]) => [{ transport }, n]);
  });
  node.metrics.counter(
    "switchboard_broadcasts_total",
    "broadcasts delivered on this node (published here or received from other nodes)",
    () => node.hub.counts.broadcasts,
  );
  node.metrics.counter(
    "switchboard_deliveries_total",
    "broadcasts handed to local subscribers (one per subscriber)",
    () => node.hub.counts.deliveries,
  );
  node.metrics.gauge("switchboard_topics", "topics with local subscribers", () => [[
    {},
    node.hub.topicCount,
  ]]);
  node.metrics.gauge(
    "switchboard_history_bytes",
    "bytes kept for replay (budget HISTORY_MAX_BYTES) and as topics' last messages",
    () => {
      const kept = node.hub.keptBytes;
      return [[{ kind: "history" }, kept.history], [{ kind: "last" }, kept.last]];
    },
  );
  node.metrics.gauge("switchboard_broker_connected", "1 when the broker is connected", () => {
    const s = node.brokerState();
    return [[{ kind: s.kind }, s.connected ? 1 : 0]];
  });
  node.metrics.gauge("switchboard_broker_lag_ms", "last seen cross-node delivery lag", () => {
    const s = node.brokerState();
    return [[{ kind: s.kind }, s.lagMs]];
  });
}
