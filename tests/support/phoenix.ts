/**
 * Helpers around the official `phoenix` client for tests.
 * @module
 */
import { type Channel, Presence, Socket } from "phoenix";

/** Opens a socket (fast heartbeat, no reconnect noise) and waits until it is open. */
export async function connectSocket(
  socketUrl: string,
  params: Record<string, string> = {},
  options: Record<string, unknown> = {},
): Promise<Socket> {
  const socket = new Socket(socketUrl, { params, heartbeatIntervalMs: 1000, ...options });
  const opened = new Promise<void>((resolve, reject) => {
    socket.onOpen(() => resolve());
    socket.onError((e: unknown) => reject(new Error(`socket error: ${String(e)}`)));
  });
  socket.connect();
  await opened;
  return socket;
}

/** Joins and resolves with the ok response; rejects on error or timeout. */
export function join(channel: Channel): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    channel.join(3000)
      .receive("ok", resolve)
      .receive("error", (e: unknown) => reject(new Error(`join refused: ${JSON.stringify(e)}`)))
      .receive("timeout", () => reject(new Error("join timed out")));
  });
}

/** Pushes and resolves with `{status, response}` of the reply. */
export function push(
  channel: Channel,
  event: string,
  payload: Record<string, unknown>,
): Promise<{ status: string; response: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    channel.push(event, payload, 3000)
      .receive("ok", (response: Record<string, unknown>) => resolve({ status: "ok", response }))
      .receive(
        "error",
        (response: Record<string, unknown>) => resolve({ status: "error", response }),
      )
      .receive("timeout", () => reject(new Error(`push ${event} timed out`)));
  });
}

/** A channel with a Presence attached; `names()` lists keys with their meta count. */
export function withPresence(channel: Channel): { presence: Presence; keys(): string[] } {
  const presence = new Presence(channel);
  return {
    presence,
    keys: () =>
      presence.list((key: string, p: { metas: unknown[] }) => `${key}×${p.metas.length}`).sort(),
  };
}

/** Disconnects and waits for the close. */
export function disconnect(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.disconnect(() => resolve(), 1000, "test done"));
}

export { Presence, Socket };
