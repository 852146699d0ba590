/**
 * The HTML frame shared by the pages: head, header, footer, stylesheet, module scripts, and the
 * response headers (a Content-Security-Policy that allows this origin only).
 * @module
 */
import type { Context } from "hono";
import { assetUrl } from "./pages_assets.ts";

const _CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** Escapes text for HTML content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** What {@link renderPage} puts together. */
export interface PageParts {
  title: string;
  /** The contents of `<main>` (trusted HTML: escape every value in it). */
  body: string;
  /** Embedded asset names of module scripts, e.g. `status-page.js`. */
  scripts?: string[];
  /** Extra trusted HTML for `<head>`. */
  head?: string;
}

/** A whole HTML document. */
export function renderPage(parts: PageParts): string {
  const scripts = (parts.scripts ?? [])
    .map((name) => `<script type="module" src="${assetUrl(name)}"></script>`).join("\n");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${escapeHtml(parts.title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${assetUrl("switchboard.css")}">
${parts.head ?? ""}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="site">
<a class="brand" href="/">Switchboard</a>
<nav aria-label="Demos"><a href="/status/demo">Status page</a> <a href="/records/demo">Shared record</a></nav>
</header>
<main id="main">
${parts.body}
</main>
<footer>Switchboard: Phoenix-style channels on Deno. No external requests, no cookies.</footer>
${scripts}
</body>
</html>`;
}

/** Responds with a page and the security headers; pages are never cached stale. */
export function htmlResponse(
  c: Context,
  html: string,
  status: 200 | 401 | 403 | 404 = 200,
): Response {
  c.header("content-security-policy", _CSP);
  c.header("x-content-type-options", "nosniff");
  c.header("referrer-policy", "same-origin");
  c.header("cache-control", "no-cache");
  return c.html(html, status);
}

/** A small "not found" page. */
export function notFoundPage(c: Context, what: string): Response {
  return htmlResponse(
    c,
    renderPage({
      title: "Not found · Switchboard",
      body: `<h1>Not found</h1><p>${escapeHtml(what)}</p><p><a href="/">Back to the start</a></p>`,
    }),
    404,
  );
}
