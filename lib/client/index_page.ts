/**
 * The `/` script (dev mode only): the "publish a status" form posts through
 * `POST /api/broadcast` and says what happened.
 * Bundled into `/assets/index-page.js` by `scripts/vendor_assets.ts`.
 * @module
 */
import { browser, byId } from "./dom.ts";

const form = browser.document.getElementById("publish-form");

form?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const result = byId("publish-result");
  const page = byId("page").value.trim() || "demo";
  const topic = `status:${page}`;
  const payload = { state: byId("state").value, message: byId("message").value };
  const button = form.querySelector("button")!;
  button.disabled = true;
  try {
    const res = await fetch("/api/broadcast", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ topic, event: "status", payload }),
    });
    const body = await res.json().catch(() => ({}));
    result.replaceChildren();
    if (res.status === 202) {
      const link = browser.document.createElement("a");
      link.setAttribute("href", `/status/${encodeURIComponent(page)}`);
      link.textContent = `/status/${page}`;
      result.append(`Published “${payload.state}” to ${topic}. Open `, link, ".");
    } else {
      result.textContent = `Not published (${res.status}): ${body.error ?? res.statusText}`;
    }
  } catch (err) {
    result.textContent = `Not published: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    button.disabled = false;
  }
});
