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
 * import { bunWebSocket, upgradeWebSocket } from "@wsport/wsport/hono";
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
export { upgradeWebSocket, websocket } from "./src/hono/middleware.ts";
export { bunWebSocket } from "./src/hono/bun_shared.ts";
export type {
  HonoContext,
  HonoRequestLike,
  HonoWebSocketOptions,
  UpgradeWebSocketMiddleware,
} from "./src/hono/types.ts";
