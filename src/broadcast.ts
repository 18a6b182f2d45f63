/**
 * `broadcast()`: one message to many connections, without waiting for any.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import type { OutgoingData } from "./transport.ts";
import { sharedSend } from "./shared_send.ts";

/** What a broadcast did. */
export interface BroadcastResult {
  /** Connections the message was handed to. */
  sent: number;
  /** Connections skipped: closing or closed, or over their write limit (a slow peer). */
  skipped: number;
}

/**
 * Sends `data` to every connection that is open and below its write limit,
 * without awaiting any of them; skips the others and counts them. It never
 * throws because of one bad peer: a slow client misses messages instead of
 * making the server buffer without bound (as in Python's websockets).
 *
 * @example Send to everyone connected
 * ```ts
 * import { broadcast, serve } from "../mod.ts";
 *
 * const server = serve(async (ws) => {
 *   for await (const message of ws) broadcast(server.connections, message);
 * }, { port: 0 });
 * const { sent, skipped } = broadcast(server.connections, "hello all");
 * console.log(sent, skipped); // 0 0
 * await server.close();
 * ```
 */
export function broadcast(
  connections: Iterable<Connection<unknown>>,
  data: OutgoingData,
  options?: { except?: Connection<unknown> },
): BroadcastResult {
  const except = options?.except;
  let sent = 0;
  let skipped = 0;
  // Lets a transport that frames messages itself frame this one once for all (see shared_send.ts).
  sharedSend.active = true;
  try {
    for (const connection of connections) {
      if (connection === except) continue;
      if (connection.trySend(data)) sent++;
      else skipped++;
    }
  } finally {
    sharedSend.active = false;
    sharedSend.data = sharedSend.frame = undefined;
  }
  return { sent, skipped };
}
