/**
 * `record:<id>`: who is viewing or editing a shared record. Each connection tracks the user
 * with `{name, state, online_at}`; `state` pushes switch viewing/editing; `patch` pushes go to
 * everyone else on the record.
 * @module
 */
import { z } from "zod";
import { defineChannel, event, inScope } from "@switchboard/switchboard";

/** The `record:<id>` channel: presence of viewers and editors, patches to the others. */
export const recordChannel = defineChannel({
  topic: "record:*",
  presence: true,
  // Above 150 viewers the record is a crowd (docs/crowds.md): editors stay in everyone's list.
  crowdAlwaysVisible: (meta) => meta.state === "editing",
  joinParams: z.object({ name: z.string().trim().min(1).max(80).optional() }),
  // With signed tokens, a token's scope (if it has one) lists the records it may open; this
  // also guards reading the record's presence over the API and its page.
  authorize: (identity, topic) => !identity.claims?.scope || inScope(identity.claims.scope, topic),
  join(ctx, { name }) {
    ctx.track(ctx.userId, { name: name ?? ctx.userId, state: "viewing", online_at: Date.now() });
  },
  events: {
    state: event(z.object({ state: z.enum(["viewing", "editing"]) }), (ctx, { state }) => {
      ctx.updatePresence(ctx.userId, { ...ctx.presenceOf(ctx.userId), state });
      return {};
    }),
    patch: event(z.record(z.string(), z.unknown()), (ctx, patch) => {
      ctx.broadcastFrom("patch", patch);
      return {};
    }),
  },
  messages: { patch: z.record(z.string(), z.unknown()) },
});
