/**
 * Switchboard used from a page on another origin, in headless Chromium (issue #15): an
 * EventSource status widget, the official phoenix client's `LongPoll` transport with
 * `authToken` (its `X-Phoenix-AuthToken` header needs a preflight), the module import of
 * `/assets/phoenix.js`, and ETag revalidation through `fetch`; then `ALLOWED_ORIGINS`
 * admitting the listed origin and refusing another.
 */
import { publishStatus } from "../support/api.ts";
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { nowSeconds, signToken } from "../../lib/auth.ts";
import { launchBrowser } from "../support/browser.ts";
import { type ServerProcess, startServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

const SECRET = "cross-origin-secret-0123456789";

/** The customer's page: it knows only Switchboard's base URL and a token (from its query). */
const WIDGET_HTML = `<!doctype html>
<html lang="en"><meta charset="utf-8"><title>widget</title>
<script type="module">
const query = new URLSearchParams(location.search);
const base = query.get("base");
const token = query.get("token");
const topic = query.get("topic");
const results = (window.results = { sse: [], lp: [], errors: [] });
const es = new EventSource(\`\${base}/events?topic=\${topic}&token=\${token}\`);
es.addEventListener("joined", () => (results.sseJoined = true));
es.addEventListener("status", (e) => results.sse.push(JSON.parse(e.data).payload));
es.onerror = () => (results.sseState = es.readyState);
try {
  const { LongPoll, Socket } = await import(\`\${base}/assets/phoenix.js\`);
  const socket = new Socket(\`\${base}/socket\`, { transport: LongPoll, authToken: token });
  socket.onError(() => (results.lpErrors = (results.lpErrors ?? 0) + 1));
  socket.connect();
  const channel = socket.channel(topic);
  channel.on("status", (p) => results.lp.push(p));
  channel.join()
    .receive("ok", () => (results.lpJoined = true))
    .receive("error", (e) => results.errors.push("join: " + JSON.stringify(e)));
  const first = await fetch(\`\${base}/api/topics/\${topic}\`);
  results.etag = first.headers.get("etag");
  const again = await fetch(\`\${base}/api/topics/\${topic}\`, {
    headers: { "if-none-match": "W/" + results.etag },
  });
  results.revalidated = again.status;
} catch (e) {
  results.errors.push(String(e));
}
</script>
</html>`;

/** A second origin: serves the widget page on its own port. */
function pageServer(): { origin: string; close(): Promise<void> } {
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    () => new Response(WIDGET_HTML, { headers: { "content-type": "text/html; charset=utf-8" } }),
  );
  return { origin: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

interface WidgetResults {
  sse: unknown[];
  lp: unknown[];
  errors: string[];
  sseJoined?: boolean;
  sseState?: number;
  lpJoined?: boolean;
  lpErrors?: number;
  etag?: string;
  revalidated?: number;
}

async function openWidget(
  browser: Browser,
  pageOrigin: string,
  server: ServerProcess,
  topic: string,
): Promise<{ page: Page; results: () => Promise<WidgetResults>; close(): Promise<void> }> {
  const token = await signToken(SECRET, { sub: "viewer", exp: nowSeconds() + 120 });
  const context = await browser.newContext();
  const page = await context.newPage();
  const query = new URLSearchParams({ base: server.url, token, topic });
  await page.goto(`${pageOrigin}/widget.html?${query}`);
  return {
    page,
    results: () =>
      page.evaluate(() => (globalThis as unknown as { results: WidgetResults }).results),
    close: () => context.close(),
  };
}

Deno.test("cross-origin clients in Chromium", async (t) => {
  const customer = pageServer();
  const stranger = pageServer();
  const open = await startServer({ SOCKET_SECRET: SECRET });
  const listed = await startServer({ SOCKET_SECRET: SECRET, ALLOWED_ORIGINS: customer.origin });
  const browser = await launchBrowser();
  try {
    await t.step("any origin (ALLOWED_ORIGINS unset): EventSource, LongPoll, API", async () => {
      await publishStatus(open.url, "status:xo", { state: "degraded" });
      const widget = await openWidget(browser, customer.origin, open, "status:xo");
      await waitFor(
        async () => {
          const r = await widget.results();
          return r.sseJoined && r.lpJoined && r.revalidated !== undefined;
        },
        "the widget's stream, long-poll join and revalidation",
        10_000,
      );
      await publishStatus(open.url, "status:xo", { state: "operational" });
      await waitFor(
        async () => {
          const r = await widget.results();
          return r.sse.length === 1 && r.lp.length === 1;
        },
        "the live status over SSE and long-poll",
      );
      const r = await widget.results();
      assert.deepEqual(r.errors, []);
      assert.deepEqual(r.sse, [{ state: "operational" }]);
      assert.deepEqual(r.lp, [{ state: "operational" }]);
      assert.match(r.etag ?? "", /^"[^"]+"$/, "the ETag is exposed to the page");
      assert.equal(r.revalidated, 304);
      assert.equal(r.lpErrors, undefined, "no long-poll error");
      await widget.close();
    });

    await t.step("preflights: 204, requested headers echoed, origin allowed", async () => {
      for (const path of ["/socket/longpoll", "/events", "/api/broadcast", "/api/topics/x"]) {
        const res = await fetch(`${open.url}${path}`, {
          method: "OPTIONS",
          headers: {
            origin: customer.origin,
            "access-control-request-method": path === "/socket/longpoll" ? "POST" : "GET",
            "access-control-request-headers": "x-phoenix-authtoken, content-type, last-event-id",
          },
        });
        await res.body?.cancel();
        assert.equal(res.status, 204, path);
        assert.equal(res.headers.get("access-control-allow-origin"), "*", path);
        assert.match(res.headers.get("access-control-allow-headers") ?? "", /x-phoenix-authtoken/);
        assert.match(res.headers.get("access-control-allow-methods") ?? "", /POST/);
      }
    });

    await t.step("ALLOWED_ORIGINS: the listed origin works", async () => {
      const widget = await openWidget(browser, customer.origin, listed, "status:listed");
      await waitFor(
        async () => {
          const r = await widget.results();
          return r.sseJoined && r.lpJoined && r.revalidated !== undefined;
        },
        "the listed origin's stream and long-poll join",
        10_000,
      );
      const r = await widget.results();
      assert.deepEqual(r.errors, []);
      assert.equal(r.revalidated, 304);
      await widget.close();
      const res = await fetch(`${listed.url}/events?topic=status:listed`, {
        method: "OPTIONS",
        headers: { origin: customer.origin, "access-control-request-method": "GET" },
      });
      await res.body?.cancel();
      assert.equal(res.headers.get("access-control-allow-origin"), customer.origin);
      assert.match(res.headers.get("vary") ?? "", /origin/i);
    });

    await t.step("ALLOWED_ORIGINS: another origin is refused everywhere", async () => {
      const widget = await openWidget(browser, stranger.origin, listed, "status:listed");
      await waitFor(
        async () => (await widget.results())?.sseState === 2,
        "the stranger's EventSource to close",
        10_000,
      );
      // Even the client module is not served to it (no Access-Control-Allow-Origin).
      await waitFor(
        async () => (await widget.results()).errors.some((e) => /import/i.test(e)),
        "the stranger's import of phoenix.js to fail",
        10_000,
      );
      const r = await widget.results();
      assert.equal(r.sseJoined, undefined);
      assert.equal(r.lpJoined, undefined);
      await widget.close();
      const token = await signToken(SECRET, { sub: "viewer", exp: nowSeconds() + 60 });
      const headers = { origin: stranger.origin, "access-control-request-method": "GET" };
      for (const method of ["OPTIONS", "GET"]) {
        const res = await fetch(`${listed.url}/events?topic=status:listed&token=${token}`, {
          method,
          headers,
        });
        await res.body?.cancel();
        assert.equal(res.headers.get("access-control-allow-origin"), null, method);
        if (method === "GET") assert.equal(res.status, 403);
      }
      const poll = await fetch(`${listed.url}/socket/longpoll?vsn=2.0.0&token=${token}`, {
        headers,
      });
      assert.equal((await poll.json()).status, 403, "long-poll refuses the origin");
      assert.equal(poll.headers.get("access-control-allow-origin"), null);
    });
  } finally {
    await browser.close();
    await open.stop();
    await listed.stop();
    await customer.close();
    await stranger.close();
  }
});
