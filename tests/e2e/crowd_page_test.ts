/**
 * The record page of a crowded record in headless Chromium: "N people here" from the server's
 * count, a few visible people, and "Show everyone" that reads the whole list page by page.
 */
import assert from "node:assert/strict";
import { launchBrowser, waitForText, watchPage } from "../support/browser.ts";
import { joinCrowd } from "../support/crowd.ts";
import { startServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

Deno.test({
  name: "a crowded record page: the count, a few people, and everyone page by page",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const server = await startServer();
    const browser = await launchBrowser();
    // 160 raw members and the browser: a crowd (the record channel's threshold is 150).
    const crowd = await joinCrowd({
      socketUrls: [server.socketUrl],
      topic: "record:crowded",
      count: 160,
    });
    try {
      const html = await (await fetch(`${server.url}/records/crowded`)).text();
      assert.equal(html.match(/class="person/g)?.length, 20, "the first HTML lists 20");
      assert.match(html, /160 people here/);
      const context = await browser.newContext({ viewport: { width: 960, height: 760 } });
      const page = await context.newPage();
      const watch = watchPage(page, server.url);
      await page.goto(`${server.url}/records/crowded?name=Zed`);
      await waitForText(page, "#me", "You are Zed.");
      await waitForText(page, "#summary", "161 people here.");
      const visible = await page.locator("#people .person").count();
      assert.ok(visible >= 1 && visible <= 41, `${visible} people shown`);
      await page.getByRole("button", { name: "Show everyone (161)" }).click();
      await waitFor(
        async () => await page.locator("#everyone .person").count() === 100,
        "the first page of 100",
      );
      await page.getByRole("button", { name: "Show more" }).click();
      await waitFor(
        async () => await page.locator("#everyone .person").count() === 161,
        "everyone after the second page",
      );
      assert.equal(await page.getByRole("button", { name: "Show more" }).isHidden(), true);
      const keys = await page.locator("#everyone .person").evaluateAll((els) =>
        els.map((el) => el.getAttribute("data-key"))
      );
      assert.equal(new Set(keys).size, 161, "each person once");
      assert.deepEqual(watch.errors, [], "no script errors");
      await context.close();
    } finally {
      await crowd.close();
      await browser.close();
      await server.stop();
    }
  },
});
