/**
 * The pages in headless Chromium, used the way a person would: the live status page (first
 * HTML, live updates, "updated … ago", honest reconnecting, polling fallback, no JavaScript),
 * presence on a shared record across browser contexts and tabs, and the index page's form.
 * Takes screenshots of both pages; with UPDATE_SCREENSHOTS=1 they replace
 * docs/screenshots/status.png and record.png (otherwise they go to a temporary folder, so a test
 * run leaves the checkout as it was).
 */
import { publishStatus } from "../support/api.ts";
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { launchBrowser, type PageWatch, waitForText, watchPage } from "../support/browser.ts";
import { type ServerProcess, startServer } from "../support/server.ts";
import { openSse } from "../support/sse.ts";
import { delay, waitFor } from "../support/wait.ts";

const shots = Deno.env.get("UPDATE_SCREENSHOTS") === "1"
  ? new URL("../../docs/screenshots/", import.meta.url)
  : new URL(`file://${await Deno.makeTempDir({ prefix: "switchboard-shots-" })}/`);
const viewport = { width: 960, height: 760 };

async function open(browser: Browser, url: string, server: ServerProcess) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const watch = watchPage(page, server.url);
  await page.goto(`${server.url}${url}`);
  return { context, page, watch };
}

function assertClean(watch: PageWatch): void {
  assert.deepEqual(watch.errors, [], "no script errors");
  assert.deepEqual(watch.foreign, [], "no requests to other origins");
}

const names = (page: Page) => page.locator("#people .name").allInnerTexts();

Deno.test("pages in a real browser", async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    await t.step("the embedded assets match their sources (scripts/vendor_assets.ts)", async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-run",
          "--allow-env",
          "scripts/vendor_assets.ts",
          "--check",
        ],
        cwd: new URL("../../", import.meta.url),
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
    });

    await t.step("assets: content-hashed URLs, long cache, ETag and 304", async () => {
      const html = await (await fetch(`${server.url}/status/assets`)).text();
      const src = html.match(/src="(\/assets\/status-page\.[0-9a-f]{12}\.js)"/)![1];
      const res = await fetch(`${server.url}${src}`);
      await res.body?.cancel();
      assert.equal(res.headers.get("cache-control"), "public, max-age=31536000, immutable");
      assert.match(res.headers.get("content-type")!, /^text\/javascript/);
      const again = await fetch(`${server.url}${src}`, {
        headers: { "if-none-match": res.headers.get("etag")! },
      });
      assert.equal(again.status, 304);
      const plain = await fetch(`${server.url}/assets/phoenix.js`);
      assert.match(await plain.text(), /phoenix 1\.8\.\d+.*MIT License/);
      assert.equal(plain.headers.get("cache-control"), "public, no-cache");
    });

    await t.step(
      "status: current status in the first HTML; an update appears within a second",
      async () => {
        await publishStatus(server.url, "status:acme", {
          state: "operational",
          message: "All good",
        });
        const first = await fetch(`${server.url}/status/acme`);
        assert.match(first.headers.get("content-security-policy")!, /default-src 'self'/);
        const html = await first.text();
        assert.match(html, /All systems operational/);
        assert.match(html, /All good/);
        const { context, page, watch } = await open(browser, "/status/acme", server);
        assert.match(await page.locator("#current").innerText(), /All systems operational/);
        await waitForText(page, "#connection-text", "Live");
        await publishStatus(server.url, "status:acme", {
          state: "degraded",
          message: "Elevated error rates on the EU API; we are investigating.",
        });
        await waitForText(page, "#current", "Degraded performance", 1_000);
        assert.match(await page.locator("#message").innerText(), /Elevated error rates/);
        assert.equal(await page.locator("#updated").innerText(), "just now");
        // The next update comes as a Fossil delta against that one, rebuilt by the client.
        await publishStatus(server.url, "status:acme", {
          state: "degraded",
          message: "Elevated error rates on the EU API; we have identified the cause.",
        });
        await waitForText(page, "#message", "identified the cause", 1_000);
        assert.equal(await page.locator("#status-page").getAttribute("data-deltas"), "1");
        await page.screenshot({ path: new URL("status.png", shots).pathname, fullPage: true });
        assertClean(watch);
        await context.close();
      },
    );

    await t.step('status: "updated … ago" advances as time passes', async () => {
      const context = await browser.newContext({ viewport });
      const page = await context.newPage();
      await page.clock.install();
      await page.goto(`${server.url}/status/acme`);
      await waitForText(page, "#connection-text", "Live");
      assert.equal(await page.locator("#updated").innerText(), "just now");
      await page.clock.fastForward("05:00");
      await waitForText(page, "#updated", "5 min ago");
      await page.clock.fastForward("55:00");
      await waitForText(page, "#updated", "1 h ago");
      await context.close();
    });

    await t.step('status: "N watching" counts the viewers, whatever their transport', async () => {
      const { context, page, watch } = await open(browser, "/status/watched", server);
      await waitForText(page, "#watching", "1 watching");
      const sse = await openSse(`${server.url}/events?topic=status:watched`);
      await waitForText(page, "#watching", "2 watching");
      await sse.close();
      await waitForText(page, "#watching", "1 watching");
      assertClean(watch);
      await context.close();
    });

    await t.step("status: without JavaScript it is a plain page with the status", async () => {
      const context = await browser.newContext({ javaScriptEnabled: false });
      const page = await context.newPage();
      await page.goto(`${server.url}/status/acme`);
      const text = await page.locator("main").innerText();
      assert.match(text, /Degraded performance/);
      assert.match(text, /Elevated error rates/);
      assert.match(text, /Updated just now/);
      assert.match(text, /reloads itself every minute/);
      assert.equal(await page.locator("#connection").isVisible(), false, "no fake live dot");
      await context.close();
    });

    await t.step(
      "status: without EventSource it polls with ETag (304), backs off on errors",
      async () => {
        const context = await browser.newContext();
        const page = await context.newPage();
        // Such a browser has no SharedWorker either: the page holds the feed itself.
        await page.addInitScript(() => {
          delete (globalThis as { EventSource?: unknown }).EventSource;
          delete (globalThis as { SharedWorker?: unknown }).SharedWorker;
        });
        await page.clock.install();
        const polls: number[] = [];
        page.on("response", (r) => {
          if (r.url().includes("/api/topics/status%3Apolled")) polls.push(r.status());
        });
        await page.goto(`${server.url}/status/polled`);
        assert.match(await page.locator("#current").innerText(), /No status published yet/);
        await waitForText(page, "#connection-text", "Live stream unavailable");
        await publishStatus(server.url, "status:polled", {
          state: "maintenance",
          message: "DB upgrade",
        });
        await page.clock.fastForward("00:07");
        await waitForText(page, "#current", "Under maintenance");
        await page.clock.fastForward("00:07");
        await waitFor(() => polls.includes(304), "a 304 Not Modified poll");
        assert.deepEqual(polls.slice(0, 2), [200, 200]);
        // The API fails: honest state, and retries back off (5 s apart without backoff).
        let attempts = 0;
        await page.route("**/api/topics/**", (route) => (attempts++, route.abort()));
        for (let s = 0; s < 90; s++) {
          await page.clock.runFor(1_000);
          await delay(20);
        }
        assert.ok(attempts >= 3 && attempts <= 6, `${attempts} attempts in 90 s`);
        assert.match(await page.locator("#connection-text").innerText(), /Reconnecting since/);
        await page.unrouteAll();
        await page.clock.runFor(70_000);
        await waitForText(page, "#connection-text", "Live stream unavailable");
        await context.close();
      },
    );

    await t.step("record: two people see each other arrive, edit and leave", async () => {
      const ann = await open(browser, "/records/loan-7?name=Ann", server);
      await waitForText(ann.page, "#me", "You are Ann.");
      await waitForText(ann.page, "#people", "Ann (you)");
      // Bob joins through the name field.
      const bob = await open(browser, "/records/loan-7", server);
      await waitForText(bob.page, "#me", "Enter your name");
      await bob.page.getByLabel("Your name").fill("Bob");
      await bob.page.getByRole("button", { name: "Join" }).click();
      await waitForText(bob.page, "#me", "You are Bob.");
      assert.match(bob.page.url(), /\?name=Bob$/);
      await waitForText(ann.page, "#people", "Bob");
      await waitForText(bob.page, "#people", "Ann");
      await waitForText(ann.page, "#activity", "Bob joined");
      // A second tab of Ann's browser: it shares her connection; Ann's tabs count it.
      const annTab = await ann.context.newPage();
      await annTab.goto(`${server.url}/records/loan-7?name=Ann`);
      await waitForText(annTab, "#people", "2 tabs");
      await waitForText(ann.page, "#people", "2 tabs");
      assert.deepEqual(await names(bob.page), ["Ann", "Bob (you)"]);
      // Bob edits: focus → editing; typing patches Ann's notes.
      await bob.page.getByLabel("Shared notes").click();
      await waitForText(ann.page, `#people [data-key] >> nth=1`, "editing");
      await waitForText(ann.page, "#summary", "Bob is editing.");
      await bob.page.getByLabel("Shared notes").pressSequentially("Call the borrower on Monday.");
      await waitFor(
        async () => (await ann.page.getByLabel("Shared notes").inputValue()).includes("Monday"),
        "Bob's notes in Ann's page",
      );
      await waitForText(ann.page, "#activity", "Bob started editing");
      await ann.page.screenshot({ path: new URL("record.png", shots).pathname, fullPage: true });
      await annTab.close();
      await waitFor(
        async () => !(await ann.page.locator("#people").innerText()).includes("2 tabs"),
        "Ann's second tab to leave",
      );
      assert.deepEqual(await names(bob.page), ["Ann", "Bob (you)"], "Ann is still here");
      await bob.page.getByLabel("Your name").focus(); // blur the notes
      await waitForText(ann.page, "#summary", "Nobody is editing.");
      await bob.context.close();
      // Bob's leave is held by the server (PRESENCE_LEAVE_GRACE_MS, 2 s) and then by the page's
      // own presence grace (3 s): a real leave shows after both.
      await waitFor(async () => (await names(ann.page)).length === 1, "Bob to leave", 10_000);
      await waitForText(ann.page, "#activity", "Bob left");
      assertClean(ann.watch);
      assertClean(bob.watch);
      await ann.context.close();
    });

    await t.step("record: a browser without WebSocket joins over long-poll", async () => {
      const context = await browser.newContext({ viewport });
      const lia = await context.newPage();
      const watch = watchPage(lia, server.url);
      await lia.addInitScript(() => { // such a browser has no SharedWorker either
        delete (globalThis as { WebSocket?: unknown }).WebSocket;
        delete (globalThis as { SharedWorker?: unknown }).SharedWorker;
      });
      await lia.goto(`${server.url}/records/lp?name=Lia`);
      await waitForText(lia, "#connection-text", "Connected (long-poll fallback)");
      const max = await open(browser, "/records/lp?name=Max", server);
      await waitForText(max.page, "#connection-text", "Connected (WebSocket)");
      await waitForText(max.page, "#people", "Lia");
      await waitForText(lia, "#people", "Max");
      assertClean(watch);
      await context.close();
      await max.context.close();
    });

    await t.step("index: explains, links both demos, publishes a status in dev mode", async () => {
      const { context, page, watch } = await open(browser, "/", server);
      assert.match(await page.locator("main").innerText(), /Phoenix-style channels on Deno/);
      assert.equal(await page.locator('a[href="/status/demo"]').count() > 0, true);
      assert.equal(await page.locator('a[href="/records/demo"]').count() > 0, true);
      await page.getByLabel("Status page").fill("from-index");
      await page.getByLabel("State").selectOption("outage");
      await page.getByLabel("Message").fill("Checkout is down");
      await page.getByRole("button", { name: "Publish status" }).click();
      await waitForText(page, "#publish-result", "Published");
      const last = await (await fetch(`${server.url}/api/topics/status:from-index`)).json();
      assert.deepEqual(last.payload, { state: "outage", message: "Checkout is down" });
      assertClean(watch);
      await context.close();
    });
  } finally {
    await browser.close();
    await server.stop();
  }
});

Deno.test("status page: honest offline and reconnecting states; recovers from a restart without reload", async () => {
  let server = await startServer();
  const browser = await launchBrowser();
  try {
    const { context, page } = await open(browser, "/status/restart", server);
    await waitForText(page, "#connection-text", "Live");
    await context.setOffline(true);
    await waitForText(page, "#connection-text", /Offline since \d\d:\d\d:\d\d/);
    await context.setOffline(false);
    await waitForText(page, "#connection-text", "Live");
    await page.evaluate(() => Object.assign(globalThis, { sameDocument: true }));
    await server.stop();
    await waitForText(page, "#connection-text", /Reconnecting since \d\d:\d\d:\d\d/, 10_000);
    assert.equal(await page.locator("#connection").getAttribute("data-state"), "reconnecting");
    await page.getByRole("button", { name: "Refresh" }).click(); // the server is still down
    await waitFor(() => page.getByRole("button", { name: "Refresh" }).isEnabled(), "refresh done");
    assert.match(await page.locator("#connection-text").innerText(), /Reconnecting since/);
    server = await startServer({ PORT: String(server.port) });
    await waitForText(page, "#connection-text", "Live", 15_000);
    await publishStatus(server.url, "status:restart", { state: "operational", message: "Back" });
    await waitForText(page, "#current", "All systems operational", 5_000);
    assert.equal(await page.evaluate(() => "sameDocument" in globalThis), true, "no reload");
  } finally {
    await browser.close();
    await server.stop();
  }
});
