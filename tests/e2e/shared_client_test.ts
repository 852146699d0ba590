/**
 * One connection per browser, in headless Chromium: record tabs of one browser context share
 * one WebSocket (counted on `/metrics`), another context sees the person once, patches reach
 * every tab, closing the tab or worker holding the connection hands over without losing or
 * repeating a message, closing all tabs makes the person leave; status tabs share one stream,
 * past the browser's six connections per origin; the same with `SharedWorker` removed (a
 * leader tab elected with Web Locks). One browser launch for all steps.
 */
import assert from "node:assert/strict";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { launchBrowser, type PageWatch, waitForText, watchPage } from "../support/browser.ts";
import { connectSocket, disconnect, join, withPresence } from "../support/phoenix.ts";
import { type ServerProcess, startServer } from "../support/server.ts";
import { delay, waitFor } from "../support/wait.ts";

async function gauge(server: ServerProcess, transport: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split("\n").find((l) =>
    l.startsWith(`switchboard_connections{transport="${transport}"}`)
  );
  return Number(line?.split(" ").at(-1) ?? "NaN");
}

async function waitGauge(server: ServerProcess, transport: string, want: number) {
  let seen = NaN;
  await waitFor(
    async () => (seen = await gauge(server, transport)) === want,
    `${want} ${transport}`,
  )
    .catch((err) => {
      throw new Error(`${err.message}; /metrics says ${seen}`);
    });
}

async function publish(server: ServerProcess, topic: string, event: string, payload: unknown) {
  const res = await fetch(`${server.url}/api/broadcast`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ topic, event, payload }),
  });
  await res.body?.cancel();
  assert.equal(res.status, 202);
}

/**
 * In a tab, a second client of the public module (`/assets/switchboard-client.js`) on the
 * record, recording every patch it receives; it shares the page's link, so it is the same tab.
 */
async function probe(page: Page): Promise<void> {
  await page.evaluate(async (url) => {
    type Doc = { getElementById(id: string): { dataset: Record<string, string> } };
    const w = globalThis as unknown as {
      document: Doc;
      localStorage: { getItem(key: string): string };
    };
    const { connect } = await import(url);
    const root = w.document.getElementById("record-page");
    const client = connect({
      params: { user_id: w.localStorage.getItem("switchboard:user_id") },
      workerUrl: root.dataset.worker,
    });
    const got: string[] = [];
    Object.assign(globalThis, { got });
    const channel = client.channel(root.dataset.topic, { name: "Ann" });
    channel.on("patch", (p: { text: string }) => got.push(p.text));
    await channel.join();
  }, "/assets/switchboard-client.js");
}

async function tabs(context: BrowserContext, server: ServerProcess, path: string, n: number) {
  const pages: { page: Page; watch: PageWatch }[] = [];
  for (let i = 0; i < n; i++) {
    const page = await context.newPage();
    const watch = watchPage(page, server.url);
    await page.goto(`${server.url}${path}`);
    pages.push({ page, watch });
  }
  return pages;
}

/** The notes as a tab shows them. */
const notes = (page: Page) => page.getByLabel("Shared notes").inputValue();

async function recordScenario(
  browser: Browser,
  server: ServerProcess,
  opts: { record: string; withoutSharedWorker: boolean; mode: string },
) {
  const ann = await browser.newContext();
  if (opts.withoutSharedWorker) await ann.addInitScript(_noSharedWorker);
  const before = await gauge(server, "websocket");
  const annTabs = await tabs(ann, server, `/records/${opts.record}?name=Ann`, 3);
  for (const { page } of annTabs) {
    await waitForText(page, "#me", "You are Ann.");
    await waitForText(page, "#people", "3 tabs");
  }
  const modes = await sharingOf(annTabs);
  assert.deepEqual(
    modes.sort(),
    opts.mode === "worker" ? ["worker", "worker", "worker"] : ["follower", "follower", "leader"],
  );
  await waitGauge(server, "websocket", before + 1);

  // Another browser: Bob sees Ann once.
  const bob = await browser.newContext();
  const [bobTab] = await tabs(bob, server, `/records/${opts.record}?name=Bob`, 1);
  await waitForText(bobTab.page, "#people", "Ann");
  await waitForText(bobTab.page, "#summary", "2 people here.");
  assert.equal(await bobTab.page.locator("#people .person").count(), 2);
  assert.doesNotMatch(await bobTab.page.locator("#people").innerText(), /tabs|devices/);
  await waitGauge(server, "websocket", before + 2);

  // Bob's patches reach all three of Ann's tabs; one of Ann's reaches her other tabs and Bob.
  const bobNotes = bobTab.page.getByLabel("Shared notes");
  await bobNotes.fill("one");
  await bobTab.page.getByLabel("Your name").focus(); // while typing, Bob's page holds back patches
  for (const { page } of annTabs) await waitFor(async () => (await notes(page)) === "one", "one");
  const annNotes = annTabs[2].page.getByLabel("Shared notes");
  await annNotes.fill("two");
  await annTabs[2].page.getByLabel("Your name").focus();
  const others = [annTabs[0].page, annTabs[1].page, bobTab.page];
  await waitFor(async () => (await Promise.all(others.map(notes))).every((v) => v === "two"), "two")
    .catch(async (err) => {
      const seen = await Promise.all(
        others.map(async (p) =>
          `${await notes(p)} (${await p.locator("#notes-info").innerText()})`
        ),
      );
      throw new Error(`${err.message}: Ann's other tabs and Bob show ${seen.join(" | ")}`);
    });

  // An official phoenix client as a second device of Bob's (so the pages still show two
  // people): its Presence has no grace of its own, so it sees exactly what the server sends.
  const userId = (page: Page) =>
    page.evaluate(() =>
      (globalThis as unknown as { localStorage: { getItem(k: string): string } })
        .localStorage.getItem("switchboard:user_id")
    );
  const [annKey, bobKey] = [await userId(annTabs[0].page), await userId(bobTab.page)];
  const observer = await connectSocket(server.socketUrl, { user_id: bobKey });
  const view = withPresence(observer.channel(`record:${opts.record}`, { name: "Bob" }));
  const gone: string[] = [];
  const syncsWithoutAnn: string[][] = [];
  view.presence.onLeave((key: string, current?: { metas: unknown[] }) => {
    if (!current?.metas.length) gone.push(key);
  });
  view.presence.onSync(() => {
    if (!view.keys().some((k) => k.startsWith(`${annKey}×`))) syncsWithoutAnn.push(view.keys());
  });
  await join(view.presence.channel);
  await waitFor(
    () => view.keys().some((k) => k.startsWith(`${annKey}×`)),
    "Ann, seen by the observer",
  );

  // The tab holding the connection (in worker mode the worker does: close the first tab).
  const sharing = await sharingOf(annTabs);
  const closing = annTabs[opts.mode === "worker" ? 0 : sharing.indexOf("leader")];
  assert.ok(closing, `a leader among ${sharing}`);
  const rest = annTabs.filter((t) => t !== closing);
  for (const { page } of rest) await probe(page);
  // Publish 1…N through the API while that tab closes: some arrive before, some during the
  // handover (replayed from the cursor), some after. Each remaining tab must get each once.
  const N = 30;
  const sending = patches(server, `record:${opts.record}`, 1, N);
  await delay(120);
  const closedAt = Date.now();
  await closing.page.close({ runBeforeUnload: false });
  // In leader mode a follower takes over: its page says so once its connection is live.
  let handoverMs = 0;
  if (opts.mode === "leader") {
    const liveLeader = async () => {
      for (const { page } of rest) {
        const el = page.locator("#connection");
        const [sharing, state] = [
          await el.getAttribute("data-sharing"),
          await el.getAttribute("data-state"),
        ];
        if (sharing === "leader" && state === "live") return true;
      }
      return false;
    };
    await waitFor(liveLeader, "a new leader, live");
    handoverMs = Date.now() - closedAt;
  }
  await sending;
  const expected = Array.from({ length: N }, (_, i) => `n${i + 1}`);
  for (const { page } of rest) {
    await waitFor(async () => (await received(page)).length >= N, `${N} patches`);
  }
  for (const { page } of rest) {
    assert.deepEqual(await received(page), expected, "every patch once, in order");
    assert.equal(await notes(page), `n${N}`);
  }
  // Ann never left for Bob, nor for the official client (the server's leave grace, not only
  // the page's: the new connection's join and the old one's leave came in one diff).
  assert.deepEqual([...gone], [], "no key left the official client's presence");
  assert.deepEqual(syncsWithoutAnn, [], "every sync listed Ann");
  assert.doesNotMatch(await bobTab.page.locator("#activity").innerText(), /Ann left/);
  assert.equal(await bobTab.page.locator("#people .person").count(), 2);
  await waitGauge(server, "websocket", before + 3); // Ann's browser, Bob's, the observer
  for (const { page } of rest) await waitForText(page, "#people", "2 tabs");

  // All of Ann's tabs close: she leaves.
  await ann.close();
  await waitForText(bobTab.page, "#activity", "Ann left", 10_000);
  await waitForText(bobTab.page, "#summary", "Only you are here.");
  await waitFor(() => gone.includes(annKey), "Ann gone for the official client too");
  await disconnect(observer);
  await waitGauge(server, "websocket", before + 1);
  for (const { watch } of [...annTabs, bobTab]) assert.deepEqual(watch.errors, []);
  await bob.close();
  return handoverMs;
}

const _noSharedWorker = () => delete (globalThis as { SharedWorker?: unknown }).SharedWorker;

const sharingOf = (pages: { page: Page }[]) =>
  Promise.all(pages.map(({ page }) => page.locator("#connection").getAttribute("data-sharing")));

const received = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as { got: string[] }).got.slice());

/** Publishes `text` patches n<from>…n<to>, a few ms apart. */
async function patches(server: ServerProcess, topic: string, from: number, to: number) {
  for (let i = from; i <= to; i++) {
    await publish(server, topic, "patch", { text: `n${i}`, by: "api" });
    await delay(15);
  }
}

Deno.test("one connection per browser, shared by its tabs", async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    await t.step("record: three tabs share one WebSocket (SharedWorker)", async () => {
      await recordScenario(browser, server, {
        record: "shared-w",
        withoutSharedWorker: false,
        mode: "worker",
      });
    });

    await t.step("record: without SharedWorker, a leader tab holds it and hands over", async () => {
      const ms = await recordScenario(browser, server, {
        record: "shared-l",
        withoutSharedWorker: true,
        mode: "leader",
      });
      console.log(`leader tab closed: a follower was live on a new connection after ${ms} ms`);
    });

    await t.step("record: a frozen leader tab is taken over, nothing lost", async () => {
      const topic = "record:frozen";
      const ann = await browser.newContext();
      await ann.addInitScript(_noSharedWorker);
      const bob = await browser.newContext();
      const before = await gauge(server, "websocket");
      const annTabs = await tabs(ann, server, "/records/frozen?name=Ann", 3);
      for (const { page } of annTabs) await waitForText(page, "#people", "3 tabs");
      const [bobTab] = await tabs(bob, server, "/records/frozen?name=Bob", 1);
      await waitForText(bobTab.page, "#people", "Ann");
      const sharing = await sharingOf(annTabs);
      const leader = annTabs[sharing.indexOf("leader")];
      const rest = annTabs.filter((t) => t !== leader);
      for (const { page } of rest) await probe(page);
      // Chrome freezes background tabs: their scripts stop, their sockets stay open. The
      // debugger's pause does the same to the leading tab.
      const cdp = await ann.newCDPSession(leader.page);
      await cdp.send("Debugger.enable");
      await cdp.send("Debugger.pause");
      const frozenAt = Date.now();
      await patches(server, topic, 1, 10);
      let leads = -1;
      await waitFor(
        async () => {
          leads = (await sharingOf(rest)).indexOf("leader");
          return leads >= 0;
        },
        "a follower to take over",
        15_000,
      );
      const tookOverMs = Date.now() - frozenAt;
      await patches(server, topic, 11, 20);
      const expected = Array.from({ length: 20 }, (_, i) => `n${i + 1}`);
      for (const { page } of rest) {
        await waitFor(async () => (await received(page)).length >= 20, "20 patches");
        assert.deepEqual(await received(page), expected, "every patch once, in order");
      }
      assert.doesNotMatch(await bobTab.page.locator("#activity").innerText(), /Ann left/);
      // The frozen tab wakes up, sees another leader and closes its own connection.
      await cdp.send("Debugger.resume");
      await waitGauge(server, "websocket", before + 2);
      await waitFor(
        async () => (await sharingOf([leader]))[0] === "follower",
        "the woken tab to follow",
      );
      await ann.close();
      await bob.close();
      console.log(`frozen leader: a follower took over ${tookOverMs} ms after the freeze`);
    });

    await t.step(
      "status: without SharedWorker, three tabs share one stream and hand it over",
      async () => {
        const context = await browser.newContext();
        await context.addInitScript(_noSharedWorker);
        const before = await gauge(server, "sse");
        const status = await tabs(context, server, "/status/led", 3);
        for (const { page } of status) await waitForText(page, "#connection-text", "Live:");
        await waitGauge(server, "sse", before + 1);
        await publish(server, "status:led", "status", { state: "degraded", message: "One" });
        for (const { page } of status) await waitForText(page, "#current", "Degraded");
        const leader = status[(await sharingOf(status)).indexOf("leader")];
        await leader.page.close();
        // Published while nobody holds the stream: the next leader resumes from the cursor.
        await publish(server, "status:led", "status", { state: "outage", message: "Two" });
        for (const { page } of status.filter((s) => s !== leader)) {
          await waitForText(page, "#current", "Outage");
          await waitForText(page, "#connection-text", "Live:");
        }
        await waitGauge(server, "sse", before + 1);
        await context.close();
        await waitGauge(server, "sse", before);
      },
    );

    await t.step("status: ten tabs of one browser share one stream, all live", async () => {
      const context = await browser.newContext();
      const before = await gauge(server, "sse");
      const status = await tabs(context, server, "/status/shared", 10);
      for (const { page } of status) await waitForText(page, "#connection-text", "Live:");
      await waitGauge(server, "sse", before + 1);
      await publish(server, "status:shared", "status", { state: "outage", message: "Ten" });
      for (const { page } of status) await waitForText(page, "#current", "Outage");
      for (const { watch } of status) assert.deepEqual(watch.errors, []);
      await context.close();
      await waitGauge(server, "sse", before);
    });
  } finally {
    await browser.close();
    await server.stop();
  }
});
