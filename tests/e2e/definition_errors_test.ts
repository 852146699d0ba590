/**
 * A definition mistake stops a real server process at start-up, with the field and the fix in
 * its output, even when nothing type-checked the code (`deno run --no-check`).
 */
import assert from "node:assert/strict";

Deno.test("a server whose channel has a non-zod joinParams exits at start naming the field", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-check", "--allow-net=127.0.0.1", "tests/e2e/bad_channel_entry.ts"],
    cwd: new URL("../../", import.meta.url),
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const output = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1, output);
  assert.match(
    output,
    /ChannelDefinitionError: channel "chat:\*": joinParams must be a zod schema/,
  );
  assert.doesNotMatch(output, /Listening on/);
});
