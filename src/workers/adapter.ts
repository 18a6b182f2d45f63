/**
 * The Workers adapter: `new WebSocketPair()` in a Worker's `fetch`, and the
 * server made with it (`workersFetch`, `createWorkersServer`).
 *
 * @module
 */
import type { Adapter } from "../adapter.ts";
import type { Handler } from "../connection.ts";
import { type ServerOptions, WebSocketServer } from "../server.ts";
import type { Message, OutgoingData, Transport } from "../transport.ts";
import { answerClose, webSocketPairConstructor, type WorkersWebSocket } from "./types.ts";

const OPEN = 1;

/** The Workers server socket as a core transport. */
class WorkersTransport implements Transport {
  /** Workers sockets have no drain event. */
  readonly emitsDrain = false;
  /** The runtime's own message limit is not wsport's: the core checks sizes. */
  readonly enforcesMaxMessageSize = false;
  #socket: WorkersWebSocket;

  constructor(socket: WorkersWebSocket) {
    this.#socket = socket;
  }
  send(data: OutgoingData): void {
    if (this.#socket.readyState !== OPEN) return;
    try {
      this.#socket.send(data);
    } catch (error) {
      if (!String(error).includes("on behalf of a different request")) throw error;
      throw new Error(
        "wsport/workers: this connection belongs to another request, and a Worker may not send to it; " +
          "share sockets between clients in a WebSocketRoom (a Durable Object)",
        { cause: error },
      );
    }
  }
  close(code: number, reason: string): void {
    try {
      this.#socket.close(code, reason);
    } catch {
      // The socket closed meanwhile; its close event tells the core.
    }
  }
  terminate(): boolean {
    return false;
  }
  /**
   * workerd has no `bufferedAmount`: 0 (send never waits) rather than a
   * guess that could leave `send()` waiting for a drain that never comes.
   */
  get bufferedAmount(): number {
    const amount = this.#socket.bufferedAmount;
    return typeof amount === "number" && Number.isFinite(amount) && amount >= 0 ? amount : 0;
  }
}

/**
 * The Cloudflare Workers adapter: `new WebSocketPair()`, `server.accept()`
 * and a 101 `Response` carrying the client end. Pass it to `createServer`
 * (the core detects only Deno and Bun), or use
 * {@linkcode createWorkersServer}, which does.
 *
 * - `remoteAddress` is the `CF-Connecting-IP` header (port 0), "" without it.
 * - `bufferedAmount` is absent in workerd, so `send()` never waits (see the
 *   module documentation).
 * - `listen` throws: a Worker exports `fetch` instead.
 *
 * @example
 * ```ts ignore
 * import { createServer } from "@wsport/wsport";
 * import { workersAdapter } from "@wsport/wsport/workers";
 *
 * const wss = createServer((ws) => ws.send("hello"), { adapter: workersAdapter });
 * export default { fetch: (request: Request) => wss.fetch(request) };
 * ```
 */
export const workersAdapter: Adapter = {
  runtime: "workers",
  remoteAddress(request) {
    return { hostname: request.headers.get("cf-connecting-ip") ?? "", port: 0 };
  },
  upgrade(_request, _context, pending) {
    const WebSocketPair = webSocketPairConstructor();
    if (!WebSocketPair) {
      throw new TypeError(
        "wsport/workers: WebSocketPair is missing; this adapter runs on Cloudflare Workers",
      );
    }
    const { 0: client, 1: server } = new WebSocketPair();
    try {
      // "blob" is workerd's default from the compatibility date 2026-03-17 on; a Blob needs an await to read.
      server.binaryType = "arraybuffer";
    } catch {
      // Older compatibility dates deliver ArrayBuffers anyway.
    }
    // Keeps messages in order if a Blob ever arrives (reading it takes an await).
    let reading: Promise<void> | undefined;
    const deliver = (message: Message) => connection.handleMessage(message);
    server.addEventListener("message", (event) => {
      const data = event.data;
      if (reading === undefined && typeof data === "string") return deliver(data);
      if (reading === undefined && data instanceof ArrayBuffer) return deliver(new Uint8Array(data));
      const previous = reading ?? Promise.resolve();
      const current: Promise<void> = previous.then(async () => {
        deliver(
          typeof data === "string"
            ? data
            : new Uint8Array(data instanceof ArrayBuffer ? data : await data.arrayBuffer()),
        );
      }).finally(() => {
        if (reading === current) reading = undefined;
      });
      reading = current;
    });
    // A close waits for a Blob still being read, so that the last message is not lost.
    const afterReading = (handle: () => void) => reading ? void reading.then(handle) : handle();
    server.addEventListener("close", (event) => {
      // The peer started the closing handshake: answer it (older compatibility dates need this).
      if (connection.readyState === "open") answerClose(server, event.code, event.reason);
      afterReading(() => connection.handleClose(event.code || 1006, event.reason));
    });
    server.addEventListener("error", (event) => {
      // workerd may report an error without a close event (a lost network connection).
      afterReading(() => connection.handleClose(1006, event.message ?? "WebSocket error"));
    });
    server.accept();
    // The runtime dispatches events in later tasks: the listeners above never run before this.
    const connection = pending.accept(new WorkersTransport(server));
    const headers = new Headers(pending.responseHeaders as [string, string][]);
    if (pending.protocol) headers.set("sec-websocket-protocol", pending.protocol);
    return new Response(null, { status: 101, webSocket: client, headers } as ResponseInit);
  },
  listen() {
    throw new Error(
      "wsport/workers: Cloudflare Workers do not listen; export default { fetch } (see workersFetch)",
    );
  },
};

/**
 * Options of {@linkcode createWorkersServer} and {@linkcode workersFetch}:
 * the core's, less the adapter. `idleTimeout` and `writeLimit` have no
 * effect on Workers (no ping control, no `bufferedAmount`).
 *
 * @example
 * ```ts ignore
 * import type { WorkersServerOptions } from "@wsport/wsport/workers";
 *
 * const options: WorkersServerOptions<{ user: string }> = {
 *   maxMessageSize: 64 * 1024,
 *   origins: ["https://app.example"],
 *   processRequest(request, context) {
 *     const user = request.headers.get("x-user");
 *     if (!user) return new Response("401 Unauthorized\n", { status: 401 });
 *     context.data = { user };
 *   },
 * };
 * ```
 */
export type WorkersServerOptions<Data = unknown> = Omit<ServerOptions<Data>, "adapter">;

/**
 * A Worker's `fetch`: `(request, env, ctx)`. The WebSocket server answers
 * every request it gets (426 for plain HTTP); route in your own `fetch`.
 *
 * @example
 * ```ts ignore
 * import { type WorkersFetch, workersFetch } from "@wsport/wsport/workers";
 *
 * const echo: WorkersFetch = workersFetch(async (ws) => {
 *   for await (const message of ws) await ws.send(message);
 * });
 * export default { fetch: echo };
 * ```
 */
export type WorkersFetch = (request: Request, env?: unknown, ctx?: unknown) => Promise<Response>;

/**
 * The core's `createServer(handler, { adapter: workersAdapter, ...options })`:
 * the same connection API, handshake hook, origins, subprotocols and limits
 * as on Deno and Bun. Its `fetch` answers a request; `server.connections`
 * and `counters` cover this isolate only.
 *
 * Create it once, at module scope (it does no I/O until a request comes).
 * Each connection belongs to the request that opened it: workerd forbids
 * I/O on it from another request, so `server.publish()` and `broadcast()`
 * across clients do not work here; use a {@linkcode WebSocketRoom}.
 *
 * @example
 * ```ts ignore
 * import { createWorkersServer } from "@wsport/wsport/workers";
 *
 * const wss = createWorkersServer(async (ws) => {
 *   for await (const message of ws) await ws.send(message);
 * }, { subprotocols: ["echo.v1"] });
 *
 * export default {
 *   async fetch(request: Request): Promise<Response> {
 *     return await wss.fetch(request);
 *   },
 * };
 * ```
 */
export function createWorkersServer<Data = unknown>(
  handler: Handler<Data>,
  options: WorkersServerOptions<Data> = {},
): WebSocketServer<Data> {
  return new WebSocketServer(handler, { ...options, adapter: workersAdapter });
}

/**
 * A Worker `fetch` that serves `handler` over WebSockets: upgrades valid
 * handshakes, answers 426 to plain HTTP, 401/403/503 as the options say.
 * The function carries its server as `server`.
 *
 * @example Echo on /ws, a page elsewhere
 * ```ts ignore
 * import { workersFetch } from "@wsport/wsport/workers";
 *
 * const echo = workersFetch(async (ws) => {
 *   for await (const message of ws) await ws.send(message);
 * });
 *
 * export default {
 *   fetch(request: Request, env: unknown, ctx: unknown): Promise<Response> | Response {
 *     if (new URL(request.url).pathname === "/ws") return echo(request, env, ctx);
 *     return new Response("hello");
 *   },
 * };
 * ```
 */
export function workersFetch<Data = unknown>(
  handler: Handler<Data>,
  options: WorkersServerOptions<Data> = {},
): WorkersFetch & { readonly server: WebSocketServer<Data> } {
  const server = createWorkersServer(handler, options);
  const fetch = async (request: Request, env?: unknown): Promise<Response> =>
    await server.fetch(request, env);
  return Object.assign(fetch, { server });
}
