/**
 * `serve.ts` as Deno Deploy runs it, for tests/edge/deno_serve_test.ts: the Deno APIs Deploy
 * does not offer to a request (process lifetime, signals, subprocesses, writing files) are
 * replaced by functions that throw, so any use of them on the request path fails the test.
 * @module
 */

/** What a Deploy isolate cannot do; none of it may run while serving. */
export const NOT_ON_DEPLOY = [
  "unrefTimer",
  "refTimer",
  "addSignalListener",
  "removeSignalListener",
  "exit",
  "Command",
  "writeFile",
  "writeTextFile",
  "makeTempDir",
] as const;

for (const name of NOT_ON_DEPLOY) {
  Object.defineProperty(Deno, name, {
    configurable: true,
    value: () => {
      throw new Error(`Deno.${name} was called on the request path; Deno Deploy has no such API`);
    },
  });
}

const { default: server } = await import("../../serve.ts");
export default server;
