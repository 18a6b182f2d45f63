/**
 * What a runtime adapter provides to the core. Adapters translate; the core
 * decides. Each adapter is a few dozen lines in `src/adapters/`.
 *
 * @module
 */
import type { Connection, RemoteAddress } from "./connection.ts";
import type { ResolvedLimits } from "./options.ts";
import type { NativeTopics, Transport } from "./transport.ts";
import type { BunSocketData, BunWebSocketHandlers } from "./adapters/bun_types.ts";

/** An accepted handshake waiting for the runtime to open the socket. */
export interface PendingUpgrade {
  /** The subprotocol to answer with, "" for none. */
  readonly protocol: string;
  /** Extra response headers, as pairs: the `headers` option, then `processRequest`'s `context.headers`. */
  readonly responseHeaders: readonly (readonly [string, string])[];
  /** The connection, once `accept` has made it. */
  connection: Connection | undefined;
  /**
   * Called by the adapter when the runtime opened the socket: makes the
   * connection (setting `connection` before any user code runs) and starts
   * the handler.
   */
  accept(transport: Transport): Connection;
  /** Called by the adapter when the socket closed before it opened. */
  abandon(): void;
}

/** The address a listener is bound to. */
export interface ListenAddress {
  /** The bound IP address (what a host name such as `localhost` resolved to), the same on every runtime. */
  hostname: string;
  /** The bound port (the real one when 0 was asked for). */
  port: number;
}

/** A listening HTTP server started by an adapter. */
export interface Listener {
  /** Where it listens. */
  readonly addr: ListenAddress;
  /**
   * Stops the server and drops every connection still open. Called once the
   * drain has ended: until then the listener stays open, so that new
   * requests get 503 (or `processRequest`'s answer) rather than a refused
   * connection.
   */
  stop(): Promise<void>;
}

/** Options an adapter needs to listen. */
export interface ListenOptions {
  /** Host name to bind; default `localhost` where the runtime allows, else `0.0.0.0`. */
  hostname?: string;
  /** Port to bind; 0 picks a free one. */
  port?: number;
}

/** The request handler a listener serves. */
export type FetchHandler = (request: Request, context: unknown) => Response | Promise<Response>;

/** A runtime adapter. */
export interface Adapter {
  /** The runtime's name, for messages. */
  readonly runtime: string;
  /** The runtime's own topic fan-out, if it has one (Bun); `context` as in `upgrade`. */
  nativeTopics?(context: unknown): NativeTopics | undefined;
  /**
   * What the runtime needs beside `fetch` to run the sockets, when it needs
   * something (Bun: the `websocket` handlers for `Bun.serve`, limits fixed in
   * them); the server's `websocket` getter returns it.
   */
  websocket?(limits: ResolvedLimits): BunWebSocketHandlers<BunSocketData>;
  /** Where the request came from; `context` is what the runtime passed to its fetch handler. */
  remoteAddress(request: Request, context: unknown): RemoteAddress;
  /**
   * Upgrades a validated request; returns the 101 response. Where the
   * runtime writes the 101 itself (Bun, inside `server.upgrade()`, and then
   * ignores what `fetch` returns), a 101 `Response` with the headers that
   * were sent.
   */
  upgrade(
    request: Request,
    context: unknown,
    pending: PendingUpgrade,
    limits: ResolvedLimits,
  ): Response;
  /** Starts an HTTP server whose requests go to `fetch`. */
  listen(
    fetch: FetchHandler,
    options: ListenOptions,
    limits: ResolvedLimits,
    onListen: (addr: ListenAddress) => void,
  ): Listener;
}
