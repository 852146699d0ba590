/**
 * The `/records/:id` script: joins `record:<id>` through the Switchboard client (one
 * connection per browser, shared by its tabs: WebSocket, long-poll fallback), shows who is
 * here and who is editing, one entry per user, and shares the notes through `patch` pushes.
 * A crowded record (docs/crowds.md) shows the count and its visible people; "Show everyone"
 * reads the whole list page by page.
 * Bundled into `/assets/record-page.js` by `scripts/vendor_assets.ts`.
 * @module
 */
import type { channels } from "../../channels/mod.ts";
import { type Channel, connect } from "./client.ts";
import { browser, byId as $, type El, pageToken } from "./dom.ts";
import type { ConnectionState } from "./feed.ts";
import { colorSlot, formatClock, initials } from "./format.ts";
import { browserUserId, type PresenceUser, presenceUsers } from "./phoenix_helpers.ts";
import type { ChannelFor } from "./typed.ts";
import type { PresenceEntry } from "./wire.ts";
import type { PresenceCounts } from "./crowd.ts";

type RecordTopic = `record:${string}`;
type RecordChannel = Channel<ChannelFor<typeof channels, RecordTopic>>;

const root = $("record-page");
const form = $("join-form");
const nameInput = $("name");
const nameError = $("name-error");
const me = $("me");
const connection = $("connection");
const connectionText = $("connection-text");
const summary = $("summary");
const people = $("people");
const notes = $("notes");
const notesInfo = $("notes-info");
const activity = $("activity");
const showAll = $("show-all");
const everyone = $("everyone");
const more = $("more");

const topic = root.dataset.topic as RecordTopic;
const userId = browserUserId(localStorage);
const NAME_KEY = "switchboard:name";

let name = "";
let channel: RecordChannel | undefined;
/** How many of this browser's tabs are on the record (they share one presence). */
let myTabs = 1;
let previous = new Map<string, PresenceUser>();
let synced = false;
let pendingText: string | undefined;
let count: PresenceCounts = { users: 0, subscribers: 0, crowd: false };
/** The cursor of the next page of "Show everyone" (null: all shown). */
let nextPage: string | null = null;
const PAGE_SIZE = 100;

function renderConnection(s: ConnectionState): void {
  // worker, leader or follower: how this tab shares the browser's connection.
  connection.dataset.sharing = client.sharing;
  connection.dataset.state = s.kind === "live" ? "live" : s.kind;
  connectionText.textContent = s.kind === "connecting"
    ? "Connecting…"
    : s.kind === "live"
    ? `Connected (${s.via === "longpoll" ? "long-poll fallback" : "WebSocket"})`
    : s.kind === "reconnecting"
    ? `Reconnecting since ${formatClock(s.since)}… The list may be out of date.`
    : s.kind === "refused"
    ? `Refused by the server (${s.reason}). Reload the page to connect again.`
    : `Offline since ${formatClock(s.since)}. The list may be out of date.`;
}

function log(text: string): void {
  const item = browser.document.createElement("li");
  const time = browser.document.createElement("time");
  time.textContent = formatClock(Date.now());
  item.append(time, ` ${text}`);
  activity.prepend(item);
  while (activity.children.length > 8) activity.lastElementChild!.remove();
}

function personItem(user: PresenceUser): El {
  const item = browser.document.createElement("li");
  item.className = `person${user.editing ? " editing" : ""}`;
  item.dataset.key = user.key;
  const avatar = browser.document.createElement("span");
  avatar.className = `avatar c${colorSlot(user.key)}`;
  avatar.setAttribute("aria-hidden", "true");
  avatar.textContent = initials(user.name);
  const who = browser.document.createElement("span");
  who.className = "who";
  const label = browser.document.createElement("span");
  label.className = "name";
  label.textContent = user.self ? `${user.name} (you)` : user.name;
  const doing = browser.document.createElement("span");
  doing.className = `doing ${user.editing ? "is-editing" : "is-viewing"}`;
  doing.textContent = user.editing ? "editing" : "viewing";
  who.append(label, doing);
  // This browser's tabs share one connection, so they are counted here; other people's
  // connections are their browsers or devices.
  const count = user.self ? myTabs : user.connections;
  if (count > 1) {
    const tabs = browser.document.createElement("span");
    tabs.className = "tabs";
    tabs.textContent = user.self ? `${count} tabs` : `${count} devices`;
    who.append(tabs);
  }
  item.append(avatar, who);
  return item;
}

function listNames(names: string[]): string {
  return names.length <= 1
    ? names.join("")
    : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

function render(users: PresenceUser[], wasCrowd: boolean): void {
  people.replaceChildren(...users.map(personItem));
  const editors = users.filter((u) => u.editing).map((u) => (u.self ? "you" : u.name));
  const total = count.users;
  const here = total === 1 && users[0]?.self
    ? "Only you are here."
    : `${total.toLocaleString("en")} ${total === 1 ? "person" : "people"} here.`;
  // A crowd shows a few people; the whole list is a click (and a few pages) away.
  showAll.hidden = !count.crowd;
  showAll.textContent = `Show everyone (${total.toLocaleString("en")})`;
  if (!count.crowd) closeEveryone();
  summary.textContent = editors.length === 0
    ? `${here} Nobody is editing.`
    : `${here} ${listNames(editors)} ${
      editors.length === 1 && editors[0] !== "you" ? "is" : "are"
    } editing.`;
  const current = new Map(users.map((u) => [u.key, u]));
  // In a crowd the list is a sample: who enters or leaves it did not join or leave.
  if (synced && !count.crowd && !wasCrowd) {
    for (const u of users) {
      const before = previous.get(u.key);
      if (u.self) continue;
      if (!before) log(`${u.name} joined`);
      else if (before.editing !== u.editing) {
        log(`${u.name} ${u.editing ? "started" : "stopped"} editing`);
      }
    }
    for (const [key, u] of previous) if (!current.has(key)) log(`${u.name} left`);
    // Bring a newcomer up to date with the notes: the earliest other user answers.
    const newcomers = users.filter((u) => !previous.has(u.key));
    const elders = users.filter((u) => previous.has(u.key));
    if (newcomers.length && notes.value && elders[0]?.self) {
      sendPatch();
    }
  }
  previous = current;
  synced = true;
}

const quiet = () => {}; // a push that fails changes nothing the page shows

function sendPatch(text = notes.value): void {
  channel?.push("patch", { text, by: name }, { toOtherTabs: true }).catch(quiet);
}

function pushState(state: "viewing" | "editing"): void {
  channel?.push("state", { state }).catch(quiet);
}

function join(newName: string): void {
  channel?.leave();
  name = newName;
  synced = false;
  previous = new Map();
  const ch = channel = client.channel(topic, { name });
  ch.presence.onSync((entries: PresenceEntry[], info) => {
    if (ch !== channel) return;
    myTabs = info.tabs;
    const wasCrowd = count.crowd;
    count = info.count;
    render(presenceUsers({ list: (by) => entries.map((e) => by(e.key, e)) }, userId), wasCrowd);
  });
  ch.on("patch", (patch) => {
    if (ch !== channel || typeof patch.text !== "string") return;
    if (browser.document.activeElement === notes) pendingText = patch.text;
    else notes.value = patch.text;
    const by = typeof patch.by === "string" ? patch.by : "someone";
    notesInfo.textContent = `Last change by ${by} at ${formatClock(Date.now())}.`;
  });
  ch.join().then(() => {
    if (ch !== channel) return;
    notes.disabled = false;
    me.textContent = `You are ${name}.`;
    form.querySelector("button")!.textContent = "Change name";
    if (browser.document.activeElement === notes) pushState("editing");
  }, (e) => {
    if (ch === channel) {
      me.textContent = `Could not join: ${String(e.response?.reason ?? e.message ?? "refused")}.`;
    }
  });
}

const token = pageToken();
const client = connect<typeof channels>({
  // With SOCKET_SECRET set, the page is opened with ?token=<deno task token …>.
  params: token ? { user_id: userId, token } : { user_id: userId },
  workerUrl: root.dataset.worker,
});
client.onState(renderConnection);
renderConnection(client.state);
connection.hidden = false;

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const value = nameInput.value.trim();
  nameInput.setAttribute("aria-invalid", String(value === ""));
  nameError.hidden = value !== "";
  if (!value) return nameInput.focus();
  try {
    localStorage.setItem(NAME_KEY, value);
  } catch { /* storage disabled */ }
  browser.history.replaceState(null, "", `?name=${encodeURIComponent(value)}`);
  join(value);
});

function closeEveryone(): void {
  everyone.hidden = true;
  more.hidden = true;
  everyone.replaceChildren();
  nextPage = null;
}

/** Appends the next page of everyone here (the first when `first`). */
async function loadPage(first: boolean): Promise<void> {
  if (!channel) return;
  if (first) closeEveryone();
  more.hidden = true;
  try {
    const page = await channel.presence.page(first ? null : nextPage, PAGE_SIZE);
    const users = presenceUsers({ list: (by) => page.members.map((m) => by(m.key, m)) }, userId);
    // The page's key order, not the arrival order presenceUsers sorts by.
    const order = new Map(page.members.map((m, i) => [m.key, i]));
    users.sort((a, b) => order.get(a.key)! - order.get(b.key)!);
    everyone.append(...users.map(personItem));
    everyone.hidden = false;
    nextPage = page.next;
    more.hidden = nextPage === null;
  } catch (e) {
    log(`Could not load the list: ${String((e as Error).message ?? e)}`);
  }
}

showAll.addEventListener("click", () => void loadPage(true));
more.addEventListener("click", () => void loadPage(false));

let typing: ReturnType<typeof setTimeout> | undefined;
notes.addEventListener("focus", () => pushState("editing"));
notes.addEventListener("blur", () => {
  pushState("viewing");
  if (pendingText !== undefined) notes.value = pendingText;
  pendingText = undefined;
});
notes.addEventListener("input", () => {
  pendingText = undefined;
  clearTimeout(typing);
  // What was typed, not what the box holds when the timer fires: a patch from someone else
  // may land in between (after a blur), and must not go out again as ours.
  const typed = notes.value;
  typing = setTimeout(() => sendPatch(typed), 150);
});

let initial = (root.dataset.name ?? "").trim();
try {
  initial ||= localStorage.getItem(NAME_KEY) ?? "";
} catch { /* storage disabled */ }
if (initial) {
  nameInput.value = initial;
  join(initial);
} else {
  me.textContent = "Enter your name to join.";
}
