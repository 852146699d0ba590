/**
 * The process' last line of defence (issue 21): an exception thrown in a timer and a rejection
 * nobody handles are logged and counted in `switchboard_uncaught_errors_total`, and the
 * process goes on.
 */
import assert from "node:assert/strict";
import { guardProcess } from "../../lib/runtime/deno.ts";
import { Metrics } from "../../lib/metrics.ts";
import type { Logger } from "../../lib/log.ts";
import { waitFor } from "../support/wait.ts";

Deno.test("guardProcess counts what escapes every handler and keeps the process", async () => {
  const metrics = new Metrics();
  const logged: string[] = [];
  const log = { error: (msg: string) => logged.push(msg) } as unknown as Logger;
  const uninstall = guardProcess({ metrics, log });
  try {
    const count = () =>
      Number(/switchboard_uncaught_errors_total (\d+)/.exec(metrics.render())![1]);
    assert.equal(count(), 0, "rendered as 0 before anything escapes");
    setTimeout(() => {
      throw new Error("thrown in a timer");
    }, 0);
    await waitFor(() => count() === 1, "the timer's exception counted");
    Promise.reject(new Error("rejected, never handled"));
    await waitFor(() => count() === 2, "the rejection counted");
    assert.equal(logged.length, 2);
    assert.match(logged[0], /escaped every handler/);
  } finally {
    uninstall();
  }
});
