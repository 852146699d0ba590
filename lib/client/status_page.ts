/**
 * The `/status/:page` script: keeps the server-rendered status live over SSE (or polling),
 * keeps "updated … ago" true, and shows the connection state as it is. The stream is the
 * browser's: every status tab of the page shares one (see `client.ts`).
 * Bundled into `/assets/status-page.js` by `scripts/vendor_assets.ts`.
 * @module
 */
import type { channels } from "../../channels/mod.ts";
import { connect } from "./client.ts";
import { readOccupancy } from "./crowd.ts";
import { browser, byId, pageToken } from "./dom.ts";
import type { ConnectionState } from "./feed.ts";
import { describeStatus, formatAgo, formatClock } from "./format.ts";

type Status = Record<string, unknown> | null;

const $ = byId;
const token = pageToken();
const root = $("status-page");
const card = $("current");
const stateIcon = $("state-icon");
const stateLabel = $("state-label");
const message = $("message");
const updated = $("updated");
const updatedAt = $("updated-at");
const connection = $("connection");
const connectionText = $("connection-text");
const refreshForm = $("refresh-form");
const watching = $("watching");

/** Server clock minus ours, so ages are right even when this device's clock is off. */
const skew = (Number(root.dataset.serverNow) || Date.now()) - Date.now();
const serverNow = () => Date.now() + skew;

let status: Status = JSON.parse(root.dataset.status || "null");
let at: number | null = root.dataset.updatedAt ? Date.parse(root.dataset.updatedAt) : null;
let joinedAt = 0;

function renderStatus(): void {
  const view = describeStatus(status);
  card.className = `card state-${view.kind}`;
  stateIcon.textContent = view.icon;
  stateLabel.textContent = view.label;
  message.textContent = view.message;
  message.hidden = view.message === "";
  renderAge();
}

function renderAge(): void {
  const line = updated.parentElement!;
  line.hidden = at === null;
  if (at === null) return;
  updated.dateTime = new Date(at).toISOString();
  updated.textContent = formatAgo(serverNow() - at);
  updatedAt.textContent = `(at ${formatClock(at)})`;
}

function setStatus(next: Status, when: number | null): void {
  const same = JSON.stringify(next) === JSON.stringify(status);
  if (same && when === at) return;
  status = next;
  at = when;
  if (same) renderAge(); // do not re-announce an unchanged status
  else renderStatus();
}

function renderConnection(s: ConnectionState): void {
  // worker, leader or follower: how this tab shares the browser's stream.
  connection.dataset.sharing = client.sharing;
  connection.dataset.state = s.kind === "live" ? `live-${s.via}` : s.kind;
  connectionText.textContent = s.kind === "connecting"
    ? "Connecting to live updates…"
    : s.kind === "live" && s.via === "sse"
    ? "Live: changes appear here as they are published."
    : s.kind === "live"
    ? "Live stream unavailable: checking for changes every few seconds."
    : s.kind === "reconnecting"
    ? `Reconnecting since ${formatClock(s.since)}… The status shown may be out of date.`
    : `Offline since ${
      formatClock(s.since)
    }: this device has no network. The status shown may be out of date.`;
}

const topic = root.dataset.topic as `status:${string}`;
const client = connect<typeof channels>({
  params: token ? { token } : {},
  workerUrl: root.dataset.worker,
});
const feed = client.feed(topic, { events: ["joined", "status", "occupancy"] });
// Events replayed to a tab that opened after the stream: this page's HTML is newer.
feed.on("joined", (e) => {
  if (e.replayed) return;
  const reply = e.payload as { status?: Status; updated_at?: string | null };
  joinedAt = Date.now();
  setStatus(reply.status ?? null, reply.updated_at ? Date.parse(reply.updated_at) : null);
});
/** Updates that arrived as Fossil deltas, on the page for whoever wants to see (and tests). */
let deltas = 0;
feed.on("status", (e) => {
  if (e.replayed) return;
  if (e.delta) root.dataset.deltas = String(++deltas);
  // A message replayed on resume right after the join reply: the reply's time is right.
  if (Date.now() - joinedAt < 2_000 && JSON.stringify(e.payload) === JSON.stringify(status)) return;
  setStatus(e.payload, serverNow());
});
// Everyone watching this page on every node, whatever their transport (at most once a second).
feed.on("occupancy", (e) => {
  const count = readOccupancy(e.payload as Record<string, unknown>);
  if (!count) return;
  watching.hidden = count.subscribers === 0;
  watching.textContent = `${count.subscribers.toLocaleString("en")} watching`;
});
feed.onState(renderConnection);
feed.onPoll((body) => {
  const last = body as { event: string | null; payload: Status; at: string | null };
  if (last.event === "status") setStatus(last.payload, last.at ? Date.parse(last.at) : null);
});

refreshForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const button = refreshForm.querySelector("button")!;
  button.disabled = true;
  try {
    await feed.refresh();
  } finally {
    button.disabled = false;
  }
});

connection.hidden = false;
renderStatus();
renderConnection(feed.state);
setInterval(renderAge, 5_000);
browser.document.addEventListener("visibilitychange", renderAge);
