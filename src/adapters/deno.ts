/**
 * Deno adapter: `Deno.serve` and `Deno.upgradeWebSocket` translated to core events.
 *
 * Deno's server socket is a standard `WebSocket`: it has no drain event (the
 * core polls its exact `bufferedAmount`), no message size limit of wsport's
 * choosing (the core checks sizes), and no way to drop TCP (a peer that never
 * answers a close frame is released by the core after `closeTimeout`; Deno
 * frees the socket when the server stops or the peer leaves).
 *
 * @module
 */
import type { Adapter, PendingUpgrade } from "../adapter.ts";
import type { Connection } from "../connection.ts";
import type { ResolvedLimits } from "../options.ts";
import { WebSocketTransport } from "./web_socket.ts";

/** Deno's close reason when a ping went unanswered past `idleTimeout`. */
const IDLE_REASON = "No response from ping frame.";

function upgrade(
  request: Request,
  _context: unknown,
  pending: PendingUpgrade,
  limits: ResolvedLimits,
): Response {
  // Deno frees the request once it is upgraded: keep what makes a copy, and make it only if asked.
  const { url, method } = request;
  const headers = [...request.headers];
  const kept = () => new Request(url, { method, headers });
  const { socket, response } = Deno.upgradeWebSocket(request, {
    protocol: pending.protocol || undefined,
    idleTimeout: Math.ceil(limits.idleTimeout / 1000),
  });
  for (const [name, value] of pending.headers) response.headers.set(name, value);
  socket.binaryType = "arraybuffer";
  let connection: Connection | undefined;
  socket.onopen = () => {
    connection = pending.accept(new WebSocketTransport(socket), kept);
  };
  socket.onmessage = (event) => {
    const data = event.data;
    connection!.handleMessage(typeof data === "string" ? data : new Uint8Array(data));
  };
  socket.onclose = (event) => {
    if (!connection) return pending.abandon();
    if (event.reason === IDLE_REASON) {
      // Deno says 1001 for a dead peer; Bun says 1006. A dead peer is abnormal: 1006 on both.
      connection.handleLimitClose("idleTimeout");
      return connection.handleClose(1006, event.reason);
    }
    // Deno reports 0 when it drops TCP, e.g. on data frames that arrive after its
    // close frame (denoland/deno#21642); that is an abnormal closure.
    connection.handleClose(event.code || 1006, event.reason);
  };
  // Errors are always followed by a close event, which is where the core learns of them.
  socket.onerror = (event) => event.preventDefault();
  return response;
}

/** The Deno adapter. */
export const denoAdapter: Adapter = {
  runtime: "deno",
  remoteAddress(_request, context) {
    const addr = (context as Deno.ServeHandlerInfo<Deno.NetAddr> | undefined)?.remoteAddr;
    return { hostname: addr?.hostname ?? "", port: addr?.port ?? 0 };
  },
  upgrade,
  listen(fetch, options, _limits, onListen) {
    const server = Deno.serve({
      hostname: options.hostname ?? "localhost",
      port: options.port ?? 8000,
      onListen: (addr) => onListen({ hostname: addr.hostname, port: addr.port }),
    }, (request, info) => fetch(request, info) as Response | Promise<Response>);
    return {
      addr: { hostname: server.addr.hostname, port: server.addr.port },
      // Deno's shutdown() drops upgraded sockets, so accepting stops in the core (503) until the drain ends.
      stopAccepting() {},
      stop: () => server.shutdown(),
    };
  },
};
