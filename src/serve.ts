/**
 * `serve()`: a WebSocket server listening on a port, on whichever runtime
 * runs it.
 *
 * @module
 */
import type { ListenAddress, Listener } from "./adapter.ts";
import { type Engine, serveAdapter } from "./engine.ts";
import { type CloseOptions, type Handler, type ServerOptions, WebSocketServer } from "./server.ts";
import type { Routes } from "./router.ts";

/** Options of {@linkcode serve}: the server's options plus where to listen. */
export interface ServeOptions<Data = unknown> extends ServerOptions<Data> {
  /**
   * Host name or IP address to bind. Default `localhost`. `server.addr.hostname`
   * reports the bound address on every runtime (`127.0.0.1` for `localhost`
   * where it resolves to it), never the name.
   */
  hostname?: string;
  /** Port to bind; 0 picks a free port. Default 8000. */
  port?: number;
  /** Aborting it shuts the server down gracefully, as `close()` does. */
  signal?: AbortSignal;
  /** Called once listening, with the bound address. Default: nothing is printed. */
  onListen?(addr: ListenAddress): void;
  /**
   * The WebSocket engine. `"ws"` (node:http and the `ws` package) is Node's
   * engine and Deno's default: it bounds memory against any peer, pauses
   * reading when the handler falls behind, and can compress. `"native"` is the
   * runtime's own (`Deno.serve` and `Deno.upgradeWebSocket` on Deno; Bun's,
   * its only one). On Deno the `WSPORT_DENO_ENGINE` environment variable
   * (`ws` or `native`) sets the default, and the ws engine needs `--allow-env`
   * (ws reads `WS_NO_BUFFER_UTIL`) and `ws` in the import map or package.json:
   * without them the default falls back to the native engine with one
   * `console.warn`, and `"ws"` throws `InvalidOption`. Ignored when `adapter`
   * is given.
   */
  engine?: Engine;
}

/**
 * A listening WebSocket server.
 *
 * `await using server = serve(…)` closes it gracefully when the enclosing
 * block ends. At a module's top level that is when the module's last
 * statement has run, so there it closes the server at once unless something
 * after it waits: declare it in a function that waits for a stop condition.
 *
 * @example Serve until a signal aborts; leaving the function closes the server
 * ```ts
 * import { serve } from "../mod.ts";
 *
 * async function main(stop: AbortSignal): Promise<void> {
 *   await using server = serve(async (ws) => {
 *     for await (const message of ws) await ws.send(message);
 *   }, { port: 0 });
 *   console.log(server.addr.port > 0); // true
 *   // Even if this throws, leaving the function shuts the server down.
 *   if (!stop.aborted) await new Promise((resolve) => stop.addEventListener("abort", resolve, { once: true }));
 * }
 *
 * const controller = new AbortController();
 * const running = main(controller.signal);
 * controller.abort(); // e.g. from a SIGTERM listener
 * await running;
 * ```
 */
export class Server<Data = unknown> extends WebSocketServer<Data> {
  /** Where the server listens. */
  readonly addr: ListenAddress;
  #listener: Listener;
  #signal: AbortSignal | undefined;
  #onAbort = () => void this.close();

  /** Starts listening; prefer {@linkcode serve}. */
  constructor(handler: Handler<Data> | Routes<Data>, options: ServeOptions<Data> = {}) {
    super(handler, options.adapter ? options : { ...options, adapter: serveAdapter(options.engine) });
    this.#listener = this.adapter.listen(
      this.fetch,
      { hostname: options.hostname, port: options.port },
      this.limits,
      options.onListen ?? (() => {}),
    );
    this.addr = this.#listener.addr;
    this.#signal = options.signal;
    if (this.#signal?.aborted) queueMicrotask(this.#onAbort);
    else this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /**
   * Stops the listener once the core's drain has ended: during the drain it
   * answers 503 to upgrades and lets `processRequest` answer health checks.
   */
  protected override async drain(options: Required<CloseOptions>): Promise<void> {
    this.#signal?.removeEventListener("abort", this.#onAbort);
    try {
      await super.drain(options);
    } finally {
      await this.#listener.stop();
    }
  }
}

/**
 * Starts a WebSocket server on Node, Deno or Bun, whichever runs it (on
 * Node and Deno over the ws engine; on Deno with `engine: "native"` over
 * `Deno.serve`; on Bun over its own engine).
 *
 * `handler` serves every path; a {@linkcode Routes} object instead serves
 * each path pattern with its own handler (`ws.params` holds the matched
 * parameters) and answers other paths 404 before upgrading. Routes need the
 * runtime's `URLPattern`, which Node 22 lacks (see {@linkcode Routes}).
 *
 * @example Echo server, stopped by an AbortSignal
 * ```ts
 * import { serve } from "../mod.ts";
 *
 * const controller = new AbortController();
 * const server = serve(async (ws) => {
 *   for await (const message of ws) await ws.send(message);
 * }, { port: 0, signal: controller.signal });
 * controller.abort();
 * await server.finished;
 * ```
 *
 * @example Routes: one handler per path, 404 for the others
 * ```ts
 * import { serve } from "../mod.ts";
 *
 * const server = serve({
 *   "/rooms/:room": (ws) => ws.send(`welcome to ${ws.params.room}`),
 *   "/echo": async (ws) => {
 *     for await (const message of ws) await ws.send(message);
 *   },
 * }, { port: 0 });
 * await server.close();
 * ```
 */
export function serve<Data = unknown>(
  handler: Handler<Data> | Routes<Data>,
  options?: ServeOptions<Data>,
): Server<Data> {
  return new Server(handler, options);
}
