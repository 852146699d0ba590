/**
 * Small formatting helpers shared by the server-rendered pages and the browser client.
 * No DOM and no Deno APIs: this module runs in both.
 *
 * @example
 * ```ts
 * formatAgo(125_000); // "2 min ago"
 * describeStatus({ state: "degraded", message: "Slow" }).label; // "Degraded performance"
 * ```
 * @module
 */

/** "just now", "42 s ago", "5 min ago", "3 h ago", "2 days ago" for an age in milliseconds. */
export function formatAgo(ageMs: number): string {
  const s = Math.max(0, Math.floor(ageMs / 1000));
  if (s < 10) return "just now";
  if (s < 60) return `${s} s ago`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min ago`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.floor(h / 24)} days ago`;
}

/** `HH:MM:SS` (24 h) of a date, in local time or in UTC. */
export function formatClock(date: Date | number, utc = false): string {
  const d = new Date(date);
  const parts = utc
    ? [d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    : [d.getHours(), d.getMinutes(), d.getSeconds()];
  return parts.map((n) => String(n).padStart(2, "0")).join(":");
}

/** The states the status page understands; any other value is shown as is. */
export const STATUS_STATES = {
  operational: { label: "All systems operational", icon: "✓" },
  degraded: { label: "Degraded performance", icon: "!" },
  outage: { label: "Outage", icon: "✕" },
  maintenance: { label: "Under maintenance", icon: "⚙" },
} as const;

/** How a status payload is shown. */
export interface StatusView {
  /** A CSS-safe kind: one of {@link STATUS_STATES}' keys, `unknown` or `none`. */
  kind: keyof typeof STATUS_STATES | "unknown" | "none";
  label: string;
  icon: string;
  message: string;
}

/** Describes a status payload (`{state, message, …}`) or null (nothing published yet). */
export function describeStatus(status: Record<string, unknown> | null | undefined): StatusView {
  if (!status) {
    return { kind: "none", label: "No status published yet", icon: "?", message: "" };
  }
  const message = typeof status.message === "string" ? status.message : "";
  const state = typeof status.state === "string" ? status.state : "";
  if (Object.hasOwn(STATUS_STATES, state)) {
    const known = state as keyof typeof STATUS_STATES;
    return { kind: known, ...STATUS_STATES[known], message };
  }
  return { kind: "unknown", label: state || "Status", icon: "•", message };
}

/** Up to two initials of a name, e.g. "Ann Lee" → "AL", "bob" → "B". */
export function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return "?";
  const letters = words.length === 1 ? [words[0]] : [words[0], words[words.length - 1]];
  return letters.map((w) => String.fromCodePoint(w.codePointAt(0)!).toUpperCase()).join("");
}

/** A stable colour slot 0–7 for a key (the stylesheet defines `.c0` … `.c7`). */
export function colorSlot(key: string): number {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) >>> 0;
  return h % 8;
}
