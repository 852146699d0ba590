/**
 * `GET /records/:id`: who is on `record:<id>` and who is editing. The first response lists
 * who was there (from the presence tracker); `/assets/record-page.js` then joins with the
 * official phoenix client and keeps the list live. `?name=Ann` joins directly as Ann.
 * @module
 */
import type { Context } from "hono";
import { colorSlot, initials } from "../lib/client/format.ts";
import { type PresenceUser, presenceUsers } from "../lib/client/phoenix_helpers.ts";
import type { Config } from "../lib/config.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import { assetUrl } from "./pages_assets.ts";
import { refusePageRead } from "./pages_access.ts";
import { escapeHtml, htmlResponse, notFoundPage, renderPage } from "./pages_layout.ts";
import { PAGE_NAME } from "./pages_status.ts";

function _person(user: PresenceUser): string {
  // One connection per browser (its tabs share it): several are several browsers or devices.
  const tabs = user.connections > 1 ? `<span class="tabs">${user.connections} devices</span>` : "";
  return `<li class="person${user.editing ? " editing" : ""}" data-key="${escapeHtml(user.key)}">` +
    `<span class="avatar c${colorSlot(user.key)}" aria-hidden="true">${
      escapeHtml(initials(user.name))
    }</span><span class="who"><span class="name">${escapeHtml(user.name)}</span>` +
    `<span class="doing is-${user.editing ? "editing" : "viewing"}">${
      user.editing ? "editing" : "viewing"
    }</span>${tabs}</span></li>`;
}

/** People listed in the first HTML: a crowd's first few, not thousands. */
const _FIRST_LISTED = 20;

/** The handler of `/records/:id`. */
export function recordPage(switchboard: Switchboard<Config>) {
  return async (c: Context): Promise<Response> => {
    const id = c.req.param("id") ?? "";
    if (!PAGE_NAME.test(id)) {
      return notFoundPage(c, "Record ids use letters, digits, and _ . ~ - (up to 64).");
    }
    const topic = `record:${id}`;
    const refused = await refusePageRead(switchboard, c, topic);
    if (refused) return refused;
    const name = (c.req.query("name") ?? "").trim().slice(0, 80);
    const state = switchboard.presenceOf(topic);
    const users = presenceUsers({
      list: (by) => Object.entries(state).map(([key, p]) => by(key, p)),
    });
    // A crowded record (docs/crowds.md) lists its first few; the script pages the rest.
    const shown = users.slice(0, _FIRST_LISTED);
    const here = `${users.length.toLocaleString("en")} ${
      users.length === 1 ? "person" : "people"
    } here`;
    const body = `<div id="record-page" data-topic="${escapeHtml(topic)}" data-name="${
      escapeHtml(name)
    }" data-worker="${assetUrl("switchboard-worker.js")}">
<h1>Record ${escapeHtml(id)}</h1>
<p class="hint">Open this page in another browser, or as someone else, to see presence live.
Put the cursor in the notes and the others see that you are editing.</p>
<form id="join-form" method="get" action="/records/${encodeURIComponent(id)}" class="row">
<div class="field"><label for="name">Your name</label>
<input id="name" name="name" value="${escapeHtml(name)}" maxlength="80" autocomplete="name"
required aria-describedby="name-error"></div>
<div class="field"><button type="submit">Join</button></div>
</form>
<p id="name-error" class="error" hidden>Enter a name to join.</p>
<p id="me" class="muted" role="status"></p>
<div id="connection" class="connection" data-state="connecting" hidden>
<span class="dot" aria-hidden="true"></span><span id="connection-text" role="status">Connecting…</span>
</div>
<h2 id="people-heading">Who’s here</h2>
<p id="summary">${users.length ? `${here} when the page loaded.` : "Nobody else is here yet."}</p>
<ul id="people" class="people" aria-labelledby="people-heading">${shown.map(_person).join("")}</ul>
<p><button id="show-all" type="button" hidden>Show everyone</button></p>
<ul id="everyone" class="people" aria-label="Everyone on this record" hidden></ul>
<p><button id="more" type="button" hidden>Show more</button></p>
<div class="field"><h2><label for="notes">Shared notes</label></h2>
<textarea id="notes" disabled aria-describedby="notes-info"></textarea>
<p id="notes-info" class="hint">Changes are sent to everyone on this record as you type.</p></div>
<h2 id="activity-heading">Activity</h2>
<ul id="activity" class="activity" aria-labelledby="activity-heading" aria-live="polite"></ul>
<noscript><p class="hint">Presence needs JavaScript: the list above shows who was here when
the page loaded.</p></noscript>
</div>`;
    return htmlResponse(
      c,
      renderPage({ title: `Record ${id} · Switchboard`, body, scripts: ["record-page.js"] }),
    );
  };
}
