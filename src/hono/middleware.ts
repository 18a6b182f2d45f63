/**
 * The Hono middleware: `upgradeWebSocket(handler, options)`, a Hono handler
 * that upgrades its requests with wsport's core.
 *
 * @module
 */
import type { Adapter, PendingUpgrade } from "../adapter.ts";
import type { Connection, Handler } from "../connection.ts";
import type { HeaderPairs } from "../handshake.ts";
import { detectAdapter } from "../create_server.ts";
import { type CloseOptions, reportError, WebSocketServer } from "../server.ts";
import type { Transport } from "../transport.ts";
import { bunShared, SharedBunTransport } from "./bun_shared.ts";
import { keepUpgradeResponse } from "./deno_101.ts";
import type { HonoContext, HonoWebSocketOptions, UpgradeWebSocketMiddleware } from "./types.ts";

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

/** The core's pending upgrade, with the transport adjusted for a middleware sharing Bun's handlers. */
class SharedBunUpgrade implements PendingUpgrade {
  #inner: PendingUpgrade;
  #prefix: string;
  #seesEveryMessage: boolean;

  constructor(inner: PendingUpgrade, prefix: string, seesEveryMessage: boolean) {
    this.#inner = inner;
    this.#prefix = prefix;
    this.#seesEveryMessage = seesEveryMessage;
  }
  get protocol(): string {
    return this.#inner.protocol;
  }
  get responseHeaders(): HeaderPairs {
    return this.#inner.responseHeaders;
  }
  get connection(): Connection | undefined {
    return this.#inner.connection;
  }
  set connection(connection: Connection | undefined) {
    this.#inner.connection = connection;
  }
  accept(transport: Transport): Connection {
    return this.#inner.accept(new SharedBunTransport(transport, this.#prefix, this.#seesEveryMessage));
  }
  abandon(): void {
    this.#inner.abandon();
  }
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
 * import { upgradeWebSocket } from "../../hono.ts";
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
  const { data: makeData, ...serverOptions } = options;
  const runtime = detectAdapter();
  const prefix = `wsport.hono.${++middlewareCount}:`;
  const isBun = runtime.runtime === "bun";
  const report = (error: Error) => reportError(options.onError, error, undefined);

  const adapter: Adapter = {
    runtime: runtime.runtime,
    remoteAddress: (request, context) => runtime.remoteAddress(request, runtimeContext(context)),
    nativeTopics: runtime.nativeTopics && ((context) => {
      const native = runtime.nativeTopics!(runtimeContext(context));
      return native && { publish: (topic, data) => native.publish(prefix + topic, data) };
    }),
    upgrade(request, context, pending, limits) {
      // On Bun several middlewares share one `websocket` object: their topics and size limits stay apart.
      if (isBun) {
        pending = new SharedBunUpgrade(pending, prefix, limits.maxMessageSize >= (bunShared.cap ?? Infinity));
      }
      return runtime.upgrade(request, runtimeContext(context), pending, limits);
    },
    listen() {
      throw new Error("wsport/hono: the Hono app listens; serve it with Deno.serve or Bun.serve");
    },
  };

  const server = new WebSocketServer<Data>(handler, { ...serverOptions, adapter });
  if (isBun) {
    bunShared.live.add(server.limits);
    server.finished.then(() => bunShared.live.delete(server.limits));
  }

  const middleware = async (c: C, _next: () => Promise<void>): Promise<Response> => {
    // What Hono decided: its route's params, the `data` option's value, and the headers other
    // middleware set (the `headers` option and `context.headers` go over them).
    const response = await server.handle(c.req.raw, c.env, {
      params: { ...c.req.param() },
      data: makeData ? await makeData(c) : undefined,
      headers: headersSetSoFar(c),
    });
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
