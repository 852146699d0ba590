/**
 * The kernel's view of a server's TCP connections (`/proc/net/tcp`), and clients that connect
 * and then never read, for tests of what a node holds for such clients.
 *
 * @example
 * ```ts
 * const held = await establishedTo(8000); // [{ port: 51164, sendQueue: 4066313 }]
 * ```
 * @module
 */

/** One ESTABLISHED connection of the server: the peer's port and the bytes queued to it. */
export interface HeldSocket {
  peerPort: number;
  /** Bytes the kernel holds unsent (or unacknowledged) for the peer. */
  sendQueue: number;
}

/** The server side of every ESTABLISHED IPv4 connection on local port `port`. */
export async function establishedTo(port: number): Promise<HeldSocket[]> {
  const text = await Deno.readTextFile("/proc/net/tcp");
  const held: HeldSocket[] = [];
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 5) continue;
    const [, local, remote, state, queues] = fields;
    if (state !== "01" || parseInt(local.split(":")[1], 16) !== port) continue;
    held.push({
      peerPort: parseInt(remote.split(":")[1], 16),
      sendQueue: parseInt(queues.split(":")[0], 16),
    });
  }
  return held;
}

/** Opens a TCP connection to 127.0.0.1:`port`, sends `request` and never reads a byte. */
export async function sendAndStopReading(port: number, request: string): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(request));
  return conn;
}
