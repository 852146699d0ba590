/**
 * The pages' reads ask the topic's channel, like a join: a page opened with `?token=<JWT>`
 * reads as that token's holder, one without as an anonymous visitor (public channels only,
 * when `SOCKET_SECRET` is set). A refused reader gets a small page with 401 or 403.
 * @module
 */
import type { Context } from "hono";
import type { Config } from "../lib/config.ts";
import type { Switchboard } from "../lib/core/switchboard.ts";
import { escapeHtml, htmlResponse, renderPage } from "./pages_layout.ts";

/** Undefined when the page's reader may read `topic`, else the refusal page to answer with. */
export async function refusePageRead(
  switchboard: Switchboard<Config>,
  c: Context,
  topic: string,
): Promise<Response | undefined> {
  const identity = await switchboard.identify(c.req.query("token"));
  const decision = identity.ok
    ? switchboard.authorize(identity.identity, topic)
    : { ok: false, status: identity.status, error: identity.error } as const;
  if (decision.ok) return undefined;
  const hint = decision.status === 401
    ? "Open this page with a signed token: add ?token=… (see deno task token)."
    : "The token this page was opened with does not give access here.";
  return htmlResponse(
    c,
    renderPage({
      title: "Not allowed · Switchboard",
      body: `<h1>Not allowed</h1><p>${escapeHtml(decision.error)}</p><p>${
        escapeHtml(hint)
      }</p><p><a href="/">Back to the start</a></p>`,
    }),
    decision.status,
  );
}
