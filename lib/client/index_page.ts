/// <reference lib="dom" />
/**
 * The `/` script (dev mode only): the "publish a status" form posts through
 * `POST /api/broadcast` and says what happened.
 * Bundled into `/assets/index-page.js` by `scripts/vendor_assets.ts`.
 * @module
 */
const form = document.getElementById("publish-form") as HTMLFormElement | null;
const result = document.getElementById("publish-result")!;

form?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = new FormData(form);
  const page = String(data.get("page") ?? "").trim() || "demo";
  const topic = `status:${page}`;
  const payload = { state: String(data.get("state")), message: String(data.get("message") ?? "") };
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
      const link = document.createElement("a");
      link.href = `/status/${encodeURIComponent(page)}`;
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
