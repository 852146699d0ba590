/**
 * Headless Chromium for page tests: playwright-core driving the system's `chromium`
 * (Debian package; `CHROMIUM_PATH` overrides the path).
 * @module
 */
import fs from "node:fs";
import type { Browser, Page } from "playwright-core";
import { waitFor } from "./wait.ts";

// playwright-core probes `/proc/sys/fs/binfmt_misc/WSLInterop` with fs.existsSync when it
// loads; Deno answers that probe with NotCapable unless run with --allow-all. A path that
// cannot be read does not exist for this purpose, so make existsSync say so, then load it.
const _existsSync = fs.existsSync;
fs.existsSync = ((path: fs.PathLike) => {
  try {
    return _existsSync(path);
  } catch {
    return false;
  }
}) as typeof fs.existsSync;
const { chromium } = await import("playwright-core");

/** Flags for a quiet, reproducible headless run. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
];

/** Launches Chromium with a fresh profile (playwright makes a temporary user data dir). */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = Deno.env.get("CHROMIUM_PATH") || "/usr/bin/chromium";
  try {
    await Deno.stat(executablePath);
  } catch {
    throw new Error(
      `Chromium not found at ${executablePath}: the page tests need it. Install it ` +
        `(apt-get install chromium) or set CHROMIUM_PATH to a Chromium binary.`,
    );
  }
  return await chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true });
}

/** What a page did that a test may want to forbid. */
export interface PageWatch {
  /** Uncaught exceptions and console errors. */
  errors: string[];
  /** Requests to any origin but `origin` (and not data: URLs). */
  foreign: string[];
}

/** Records a page's script errors and its requests to other origins. */
export function watchPage(page: Page, origin: string): PageWatch {
  const watch: PageWatch = { errors: [], foreign: [] };
  page.on("pageerror", (err) => watch.errors.push(String(err)));
  page.on("console", (msg) => {
    if (msg.type() === "error") watch.errors.push(msg.text());
  });
  page.on("request", (req) => {
    const url = req.url();
    if (!url.startsWith(`${origin}/`) && !url.startsWith("data:")) watch.foreign.push(url);
  });
  return watch;
}

/**
 * Waits until the visible text of `selector` matches `expected`, polling from the test side
 * (so it works while the page's clock is faked); returns the text.
 */
export async function waitForText(
  page: Page,
  selector: string,
  expected: string | RegExp,
  timeoutMs = 5_000,
): Promise<string> {
  let text = "";
  const matches = (t: string) =>
    typeof expected === "string" ? t.includes(expected) : expected.test(t);
  await waitFor(
    async () => {
      text = await page.locator(selector).innerText({ timeout: 500 }).catch(() => "");
      return matches(text);
    },
    `${selector} to show ${String(expected)}`,
    timeoutMs,
  ).catch((err) => {
    throw new Error(`${err.message}; it shows: ${JSON.stringify(text)}`);
  });
  return text;
}
