/**
 * Entry code for embedding: `createServer()` picks the adapter of the runtime
 * it runs on (Deno or Bun), so that the core (`server.ts`) names no runtime
 * and a Workers bundle carries neither.
 *
 * @module
 */
import type { Adapter } from "./adapter.ts";
import { bunAdapter } from "./adapters/bun.ts";
import { denoAdapter } from "./adapters/deno.ts";
import type { Handler } from "./connection.ts";
import { Router, type Routes } from "./router.ts";
import { type ServerOptions, WebSocketServer } from "./server.ts";

/** Returns the adapter for the current runtime, or throws naming the runtimes supported. */
export function detectAdapter(): Adapter {
  if ("Bun" in globalThis) return bunAdapter;
  if ("Deno" in globalThis) return denoAdapter;
  throw new Error(
    "wsport: createServer() embeds in Deno and Bun (serve() also runs on Node; Workers: wsport/workers)",
  );
}

/**
 * Creates a runtime-agnostic WebSocket server to embed in another HTTP
 * server through its `fetch` (and, on Bun, `websocket`).
 *
 * The first argument is one handler for every path, or a {@linkcode Routes}
 * object: then a path no route matches is answered 404 before any upgrade
 * (after `processRequest`, which still sees every request), and the matched
 * route's parameters become `ws.params`. Routes need the runtime's
 * `URLPattern`, which Node 22 lacks (see {@linkcode Routes}).
 *
 * @example
 * ```ts
 * import { createServer } from "../mod.ts";
 *
 * const wss = createServer((ws) => ws.send("hello"), {
 *   processRequest(request) {
 *     if (new URL(request.url).pathname === "/healthz") return new Response("OK");
 *   },
 * });
 * await wss.close();
 * ```
 *
 * @example Routes
 * ```ts
 * import { createServer } from "../mod.ts";
 *
 * const wss = createServer({
 *   "/rooms/:room": (ws) => ws.send(`welcome to ${ws.params.room}`),
 *   "/echo": async (ws) => {
 *     for await (const message of ws) await ws.send(message);
 *   },
 * });
 * await wss.close();
 * ```
 */
export function createServer<Data = unknown>(
  handler: Handler<Data> | Routes<Data>,
  options?: ServerOptions<Data>,
): WebSocketServer<Data> {
  if (options?.adapter) return new WebSocketServer(handler, options);
  let adapter: Adapter;
  try {
    adapter = detectAdapter();
  } catch (error) {
    // A mistake in the routes is reported as one on every runtime, before the runtime is.
    if (typeof handler !== "function") new Router(handler);
    throw error;
  }
  return new WebSocketServer(handler, { ...options, adapter });
}
