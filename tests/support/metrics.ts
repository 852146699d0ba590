/**
 * Reading a server's `/metrics` in tests.
 *
 * @example
 * ```ts
 * await metricValue(server.url, "switchboard_uncaught_errors_total"); // 0
 * ```
 * @module
 */

/**
 * The sum of every series of counter or gauge `name` on `/metrics` (0 when absent); with
 * `label`, only the series whose labels contain it (e.g. `reason="presence_meta"`).
 */
export async function metricValue(
  url: string,
  name: string,
  label?: string,
  headers: HeadersInit = {},
): Promise<number> {
  const res = await fetch(`${url}/metrics`, { headers });
  const text = await res.text();
  if (!res.ok) throw new Error(`/metrics answered ${res.status}: ${text.slice(0, 200)}`);
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name + " ") && !line.startsWith(name + "{")) continue;
    if (label !== undefined && !line.includes(label)) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/**
 * `switchboard_uncaught_errors_total` (the process' last line of defence); fails when the
 * server does not report it at all, so a test asserting 0 cannot pass by its absence.
 */
export async function uncaughtErrors(url: string, headers: HeadersInit = {}): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { headers })).text();
  const line = text.split("\n").find((l) => l.startsWith("switchboard_uncaught_errors_total"));
  if (line === undefined) throw new Error("/metrics has no switchboard_uncaught_errors_total");
  return metricValue(url, "switchboard_uncaught_errors_total", undefined, headers);
}
