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
  /** Connections skipped: closing or closed, or slow (over their write limit since an earlier turn). */
  skipped: number;
}

/**
 * Sends `data` to every connection that is open and not slow, without
 * awaiting any of them; skips the others and counts them. It never throws
 * because of one bad peer: a slow client misses messages instead of making
 * the server buffer without bound (as in Python's websockets).
 *
 * A peer is slow when what it had buffered before the current turn of the
 * event loop is over its `writeLimit.high` (see
 * {@linkcode Connection.trySend}): a burst of broadcasts in one synchronous
 * loop reaches every peer that drains between turns, on Deno (which writes
 * only between turns) as on Bun. A peer that is never skipped holds at most
 * `writeLimit.high` plus one turn's burst (and never more than 16 MiB).
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
