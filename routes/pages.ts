/**
 * The pages people look at: `/` (what Switchboard is, the demos, and in dev mode a form to
 * publish a status), `/status/:page`, `/records/:id`, and the embedded assets under `/assets/`.
 * Every page uses this origin only: no CDN, no external fonts.
 * @module
 */
import { Hono } from "hono";
import { STATUS_STATES } from "../lib/client/format.ts";
import type { Config } from "../lib/config.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import { assetRoutes } from "./pages_assets.ts";
import { escapeHtml, htmlResponse, renderPage } from "./pages_layout.ts";
import { recordPage } from "./pages_record.ts";
import { statusPage } from "./pages_status.ts";

function _publishForm(dev: boolean): string {
  if (!dev) {
    return `<p>Publishing needs the API token: <code>POST /api/broadcast</code> with
<code>Authorization: Bearer $API_TOKEN</code> (see the example below).</p>`;
  }
  const options = Object.entries(STATUS_STATES)
    .map(([state, { label }]) => `<option value="${state}">${escapeHtml(label)}</option>`)
    .join("");
  return `<p>Dev mode (no <code>API_TOKEN</code>): this form posts to
<code>POST /api/broadcast</code>. Keep the status page open in another tab to watch it change.</p>
<form id="publish-form" class="publish">
<div class="row">
<div class="field"><label for="page">Status page</label>
<input id="page" name="page" value="demo" pattern="[A-Za-z0-9_.~\\-]{1,64}" required></div>
<div class="field"><label for="state">State</label>
<select id="state" name="state">${options}</select></div>
</div>
<div class="field"><label for="message">Message</label>
<input id="message" name="message" maxlength="500" placeholder="Everything is running smoothly"></div>
<button type="submit">Publish status</button>
<noscript><p class="hint">The form needs JavaScript; use the curl example below.</p></noscript>
</form>
<p id="publish-result" role="status"></p>`;
}

/** The page routes. */
export function pageRoutes(switchboard: Switchboard<Config>): Hono {
  const app = new Hono();
  app.route("/", assetRoutes());
  app.get("/status/:page", statusPage(switchboard));
  app.get("/records/:id", recordPage(switchboard));

  app.get("/", (c) => {
    const host = escapeHtml(c.req.header("host") ?? "localhost:8000");
    const dev = switchboard.config.apiToken === undefined;
    const auth = dev ? "" : ` \\\n  -H "Authorization: Bearer $API_TOKEN"`;
    const body = `<h1>Switchboard</h1>
<p>Phoenix-style channels on Deno: write a channel once and serve it over WebSocket (the
official <code>phoenix</code> client, with long-poll fallback), Server-Sent Events, and plain
HTTP, with presence and Redis fan-out so that many instances act as one. This is node
<code>${escapeHtml(switchboard.config.nodeId)}</code>.</p>
<h2>Demos</h2>
<ul>
<li><a href="/status/demo">A live status page</a>: the current status is in the page, changes
arrive over SSE, and it says honestly when it is reconnecting.</li>
<li><a href="/records/demo">Presence on a shared record</a>: who is viewing and who is editing,
live; <a href="/records/demo?name=Ann">join as Ann</a> in one browser and as someone else in
another.</li>
</ul>
<h2>Publish a status</h2>
${_publishForm(dev)}
<h2>From a terminal</h2>
<pre>curl -N 'http://${host}/events?topic=status:demo'
curl -X POST http://${host}/api/broadcast${auth} \\
  -H 'content-type: application/json' \\
  -d '{"topic":"status:demo","event":"status","payload":{"state":"degraded","message":"Slow"}}'</pre>
<h2>In your own pages</h2>
<p>The client used here: <a href="/assets/switchboard-client.js">/assets/switchboard-client.js</a>
(<code>connect()</code>: channels and feeds over one connection per browser, shared by its tabs,
WebSocket or long-poll, SSE or polling, with honest state), and the official client
<a href="/assets/phoenix.js">/assets/phoenix.js</a>.</p>
<p><a href="/healthz">/healthz</a> · <a href="/metrics">/metrics</a></p>`;
    return htmlResponse(
      c,
      renderPage({
        title: "Switchboard",
        body,
        scripts: dev ? ["index-page.js"] : [],
      }),
    );
  });
  return app;
}
