/**
 * Connect params from a query string, the way Phoenix reads them (first value wins, except
 * `token`: the long-poll client appends its own, so the last one wins).
 * @module
 */

/** Query params as a flat record of strings. */
export function connectParams(search: URLSearchParams): Record<string, string> {
  // A Map, then own properties: a param named `__proto__` or `constructor` is just a param.
  const params = new Map<string, string>();
  for (const [key, value] of search) {
    if (!params.has(key) || key === "token") params.set(key, value);
  }
  return Object.fromEntries(params);
}
