/**
 * The one rule for topic names, applied by every entry point (join, SSE, HTTP API): a topic is
 * well-formed Unicode of at most {@link MAX_TOPIC_BYTES} UTF-8 bytes. Every topic a client
 * names may end up as a map key, a history entry, a Redis key and a cursor, so its size is
 * bounded once, here.
 *
 * @example
 * ```ts
 * topicProblem("status:acme"); // undefined
 * topicProblem("x".repeat(300)); // "topic is 300 bytes long: at most 255 bytes (UTF-8)"
 * ```
 * @module
 */

/** Longest topic name accepted, in UTF-8 bytes (the same bound as a binary frame's fields). */
export const MAX_TOPIC_BYTES = 255;

/**
 * Topics of the cluster's own messages (occupancy reports, server API commands): no client may
 * name one, and the hub neither keeps nor counts them as the node's topics and broadcasts.
 */
export const INTERNAL_TOPIC_PREFIX = "$switchboard:";

const _encoder = new TextEncoder();

/** What is wrong with a topic name, or undefined when it is acceptable. */
export function topicProblem(topic: string): string | undefined {
  if (topic === "") return "topic is empty: name one, e.g. status:acme";
  // A UTF-16 unit is 1 to 3 UTF-8 bytes: encode only when the length alone does not decide
  // (and never a huge name just to print its size).
  if (topic.length > 4 * MAX_TOPIC_BYTES) return _tooLong(`over ${4 * MAX_TOPIC_BYTES}`);
  const bytes = topic.length * 3 <= MAX_TOPIC_BYTES ? topic.length : _encoder.encode(topic).length;
  if (bytes > MAX_TOPIC_BYTES) return _tooLong(String(bytes));
  if (!topic.isWellFormed()) return "topic must be well-formed Unicode";
  if (topic.startsWith(INTERNAL_TOPIC_PREFIX)) {
    return `topics starting with ${INTERNAL_TOPIC_PREFIX} are the cluster's own: name another`;
  }
  return undefined;
}

function _tooLong(size: string): string {
  return `topic is ${size} bytes long: at most ${MAX_TOPIC_BYTES} bytes (UTF-8)`;
}
