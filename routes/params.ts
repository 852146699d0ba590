/**
 * Connect params from a query string, the way Phoenix reads them (first value wins, except
 * `token`: the long-poll client appends its own, so the last one wins).
 * @module
 */

/** Query params as a flat record of strings. */
export function connectParams(search: URLSearchParams): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [key, value] of search) {
    if (!(key in params) || key === "token") params[key] = value;
  }
  return params;
}
