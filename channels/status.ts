/**
 * `status:<page>`: a read-only status feed. Updates are published through the HTTP API as
 * event `status`; joiners get the last one in their join reply.
 * @module
 */
import { defineChannel, error } from "../lib/mod.ts";

/** The `status:<page>` channel: read-only, the last status in every join reply. */
export const statusChannel = defineChannel({
  topic: "status:*",
  async join(ctx) {
    const last = await ctx.lastMessage();
    const current = last?.event === "status" ? last : undefined;
    return {
      status: current?.payload ?? null,
      updated_at: current ? new Date(current.at).toISOString() : null,
    };
  },
  handleIn: () => error({ reason: "read_only" }),
});
