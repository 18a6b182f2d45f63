/**
 * Hono middleware: WebSockets served by wsport inside a Hono app, on the
 * same port as the app's HTTP routes, on Deno and on Bun.
 *
 * `upgradeWebSocket(handler, options)` is a Hono handler that upgrades the
 * request with wsport's core (`createServer`): the same `Connection` API, the
 * same limits, `processRequest`, `subprotocols` and `origins`. Middleware
 * that runs before it (auth, CORS, logging) sees the upgrade request and can
 * refuse it with an ordinary `Response`; values it stored with `c.set()`
 * reach `ws.data` through the `data` option; Hono's route parameters become
 * `ws.params`.
 *
 * Hono is a peer dependency of this entry point only (`@wsport/wsport/hono`):
 * the main module does not depend on it, and this module imports nothing
 * from it either (it describes the little it reads of a Hono `Context`
 * structurally, so any Hono 4 app fits).
 *
 * Deno:
 *
 * ```ts ignore
 * import { Hono } from "hono";
 * import { upgradeWebSocket } from "@wsport/wsport/hono";
 *
 * const app = new Hono();
 * app.get("/", (c) => c.text("hello"));
 * app.get("/ws", upgradeWebSocket(async (ws) => {
 *   for await (const message of ws) await ws.send(message);
 * }));
 * Deno.serve(app.fetch);
 * ```
 *
 * Bun (`bunWebSocket` is the one handlers object every middleware of this
 * module shares; pass it to `Bun.serve` beside `app.fetch`):
 *
 * ```ts ignore
 * import { Hono } from "hono";
 * import { bunWebSocket, websocket } from "@wsport/wsport/hono";
 *
 * const app = new Hono();
 * app.get("/ws", upgradeWebSocket(async (ws) => {
 *   for await (const message of ws) await ws.send(message);
 * }));
 * Bun.serve({ fetch: app.fetch, websocket: bunWebSocket });
 * ```
 *
 * Response headers set by other middleware: headers set before the upgrade
 * (`cors()` sets its headers before calling `next()`, `c.header()` before
 * `await next()`) are sent in the 101 response on both runtimes. Headers set
 * after `await next()` (`secureHeaders()`, `c.header()` after `await next()`)
 * never break the upgrade; Deno sends them in the 101, Bun cannot: Bun writes
 * the 101 inside `server.upgrade()`, before the middleware returns, and the
 * `Response` the app returns afterwards is discarded.
 *
 * A middleware that fails after `await next()` on an upgraded request makes
 * Hono answer 500; Deno would then close its whole listener ("Upgrade
 * response was not returned from callback"). The socket is open by then, so
 * the 101 is kept, as Bun does, and the replacement is reported to `onError`.
 *
 * @module
 */
import type { Adapter, PendingUpgrade } from "../adapter.ts";
import type { Connection } from "../connection.ts";
import { type HeaderPairs, mergeHeaders } from "../handshake.ts";
import { DEFAULT_LIMITS, type ResolvedLimits } from "../options.ts";
import { detectAdapter } from "../runtime.ts";
import {
  type CloseOptions,
  createServer,
  type Handler,
  type ServerOptions,
  type WebSocketServer,
} from "../server.ts";
import type { OutgoingData, Transport } from "../transport.ts";
import { bunWebSocketHandlers } from "./bun.ts";
import type { BunSocketData, BunWebSocketHandlers } from "./bun_types.ts";

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
 * import type { HonoContext } from "./hono.ts";
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
 * import type { HonoWebSocketOptions } from "./hono.ts";
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
 * import { upgradeWebSocket } from "./hono.ts";
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

/** What the middleware hands to the core for one request, keyed by the request. */
interface Handoff {
  params: Record<string, string | undefined>;
  data: unknown;
  hasData: boolean;
  /** Response headers other middleware set before the upgrade. */
  headers: [string, string][];
}

/** Headers that describe the handshake or the message framing: the runtime writes these itself. */
const HANDSHAKE_HEADERS = new Set([
  "connection",
  "upgrade",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "content-type",
  "sec-websocket-accept",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
  "sec-websocket-version",
]);

/** The response headers middleware set so far (on `c.res`, or with `c.header()`), fit for a 101. */
function headersSetSoFar(c: HonoContext): [string, string][] {
  const pairs: [string, string][] = [];
  // Reading c.res makes Hono keep these headers on whatever response the route returns.
  for (const [name, value] of c.res.headers) {
    if (!HANDSHAKE_HEADERS.has(name)) pairs.push([name, value]);
  }
  return pairs;
}

/**
 * What the shared Bun `bunWebSocket` object must cover: Bun fixes these limits
 * per server, wsport per middleware.
 */
const bunShared = {
  /** The limits of every middleware not yet closed. */
  live: new Set<ResolvedLimits>(),
  /** The `maxPayloadLength` Bun last read: messages over it never reach wsport. */
  cap: undefined as number | undefined,
};

/** Limits that cover every live middleware: the largest sizes, the shortest idle timeout that is on. */
function sharedLimits(): ResolvedLimits {
  const all = [...bunShared.live];
  if (all.length === 0) return DEFAULT_LIMITS;
  const idle = all.map((limits) => limits.idleTimeout).filter((ms) => ms > 0);
  return {
    ...DEFAULT_LIMITS,
    maxMessageSize: Math.max(...all.map((limits) => limits.maxMessageSize)),
    writeHigh: Math.max(...all.map((limits) => limits.writeHigh)),
    idleTimeout: idle.length > 0 ? Math.min(...idle) : 0,
  };
}

function sharedBunHandlers(): BunWebSocketHandlers<BunSocketData> {
  const base = bunWebSocketHandlers(DEFAULT_LIMITS);
  return {
    // Bun reads these when Bun.serve starts: they cover the middlewares made by then.
    get maxPayloadLength() {
      return bunShared.cap = bunWebSocketHandlers(sharedLimits()).maxPayloadLength;
    },
    get idleTimeout() {
      return bunWebSocketHandlers(sharedLimits()).idleTimeout;
    },
    get backpressureLimit() {
      return bunWebSocketHandlers(sharedLimits()).backpressureLimit;
    },
    sendPings: base.sendPings,
    closeOnBackpressureLimit: base.closeOnBackpressureLimit,
    perMessageDeflate: base.perMessageDeflate,
    // Each socket's data is the PendingUpgrade of the middleware that upgraded it, then its connection.
    open: base.open,
    message: base.message,
    drain: base.drain,
    close: base.close,
  };
}

/**
 * Bun's `websocket` handlers (`Bun.serve({ websocket: bunWebSocket })`) for every WebSocket this module's middlewares
 * upgrade: pass it to `Bun.serve` beside `app.fetch`. One object serves any
 * number of middlewares; each socket is dispatched to its own middleware's
 * server through `ws.data`. Not needed on Deno.
 *
 * Bun fixes three limits per server, when `Bun.serve` starts, so create the
 * middlewares first: Bun's frame cap is the largest `maxMessageSize` among
 * them (wsport checks each middleware's own limit below it, with 1009), and
 * Bun's idle check uses the smallest non-zero `idleTimeout` (Bun pings, so
 * only a peer that stopped answering is dropped).
 *
 * @example
 * ```ts ignore
 * import { Hono } from "hono";
 * import { bunWebSocket, websocket } from "@wsport/wsport/hono";
 *
 * const app = new Hono();
 * app.get("/ws", upgradeWebSocket((ws) => ws.send("hello")));
 * Bun.serve({ port: 8765, fetch: app.fetch, websocket: bunWebSocket });
 * ```
 */
export const bunWebSocket: BunWebSocketHandlers<BunSocketData> = sharedBunHandlers();

/**
 * A transport whose size check and native topics belong to one middleware,
 * when several share a Bun server.
 */
class SharedBunTransport implements Transport {
  readonly emitsDrain: boolean;
  readonly enforcesMaxMessageSize: boolean;
  #inner: Transport;
  #prefix: string;

  constructor(inner: Transport, prefix: string, enforcesMaxMessageSize: boolean) {
    this.#inner = inner;
    this.#prefix = prefix;
    this.emitsDrain = inner.emitsDrain;
    this.enforcesMaxMessageSize = inner.enforcesMaxMessageSize && enforcesMaxMessageSize;
  }
  send(data: OutgoingData): void {
    this.#inner.send(data);
  }
  close(code: number, reason: string): void {
    this.#inner.close(code, reason);
  }
  terminate(): boolean {
    return this.#inner.terminate();
  }
  get bufferedAmount(): number {
    return this.#inner.bufferedAmount;
  }
  subscribe(topic: string): void {
    this.#inner.subscribe?.(this.#prefix + topic);
  }
  unsubscribe(topic: string): void {
    this.#inner.unsubscribe?.(this.#prefix + topic);
  }
  publishExceptSelf(topic: string, data: OutgoingData): void {
    this.#inner.publishExceptSelf?.(this.#prefix + topic, data);
  }
}

/** The core's pending upgrade, with the 101 headers and the transport adjusted for Hono. */
class HonoUpgrade implements PendingUpgrade {
  readonly headers: HeaderPairs;
  #inner: PendingUpgrade;
  #wrap: (transport: Transport) => Transport;

  constructor(inner: PendingUpgrade, headers: HeaderPairs, wrap: (transport: Transport) => Transport) {
    this.#inner = inner;
    this.headers = headers;
    this.#wrap = wrap;
  }
  get protocol(): string {
    return this.#inner.protocol;
  }
  get connection(): Connection | undefined {
    return this.#inner.connection;
  }
  set connection(connection: Connection | undefined) {
    this.#inner.connection = connection;
  }
  accept(transport: Transport): Connection {
    // The headers sent, the other middleware's included, become ws.responseHeaders.
    return this.#inner.accept(this.#wrap(transport), this.headers);
  }
  abandon(): void {
    this.#inner.abandon();
  }
}

/**
 * Once Deno has upgraded a request, the response must be a 101: for any
 * other status Deno logs "Upgrade response was not returned from callback"
 * and closes its whole listener. A middleware that fails after `await next()`
 * makes Hono answer 500 instead. This keeps the 101 on this request's
 * context (the socket is open whatever the app answers; Bun likewise ignores
 * what follows an upgrade) and reports the replacement.
 */
function keepUpgradeResponse(c: HonoContext, report: (error: Error) => void): void {
  let owner: object | null = c;
  let accessor: PropertyDescriptor | undefined;
  while (owner && !accessor) {
    accessor = Object.getOwnPropertyDescriptor(owner, "res");
    owner = Object.getPrototypeOf(owner);
  }
  if (!accessor?.get || !accessor.set) return;
  const { get, set } = accessor;
  Object.defineProperty(c, "res", {
    configurable: true,
    get() {
      return get.call(this);
    },
    set(response: Response | undefined) {
      if (response && response.status !== 101) {
        report(
          new Error(
            `wsport/hono: a middleware replaced the 101 of an upgraded request with ${response.status}; ` +
              "the WebSocket is open, so the 101 stands",
          ),
        );
        return;
      }
      set.call(this, response);
    },
  });
}

/** Hono's `c.env` is the runtime's context; Bun apps sometimes pass `{ server }` instead. */
function runtimeContext(env: unknown): unknown {
  const server = (env as { server?: { upgrade?: unknown } } | undefined)?.server;
  return typeof server?.upgrade === "function" ? server : env;
}

let middlewareCount = 0;

/**
 * A Hono handler that upgrades its requests to WebSockets served by
 * `handler`, with wsport's `Connection` API and options. The app's other
 * routes keep serving HTTP on the same port. Refusals are ordinary Hono
 * responses: plain HTTP gets 426, a bad handshake 400, a forbidden origin
 * 403, past `maxConnections` or after `close()` 503, whatever
 * `processRequest` returns as it is.
 *
 * Serve the app with `Deno.serve(app.fetch)` on Deno, or
 * `Bun.serve({ fetch: app.fetch, websocket: bunWebSocket })` on Bun with this module's
 * {@linkcode bunWebSocket}.
 *
 * Type arguments: `Data` is the type of `ws.data`; `C` is your app's
 * `Context` type, for a typed `c` in the `data` option.
 *
 * @example Auth before the upgrade, and its result in `ws.data`
 * ```ts
 * import { type Context, Hono } from "hono";
 * import { upgradeWebSocket } from "./hono.ts";
 *
 * type AppEnv = { Variables: { user: string } };
 * const app = new Hono<AppEnv>();
 * app.use("/private/*", async (c, next) => {
 *   if (c.req.header("authorization") !== "Bearer secret") return c.text("unauthorized", 401);
 *   c.set("user", "alice");
 *   await next();
 * });
 * const chat = upgradeWebSocket<{ user: string }, Context<AppEnv>>(async (ws) => {
 *   await ws.send(`hello ${ws.data.user} in ${ws.params.room}`);
 * }, { data: (c) => ({ user: c.get("user") }) });
 * app.get("/private/rooms/:room", chat);
 *
 * const refused = await app.request("/private/rooms/lobby");
 * console.log(refused.status); // 401
 * await chat.close();
 * ```
 */
export function upgradeWebSocket<Data = unknown, C extends HonoContext = HonoContext>(
  handler: Handler<Data>,
  options: HonoWebSocketOptions<Data, C> = {},
): UpgradeWebSocketMiddleware<Data, C> {
  const { data: makeData, processRequest, ...serverOptions } = options;
  const runtime = detectAdapter();
  const handoffs = new WeakMap<Request, Handoff>();
  const prefix = `wsport.hono.${++middlewareCount}:`;
  const isBun = runtime.runtime === "bun";
  const report = (error: Error) => {
    try {
      (options.onError ?? ((error) => console.error("wsport:", error)))(error, undefined);
    } catch (hookError) {
      console.error("wsport:", hookError);
    }
  };

  const adapter: Adapter = {
    runtime: runtime.runtime,
    remoteAddress: (request, context) => runtime.remoteAddress(request, runtimeContext(context)),
    nativeTopics: runtime.nativeTopics && ((context) => {
      const native = runtime.nativeTopics!(runtimeContext(context));
      return native && { publish: (topic, data) => native.publish(prefix + topic, data) };
    }),
    upgrade(request, context, pending, limits) {
      const handoff = handoffs.get(request);
      // The middleware's headers first, the core's (`headers` option, then `context.headers`) over them.
      const headers = handoff ? mergeHeaders(handoff.headers, pending.headers) : pending.headers;
      // On Bun several middlewares share one `websocket` object: their topics and size limits stay apart.
      const wrap = isBun
        ? (transport: Transport) =>
          new SharedBunTransport(transport, prefix, limits.maxMessageSize >= (bunShared.cap ?? Infinity))
        : (transport: Transport) => transport;
      return runtime.upgrade(
        request,
        runtimeContext(context),
        new HonoUpgrade(pending, headers, wrap),
        limits,
      );
    },
    listen() {
      throw new Error("wsport/hono: the Hono app listens; serve it with Deno.serve or Bun.serve");
    },
  };

  const server = createServer<Data>(handler, {
    ...serverOptions,
    adapter,
    processRequest(request, context) {
      const handoff = handoffs.get(request);
      if (handoff) {
        // Hono matched the route: its params replace the server's own (shared, frozen) empty ones.
        (context as { params: Record<string, string | undefined> }).params = handoff.params;
        if (handoff.hasData) context.data = handoff.data as Data;
      }
      return processRequest?.(request, context);
    },
  });
  if (isBun) {
    bunShared.live.add(server.limits);
    server.finished.then(() => bunShared.live.delete(server.limits));
  }

  const middleware = async (c: C, _next: () => Promise<void>): Promise<Response> => {
    const request = c.req.raw;
    const handoff: Handoff = {
      params: { ...c.req.param() },
      data: makeData ? await makeData(c) : undefined,
      hasData: makeData !== undefined,
      headers: headersSetSoFar(c),
    };
    handoffs.set(request, handoff);
    let response;
    try {
      response = await server.fetch(request, c.env);
    } finally {
      handoffs.delete(request);
    }
    // Bun has written the 101 inside server.upgrade() and discards what follows; the response it
    // returns (saying what was sent, for loggers) only lets Hono finish its middleware chain.
    if (response.status === 101 && !isBun) {
      // Deno's 101 already has the headers other middleware set (headersSetSoFar). Returned as it is,
      // Hono would copy them onto it again, replacing ours of the same name and, if middleware set a
      // cookie, every cookie of ours. Made c.res over a cleared one, Hono keeps it as it is.
      const context = c as { res: Response | undefined };
      context.res = undefined;
      context.res = response;
      keepUpgradeResponse(c, report);
    }
    // Refusals, and Deno's 101 (later middleware may still change it; Deno sends any 101 response).
    return response;
  };
  return Object.assign(middleware, {
    server,
    close: (closeOptions?: CloseOptions) => server.close(closeOptions),
  }) as UpgradeWebSocketMiddleware<Data, C>;
}

/**
 * The middleware, by the name the issue tracker and most wsport examples use:
 * `app.get("/ws", websocket(handler, options))`. The same function as
 * {@linkcode upgradeWebSocket} (Hono's own helper's name).
 *
 * @example
 * ```ts ignore
 * import { Hono } from "hono";
 * import { bunWebSocket, websocket } from "@wsport/wsport/hono";
 *
 * const app = new Hono();
 * app.get("/ws", websocket(async (ws) => {
 *   for await (const message of ws) await ws.send(message);
 * }));
 * // Deno: Deno.serve(app.fetch);  Bun: Bun.serve({ fetch: app.fetch, websocket: bunWebSocket });
 * ```
 */
export const websocket: typeof upgradeWebSocket = upgradeWebSocket;
