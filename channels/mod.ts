/**
 * The application's channels, in the order topics are matched.
 * @module
 */
import { recordChannel } from "./record.ts";
import { statusChannel } from "./status.ts";

/** Every channel this app serves. */
export const channels = [statusChannel, recordChannel];
