/**
 * The little of a Hono `Context` the middleware reads (described
 * structurally, so that wsport imports nothing from Hono and any Hono 4 app
 * fits), and the middleware's options and type.
 *
 * @module
 */
import type { CloseOptions, ServerOptions, WebSocketServer } from "../server.ts";

/** What this module reads of a Hono request (`c.req`); Hono's `HonoRequest` fits. */
export interface HonoRequestLike {
  /** The runtime's `Request`. */
  readonly raw: Request;
  /** The route's parameters, decoded (`{ room: "lobby" }` for `/rooms/:room`). */
  param(): Record<string, string>;
}

/**
 * What this module reads of a Hono `Context`; every Hono `Context` fits.
 * Give your app's `Context<Env>` as the second type argument of
 * {@linkcode upgradeWebSocket} to have `c` fully typed in the `data` option.
 *
 * @example
 * ```ts
 * import type { Context } from "hono";
 * import type { HonoContext } from "../../hono.ts";
 *
 * type AppContext = Context<{ Variables: { user: string } }>;
 * const read = (c: AppContext): HonoContext => c; // any Hono context fits
 * console.log(typeof read); // "function"
 * ```
 */
export interface HonoContext {
  /** The request. */
  readonly req: HonoRequestLike;
  /** The response so far; its headers are what middleware has set before the upgrade. */
  readonly res: Response;
  /** The runtime's second `fetch` argument: Deno's `info`, Bun's server. */
  readonly env: unknown;
  /** A value earlier middleware stored with `c.set(key, value)`. */
  get(key: string): unknown;
}

/**
 * Options of {@linkcode upgradeWebSocket}: the core server's options (limits,
 * `processRequest`, `subprotocols`, `origins`, `headers`, `maxConnections`,
 * `onError`, `pubsub`), and `data`.
 *
 * @example Pass what an auth middleware found on to the connection
 * ```ts
 * import type { HonoWebSocketOptions } from "../../hono.ts";
 *
 * const options: HonoWebSocketOptions<{ user: string }> = {
 *   data: (c) => ({ user: c.get("user") as string }),
 *   subprotocols: ["chat.v1"],
 *   maxMessageSize: 64 * 1024,
 * };
 * console.log(options.subprotocols); // ["chat.v1"]
 * ```
 */
export interface HonoWebSocketOptions<Data = unknown, C extends HonoContext = HonoContext>
  extends Omit<ServerOptions<Data>, "adapter"> {
  /**
   * Computes `ws.data` from the Hono context before the upgrade: values that
   * earlier middleware stored with `c.set()`, `c.req.param()`, `c.env`. It
   * runs for every request that reaches the middleware; `processRequest`
   * runs after it and may replace `context.data`. If it throws, Hono's error
   * handler answers and nothing is upgraded.
   */
  data?(c: C): Data | Promise<Data>;
}

/**
 * The Hono handler {@linkcode upgradeWebSocket} returns, with the wsport
 * server behind it.
 *
 * @example Graceful shutdown of the WebSockets a Hono app hosts
 * ```ts
 * import { upgradeWebSocket } from "../../hono.ts";
 *
 * const chat = upgradeWebSocket((ws) => ws.send("hi"));
 * // app.get("/chat", chat); ...
 * await chat.close(); // every connection gets 1001; new upgrades get 503
 * console.log(chat.server.connections.size); // 0
 * ```
 */
export interface UpgradeWebSocketMiddleware<Data = unknown, C extends HonoContext = HonoContext> {
  /** The Hono handler: upgrades the request, or answers it with the refusal. */
  (c: C, next: () => Promise<void>): Promise<Response>;
  /** The wsport server behind the middleware: `connections`, `counters`, `publish()`, `close()`. */
  readonly server: WebSocketServer<Data>;
  /**
   * Shuts the middleware's WebSockets down gracefully, as
   * `WebSocketServer.close` does (1001 unless `code` says otherwise); the
   * Hono app's HTTP routes are not affected. Stop the HTTP server afterwards.
   */
  close(options?: CloseOptions): Promise<void>;
}
