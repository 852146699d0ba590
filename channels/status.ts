/**
 * `status:<page>`: a read-only status feed. Updates are published through the HTTP API as
 * event `status`; joiners get the last one in their join reply, and so does a viewer whose
 * updates were lost on the way (in its `reset`). Public: no token needed.
 * @module
 */
import { z } from "zod";
import { type ChannelContext, defineChannel, error } from "@switchboard/switchboard";

/** The current status of the page, as the join reply and a reset's state carry it. */
async function currentStatus(ctx: ChannelContext) {
  const last = await ctx.lastMessage();
  const current = last?.event === "status" ? last : undefined;
  return {
    status: current?.payload ?? null,
    updated_at: current ? new Date(current.at).toISOString() : null,
  };
}

/** The `status:<page>` channel: read-only, the last status in every join reply. */
export const statusChannel = defineChannel({
  topic: "status:*",
  // Status pages are read by anonymous visitors, also when records need signed tokens.
  access: "public",
  // "N watching" on the status page: the count is pushed, no presence list needed.
  occupancy: true,
  join: currentStatus,
  resetState: currentStatus,
  handleIn: () => error({ reason: "read_only" }),
  // What subscribers receive: the published status object, delivered as is.
  messages: { status: z.record(z.string(), z.unknown()) },
});
