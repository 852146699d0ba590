/**
 * `/assets/<name>.<hash>.<ext>`: the embedded browser assets (see `lib/client/generated/assets_bundle.ts`),
 * immutable for a year since the hash changes with the content; `/assets/<name>.<ext>` serves the
 * current version with `no-cache` (revalidated by ETag), for pages outside this app.
 * @module
 */
import { Hono } from "hono";
import { ASSETS } from "../lib/client/generated/assets_bundle.ts";
import { notModified } from "./etag.ts";

/** The content-hashed URL of an embedded asset, e.g. `/assets/phoenix.0ad0495004f9.js`. */
export function assetUrl(name: string): string {
  const asset = ASSETS[name];
  if (!asset) throw new Error(`no embedded asset "${name}"`);
  const dot = name.lastIndexOf(".");
  return `/assets/${name.slice(0, dot)}.${asset.hash}${name.slice(dot)}`;
}

/** The asset routes. */
export function assetRoutes(): Hono {
  const app = new Hono();
  app.get("/assets/:file", (c) => {
    const file = c.req.param("file");
    let name = file;
    let immutable = false;
    const hashed = file.match(/^(.+)\.([0-9a-f]{12})(\.[a-z]+)$/);
    if (!Object.hasOwn(ASSETS, file) && hashed) {
      name = hashed[1] + hashed[3];
      if (ASSETS[name]?.hash !== hashed[2]) name = "";
      immutable = true;
    }
    const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!asset) return c.json({ error: `no asset "${file}"` }, 404);
    const etag = `"${asset.hash}"`;
    c.header("etag", etag);
    c.header(
      "cache-control",
      immutable ? "public, max-age=31536000, immutable" : "public, no-cache",
    );
    c.header("x-content-type-options", "nosniff");
    if (notModified(c.req.header("if-none-match"), etag)) return c.body(null, 304);
    c.header("content-type", asset.type);
    return c.body(asset.body);
  });
  return app;
}
