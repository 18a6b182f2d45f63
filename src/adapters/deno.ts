/**
 * Deno adapter: `Deno.serve` and `Deno.upgradeWebSocket` translated to core events.
 * It is Deno's native engine: what `serve()` runs with `engine: "native"` (the
 * default is the ws engine) or when the ws engine cannot load there.
 *
 * Deno's server socket is a standard `WebSocket`: it has no drain event (the
 * core polls its exact `bufferedAmount`), no message size limit of wsport's
 * choosing (the core checks sizes), and no way to drop TCP: a peer that never
 * answers a close frame is released by the core after `closeTimeout`, and the
 * listener's `shutdown()` frees its socket. A socket whose writes wait on a
 * peer that stopped reading is the exception: Deno's close-frame write waits
 * behind them, and holds the process until the peer reads or leaves
 * (`shutdown()`, an aborted `signal` and `unref()` do not release it; see
 * docs/shutdown-and-deployment.md, "Graceful shutdown").
 *
 * @module
 */
import type { Adapter, PendingUpgrade } from "../adapter.ts";
import type { Connection } from "../connection.ts";
import type { ResolvedLimits } from "../options.ts";
import { closeCodeOf, messageOf, WebSocketTransport } from "./web_socket.ts";

/** Deno's close reason when a ping went unanswered past `idleTimeout`. */
const IDLE_REASON = "No response from ping frame.";

/**
 * One upgraded socket: the transport the core writes to, and the single
 * listener of the socket's events. One object per connection, no closures:
 * it is held for the connection's whole life, so its size is what an idle
 * connection costs.
 */
class DenoSocket extends WebSocketTransport implements EventListenerObject {
  #pending: PendingUpgrade | undefined;
  #connection: Connection | undefined;

  constructor(socket: WebSocket, pending: PendingUpgrade) {
    super(socket);
    this.#pending = pending;
    socket.binaryType = "arraybuffer";
    // Each listener costs the socket's whole life, so: no "error" listener (a close
    // event always follows, and Deno reports nothing unhandled), "open" only once.
    socket.addEventListener("open", this, { once: true });
    socket.addEventListener("message", this);
    socket.addEventListener("close", this);
  }

  handleEvent(event: Event): void {
    switch (event.type) {
      case "message":
        this.#connection!.handleMessage(messageOf(event as MessageEvent));
        break;
      case "open":
        this.#connection = this.#pending!.accept(this);
        this.#pending = undefined;
        break;
      case "close":
        this.#closed(event as CloseEvent);
    }
  }

  #closed(event: CloseEvent): void {
    const connection = this.#connection;
    if (!connection) return this.#pending?.abandon();
    const reason = event.reason;
    if (reason === IDLE_REASON) {
      // Deno says 1001 for a dead peer; Bun says 1006. A dead peer is abnormal: 1006 on both.
      connection.handleLimitClose("idleTimeout");
      return connection.handleClose(1006, reason);
    }
    connection.handleClose(closeCodeOf(event), reason);
  }
}

function upgrade(
  request: Request,
  _context: unknown,
  pending: PendingUpgrade,
  limits: ResolvedLimits,
): Response {
  const { socket, response } = Deno.upgradeWebSocket(request, {
    protocol: pending.protocol || undefined,
    idleTimeout: Math.ceil(limits.idleTimeout / 1000),
  });
  for (const [name, value] of pending.responseHeaders) {
    // Each cookie is its own Set-Cookie header; other names are set once (the list has them combined).
    if (name === "set-cookie") response.headers.append(name, value);
    else response.headers.set(name, value);
  }
  new DenoSocket(socket, pending);
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
    }, fetch);
    return {
      addr: { hostname: server.addr.hostname, port: server.addr.port },
      stop: () => server.shutdown(),
    };
  },
};
