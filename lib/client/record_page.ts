/**
 * The `/records/:id` script: joins `record:<id>` with the official phoenix client (served by
 * the app, WebSocket with long-poll fallback), shows who is here and who is editing, one entry
 * per user however many tabs, and shares the notes through `patch` pushes.
 * Bundled into `/assets/record-page.js` by `scripts/vendor_assets.ts`.
 * @module
 */
import { browser, byId as $, type El, pageToken } from "./dom.ts";
import type { ConnectionState } from "./feed.ts";
import { colorSlot, formatClock, initials } from "./format.ts";
import {
  browserUserId,
  connectPhoenix,
  type PhoenixModule,
  type PresenceLike,
  type PresenceUser,
  presenceUsers,
  type SocketLike,
} from "./phoenix_helpers.ts";

interface Push {
  receive(status: string, callback: (response: Record<string, unknown>) => void): Push;
}
interface Channel {
  join(): Push;
  leave(): Push;
  push(event: string, payload: Record<string, unknown>): Push;
  on(event: string, callback: (payload: Record<string, unknown>) => void): number;
}
interface Socket extends SocketLike {
  channel(topic: string, params: Record<string, unknown>): Channel;
}
interface Presence extends PresenceLike {
  onSync(callback: () => void): void;
}
type Phoenix = PhoenixModule<Socket> & { Presence: new (channel: Channel) => Presence };

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

const topic = root.dataset.topic!;
const phoenix = await import(root.dataset.phoenix!) as Phoenix;
const userId = browserUserId(localStorage);
const NAME_KEY = "switchboard:name";

let name = "";
let channel: Channel | undefined;
let previous = new Map<string, PresenceUser>();
let synced = false;
let pendingText: string | undefined;

function renderConnection(s: ConnectionState): void {
  connection.dataset.state = s.kind === "live" ? "live" : s.kind;
  connectionText.textContent = s.kind === "connecting"
    ? "Connecting…"
    : s.kind === "live"
    ? `Connected (${s.via === "longpoll" ? "long-poll fallback" : "WebSocket"})`
    : s.kind === "reconnecting"
    ? `Reconnecting since ${formatClock(s.since)}… The list may be out of date.`
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
  if (user.connections > 1) {
    const tabs = browser.document.createElement("span");
    tabs.className = "tabs";
    tabs.textContent = `${user.connections} tabs`;
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

function render(users: PresenceUser[]): void {
  people.replaceChildren(...users.map(personItem));
  const editors = users.filter((u) => u.editing).map((u) => (u.self ? "you" : u.name));
  const here = users.length === 1 && users[0].self
    ? "Only you are here."
    : `${users.length} ${users.length === 1 ? "person" : "people"} here.`;
  summary.textContent = editors.length === 0
    ? `${here} Nobody is editing.`
    : `${here} ${listNames(editors)} ${
      editors.length === 1 && editors[0] !== "you" ? "is" : "are"
    } editing.`;
  const current = new Map(users.map((u) => [u.key, u]));
  if (synced) {
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
      channel?.push("patch", { text: notes.value, by: name });
    }
  }
  previous = current;
  synced = true;
}

function join(newName: string): void {
  channel?.leave();
  name = newName;
  synced = false;
  previous = new Map();
  const ch = channel = phoenixConnection.socket.channel(topic, { name });
  const presence = new phoenix.Presence(ch);
  presence.onSync(() => {
    if (ch === channel) render(presenceUsers(presence, userId));
  });
  ch.on("patch", (patch) => {
    if (ch !== channel || typeof patch.text !== "string") return;
    if (browser.document.activeElement === notes) pendingText = patch.text;
    else notes.value = patch.text;
    const by = typeof patch.by === "string" ? patch.by : "someone";
    notesInfo.textContent = `Last change by ${by} at ${formatClock(Date.now())}.`;
  });
  ch.join()
    .receive("ok", () => {
      if (ch !== channel) return;
      notes.disabled = false;
      me.textContent = `You are ${name}.`;
      form.querySelector("button")!.textContent = "Change name";
      if (browser.document.activeElement === notes) ch.push("state", { state: "editing" });
    })
    .receive("error", (e) => {
      if (ch === channel) me.textContent = `Could not join: ${String(e.reason ?? "refused")}.`;
    });
}

const token = pageToken();
const phoenixConnection = connectPhoenix(phoenix, {
  // With SOCKET_SECRET set, the page is opened with ?token=<deno task token …>.
  params: token ? { user_id: userId, token } : { user_id: userId },
  longPollFallbackMs: 2500,
  onState: renderConnection,
});
renderConnection(phoenixConnection.state);
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

let typing: ReturnType<typeof setTimeout> | undefined;
notes.addEventListener("focus", () => channel?.push("state", { state: "editing" }));
notes.addEventListener("blur", () => {
  channel?.push("state", { state: "viewing" });
  if (pendingText !== undefined) notes.value = pendingText;
  pendingText = undefined;
});
notes.addEventListener("input", () => {
  pendingText = undefined;
  clearTimeout(typing);
  typing = setTimeout(() => channel?.push("patch", { text: notes.value, by: name }), 150);
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
