/**
 * `GET /status/:page`: the status of `status:<page>`, rendered into the first response (no
 * spinner, works without JavaScript), then kept live by `/assets/status-page.js` over
 * `/events` (or by polling `/api/topics/…` when SSE is not possible).
 * @module
 */
import type { Context } from "hono";
import { describeStatus, formatAgo, formatClock } from "../lib/client/format.ts";
import type { Config } from "../lib/config.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import { assetUrl } from "./pages_assets.ts";
import { refusePageRead } from "./pages_access.ts";
import { escapeHtml, htmlResponse, notFoundPage, renderPage } from "./pages_layout.ts";

/** Page names: what fits in a URL path segment and a topic without surprises. */
export const PAGE_NAME = /^[A-Za-z0-9_.~-]{1,64}$/;

/** The handler of `/status/:page`. */
export function statusPage(switchboard: Switchboard<Config>) {
  return async (c: Context): Promise<Response> => {
    const page = c.req.param("page") ?? "";
    if (!PAGE_NAME.test(page)) {
      return notFoundPage(c, "Status page names use letters, digits, and _ . ~ - (up to 64).");
    }
    const topic = `status:${page}`;
    const refused = await refusePageRead(switchboard, c, topic);
    if (refused) return refused;
    const last = await switchboard.lastMessage(topic);
    const current = last?.event === "status" ? last : undefined;
    const status = current?.payload ?? null;
    const now = switchboard.clock.now();
    const view = describeStatus(status);
    const iso = current ? new Date(current.at).toISOString() : "";
    const path = `/status/${encodeURIComponent(page)}`;
    // Viewers on every node, kept current by the channel's `occupancy` event.
    const watching = switchboard.extensions.occupancy.of(topic).subscribers;
    const body = `<div id="status-page" data-topic="${escapeHtml(topic)}" data-status="${
      escapeHtml(JSON.stringify(status))
    }" data-updated-at="${iso}" data-server-now="${now}" data-worker="${
      assetUrl("switchboard-worker.js")
    }">
<h1>${escapeHtml(page)} status</h1>
<div id="current" class="card state-${view.kind}" role="status" aria-atomic="true">
<p class="state"><span id="state-icon" class="state-icon" aria-hidden="true">${view.icon}</span>
<span id="state-label">${escapeHtml(view.label)}</span></p>
<p id="message" class="message"${view.message ? "" : " hidden"}>${escapeHtml(view.message)}</p>
</div>
<p class="updated"${current ? "" : " hidden"}>Updated <time id="updated" datetime="${iso}">${
      current ? formatAgo(now - current.at) : ""
    }</time> <span id="updated-at">${
      current ? `(at ${formatClock(current.at, true)} UTC)` : ""
    }</span></p>
<p id="watching" class="updated"${watching ? "" : " hidden"}>${
      watching ? `${watching.toLocaleString("en")} watching` : ""
    }</p>
<div id="connection" class="connection" data-state="connecting" hidden>
<span class="dot" aria-hidden="true"></span>
<span id="connection-text" role="status">Connecting to live updates…</span>
<form id="refresh-form" method="get" action="${path}"><button type="submit">Refresh</button></form>
</div>
<noscript><p class="hint">Live updates need JavaScript: this page reloads itself every minute.
<a href="${path}">Reload now</a>.</p></noscript>
<h2>Follow it from anywhere</h2>
<p>Server-Sent Events: <code>/events?topic=${escapeHtml(topic)}</code>; the last update with an
<code>ETag</code>: <code>/api/topics/${escapeHtml(topic)}</code>; or join <code>${
      escapeHtml(topic)
    }</code> with the Phoenix client.</p>
</div>`;
    return htmlResponse(
      c,
      renderPage({
        title: `${view.label} · ${page} status`,
        body,
        scripts: ["status-page.js"],
        head: `<noscript><meta http-equiv="refresh" content="60"></noscript>`,
      }),
    );
  };
}
