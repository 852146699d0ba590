/**
 * The README is a guide whose code runs: its channel test is exactly
 * `tests/readme_channel_test.ts` (which `deno task test` runs), and it stays within 300 lines of
 * at most 100 characters. Its TypeScript blocks (and docs/'s) are type-checked by
 * `deno check --doc-only` in `deno task check` and CI.
 */
import assert from "node:assert/strict";

const root = new URL("../../", import.meta.url);

/** The first ```ts block after `heading` in `markdown`. */
function blockAfter(markdown: string, heading: string): string {
  const at = markdown.indexOf(heading);
  assert.ok(at >= 0, `README has no section "${heading}"`);
  const start = markdown.indexOf("```ts\n", at);
  assert.ok(start >= 0, `no ts block after "${heading}"`);
  const end = markdown.indexOf("```", start + 6);
  return markdown.slice(start + 6, end);
}

Deno.test("README: its channel test is the test that runs, and it stays a short guide", () => {
  const readme = Deno.readTextFileSync(new URL("README.md", root));
  const test = Deno.readTextFileSync(new URL("tests/readme_channel_test.ts", root));
  assert.equal(
    blockAfter(readme, "## A channel and its test"),
    test,
    "README's channel test differs from tests/readme_channel_test.ts: copy one into the other",
  );
  const lines = readme.split("\n");
  assert.ok(lines.length <= 301, `README has ${lines.length} lines; keep it at most 300`);
  const long = lines.filter((line) => line.length > 100);
  assert.deepEqual(long, [], "README lines over 100 characters");
});
