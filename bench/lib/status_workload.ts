/**
 * The status-page workload of the delta bench and tests: a 20-component status of about 10 KB,
 * one component changing per update, the way an incident unfolds on a real status page.
 *
 * @example
 * ```ts
 * const statuses = statusUpdates(100); // statuses[0] is the first, each differs in one component
 * ```
 * @module
 */

/** Components of the page. */
export const COMPONENTS = 20;

const _STATES = ["operational", "degraded_performance", "partial_outage", "major_outage"];
const _REGIONS = ["eu-west", "eu-central", "us-east", "us-west", "ap-south", "ap-northeast"];

/** One component as a status page publishes it (name, state, description, uptime, regions). */
function _component(i: number, revision: number): Record<string, unknown> {
  return {
    id: `component-${i}`,
    name: `Service ${i}: ${["API", "Dashboard", "Webhooks", "Search", "Billing"][i % 5]} (${
      _REGIONS[i % _REGIONS.length]
    })`,
    state: _STATES[revision % _STATES.length],
    description: `Handles ${
      ["requests", "sessions", "deliveries", "queries", "invoices"][i % 5]
    } for every customer in ${_REGIONS[i % _REGIONS.length]}; monitored every 30 seconds.`,
    link: `https://status.example.com/components/component-${i}`,
    uptime_90d: Number((99.9 - ((i * 7 + revision) % 13) / 100).toFixed(3)),
    updated_at: new Date(Date.UTC(2026, 0, 1, 0, 0, revision)).toISOString(),
    regions: _REGIONS.map((region, r) => ({ region, healthy: (i + r + revision) % 11 !== 0 })),
  };
}

/**
 * `count` successive statuses: the first with every component at revision 0, then each one
 * changing one component (round robin) to its next revision.
 */
export function statusUpdates(count: number): Record<string, unknown>[] {
  const revisions = new Array<number>(COMPONENTS).fill(0);
  const out: Record<string, unknown>[] = [];
  for (let n = 0; n < count; n++) {
    if (n > 0) revisions[(n - 1) % COMPONENTS]++;
    out.push({
      page: "Acme Cloud",
      state: revisions.some((r) => r % _STATES.length !== 0) ? "degraded" : "operational",
      message: n === 0
        ? "All systems operational"
        : `Update ${n}: investigating component ${(n - 1) % COMPONENTS}`,
      components: revisions.map((r, i) => _component(i, r)),
    });
  }
  return out;
}
