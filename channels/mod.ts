/**
 * The application's channels, in the order topics are matched.
 * @module
 */
import { realtimeChannel } from "@switchboard/switchboard";
import { recordChannel } from "./record.ts";
import { statusChannel } from "./status.ts";

/** Every channel this app serves; `realtime:*` is Supabase Realtime's broadcast and presence. */
export const channels = [statusChannel, recordChannel, realtimeChannel];
