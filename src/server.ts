/**
 * The runtime-agnostic server: handshake policy, the registry of
 * connections, handler lifecycle and graceful shutdown.
 *
 * @module
 */
import type { Adapter, PendingUpgrade } from "./adapter.ts";
import {
  Connection,
  type ConnectionContext,
  type Handler,
  NO_PARAMS,
  type RemoteAddress,
} from "./connection.ts";
import { createCounters, type ServerCounters } from "./counters.ts";
import { ConnectionClosed, InvalidOption } from "./errors.ts";
import {
  Handshake,
  type HandshakeOptions,
  type HeaderPairs,
  mergeHeaders,
  negotiate,
  type ProcessRequestResult,
  type Refusal,
  refuse,
} from "./handshake.ts";
import { type LimitOptions, type ResolvedLimits, resolveLimits } from "./options.ts";
import type { OutgoingData, Transport } from "./transport.ts";
import type { PublishResult } from "./connection.ts";
import { copyRequest, type RequestCopy } from "./request_copy.ts";
import type { PubSubBackend } from "./pubsub/backend.ts";
import { TopicHub } from "./pubsub/hub.ts";
import type { BunSocketData, BunWebSocketHandlers } from "./adapters/bun_types.ts";
import { Router, type Routes } from "./router.ts";
import type { HistoryOption } from "./history/rules.ts";
import type { HistoryRead, HistoryReadOptions, PresenceMember } from "./history/types.ts";

export type { Handler };

/** What `processRequest` can read and set about a handshake. */
export interface HandshakeContext<Data = unknown> {
  /** Where the request came from. */
  readonly remoteAddress: RemoteAddress;
  /** The request URL, parsed. */
  readonly url: URL;
  /**
   * The parameters of the route that matched (`{ room: "lobby" }` for
   * `/rooms/:room`); an empty frozen object when the server has a single
   * handler or no route matched. The same object becomes `ws.params`.
   */
  readonly params: Record<string, string | undefined>;
  /** Set this to attach data to the connection (`ws.data`). */
  data: Data | undefined;
  /**
   * Response headers for this handshake's 101 only: a `Set-Cookie`, a
   * request id (python websockets' `process_response`). They are sent after
   * the `headers` option: a name set here replaces the option's value, except
   * `Set-Cookie`, which adds a cookie. The connection shows what was sent as
   * `ws.responseHeaders`. Made on first use: a handshake that never reads it
   * costs nothing. Ignored when `processRequest` returns a `Response`.
   *
   * @example
   * ```ts
   * import { createServer } from "../mod.ts";
   *
   * const wss = createServer((ws) => ws.send(ws.responseHeaders.get("x-request-id")!), {
   *   processRequest(_request, context) {
   *     context.headers.set("x-request-id", crypto.randomUUID());
   *     context.headers.append("set-cookie", "session=abc; HttpOnly; Secure");
   *   },
   * });
   * await wss.close();
   * ```
   */
  readonly headers: Headers;
}

export type { ProcessRequestResult };

/** Options of {@linkcode createServer} (and of `serve`). */
export interface ServerOptions<Data = unknown>
  extends LimitOptions, HandshakeOptions<HandshakeContext<Data>> {
  /**
   * Called for every request before anything else. Return a `Response` to
   * answer it instead of upgrading (health checks, 401, 403), or nothing to
   * go on with the handshake; set `context.data` to attach data.
   */
  processRequest?(
    request: Request,
    context: HandshakeContext<Data>,
  ): ProcessRequestResult | Promise<ProcessRequestResult>;
  /** Receives errors thrown by handlers and pub/sub backend failures. Default: logs with `console.error`. */
  onError?(error: unknown, connection: Connection<Data> | undefined): void;
  /**
   * Carries topic messages to other processes or isolates: `broadcastChannelBackend()`
   * (workers), `redisBackend()` (processes and machines), or your own. Default: this
   * process only.
   */
  pubsub?: PubSubBackend;
  /**
   * Topics that keep their last messages, so that a subscriber can resume
   * after a position (`ws.subscribe(topic, { since })`) and
   * {@linkcode WebSocketServer.history} can read them: rules by exact topic
   * name or by prefix ending in `*` (`{ "chat:*": { size: 100, ttl: 60_000 } }`;
   * the longest match wins), or a function of the topic. `size` is an
   * integer >= 1, `ttl` (ms) > 0, default 300,000. Kept in this process
   * without `pubsub`; in the backend's `history` with one (redisBackend);
   * a backend without history (broadcastChannelBackend) is an
   * `InvalidOption`. Topics without a rule behave as if the option were
   * absent. Default: none.
   */
  history?: HistoryOption;
  /**
   * The runtime adapter; `createServer()` and `serve()` detect it when omitted
   * (`new WebSocketServer` needs it: the core names no runtime).
   */
  adapter?: Adapter;
}

/** Options of {@linkcode WebSocketServer.close}. */
export interface CloseOptions {
  /** Close open connections (default `true`); `false` waits for them to end by themselves. */
  closeConnections?: boolean;
  /** The close code sent to every connection. Default 1001 (going away); 1012 tells clients to reconnect. */
  code?: number;
  /** The close reason. Default "going away" for 1001, else "". */
  reason?: string;
}

function defaultOnError(error: unknown, connection?: unknown): void {
  console.error(connection ? "wsport: connection handler failed:" : "wsport:", error);
}

/**
 * Hands `error` to `onError` (to `console.error` when there is none); an
 * error `onError` itself throws goes to `console.error`. The server and the
 * Hono middleware report through it.
 */
export function reportError<C>(
  onError: ((error: unknown, connection: C | undefined) => void) | undefined,
  error: unknown,
  connection: C | undefined,
): void {
  try {
    (onError ?? defaultOnError)(error, connection);
  } catch (hookError) {
    defaultOnError(hookError);
  }
}

/**
 * What an embedder (a framework's middleware) has already decided about a
 * request when it hands it to {@linkcode WebSocketServer.handle}.
 */
export interface Embedding<Data = unknown> {
  /** The parameters of the framework's matched route: they become `ws.params` (over the server's own routes). */
  params?: Record<string, string | undefined>;
  /** What becomes `ws.data`, before `processRequest` runs (which may still replace it). */
  data?: Data;
  /** 101 headers the framework set: the `headers` option, then `context.headers`, go over them. */
  headers?: readonly (readonly [string, string])[];
}

const NO_EMBEDDING: Embedding<never> = Object.freeze({});

/** What a handshake hands back to its server: one object per server, rather than closures per handshake. */
interface UpgradeSink<Data> {
  accept(upgrade: ServerHandshake<Data>, transport: Transport): Connection<Data>;
  abandon(): void;
}

/**
 * One handshake from `fetch` to `accept`, built once: the context
 * `processRequest` sees and, once the server has admitted the request, the
 * pending upgrade the adapter opens and the connection is made from.
 */
class ServerHandshake<Data> extends Handshake<Data> implements PendingUpgrade {
  connection: Connection | undefined = undefined;
  /** The handler that will serve the connection (the matched route's, or the server's). */
  readonly handler: Handler<Data> | undefined;
  /** Set when the server admits the request. */
  protocol = "";
  /** The extra 101 headers: the server's shared list, or this handshake's own merged over it. */
  responseHeaders: HeaderPairs = [];
  /** The request, copied on admission (the runtime may free it once upgraded, as Deno does); released by `accept`. */
  request: RequestCopy | undefined = undefined;
  #sink: UpgradeSink<Data>;

  constructor(
    remoteAddress: RemoteAddress,
    url: URL,
    params: Record<string, string | undefined>,
    handler: Handler<Data> | undefined,
    sink: UpgradeSink<Data>,
  ) {
    super(remoteAddress, url, params);
    this.handler = handler;
    this.#sink = sink;
  }
  accept(transport: Transport): Connection {
    const connection = this.#sink.accept(this, transport) as Connection;
    this.request = undefined;
    return connection;
  }
  abandon(): void {
    this.#sink.abandon();
  }
}

/**
 * The part of a WebSocket server that knows no runtime. Use it to embed
 * wsport in another server: hand it requests through {@linkcode fetch}.
 * {@linkcode serve} wraps one with a listener.
 *
 * @example Embed in `Deno.serve`
 * ```ts
 * import { createServer } from "../mod.ts";
 *
 * const wss = createServer(async (ws) => {
 *   for await (const message of ws) await ws.send(message);
 * });
 * const http = Deno.serve({ port: 0, onListen() {} }, wss.fetch);
 * // On Bun: Bun.serve({ fetch: wss.fetch, websocket: wss.websocket })
 * await wss.close();
 * await http.shutdown();
 * ```
 */
export class WebSocketServer<Data = unknown> {
  /** Accepted, refused and limit-closed counts, by reason. */
  readonly counters: ServerCounters = createCounters();
  /** The limits in force, defaults filled in. */
  readonly limits: ResolvedLimits;
  /** The runtime adapter in use. */
  readonly adapter: Adapter;

  /** The handler of every path, or `undefined` when routes decide. */
  #handler: Handler<Data> | undefined;
  #router: Router<Data> | undefined;
  #options: ServerOptions<Data>;
  #headers: HeaderPairs;
  #connections = new Set<Connection<Data>>();
  #pendingUpgrades = 0;
  #runningHandlers = 0;
  #accepting = true;
  #closing: Promise<void> | undefined;
  #finished = Promise.withResolvers<void>();
  #idle: PromiseWithResolvers<void> | undefined;
  #context: ConnectionContext;
  #runtimeHandlers: BunWebSocketHandlers<BunSocketData> | undefined;
  #topics: TopicHub;

  /** Creates a server; prefer {@linkcode createServer}. */
  constructor(handler: Handler<Data> | Routes<Data>, options: ServerOptions<Data> = {}) {
    if (typeof handler === "function") this.#handler = handler;
    else this.#router = new Router(handler);
    this.#options = options;
    this.limits = resolveLimits(options);
    if (!options.adapter) {
      throw new InvalidOption(
        "new WebSocketServer needs an adapter: use createServer() or serve(), which detect it",
      );
    }
    this.adapter = options.adapter;
    this.#headers = [...new Headers(options.headers)];
    this.#topics = new TopicHub(this.counters, options.pubsub, (error) => this.#report(error, undefined), {
      history: options.history,
    });
    this.#context = {
      limits: this.limits,
      counters: this.counters,
      topics: this.#topics,
      responseHeaders: this.#headers,
      connectionClosed: (connection) => this.#connectionClosed(connection as Connection<Data>),
    };
  }

  /** The open connections. */
  get connections(): ReadonlySet<Connection<Data>> {
    return this.#connections;
  }

  /** Resolves when the server has closed and every connection and handler has ended. */
  get finished(): Promise<void> {
    return this.#finished.promise;
  }

  /**
   * Bun's `websocket` handlers, to pass to `Bun.serve` beside {@linkcode fetch}
   * when embedding on Bun; `undefined` on runtimes that need none (the
   * adapter offers them: see `Adapter.websocket`).
   */
  get websocket(): BunWebSocketHandlers<BunSocketData> | undefined {
    return this.#runtimeHandlers ??= this.adapter.websocket?.(this.limits);
  }

  /**
   * Handles an HTTP request: upgrades it, or answers it with an HTTP status
   * (404 when routes are in use and none matches the path). Pass it as it
   * is: `Deno.serve(wss.fetch)`, `Bun.serve({ fetch: wss.fetch, websocket: wss.websocket })`.
   * `context` is the runtime's second fetch argument (Deno's `info`, Bun's
   * `server`).
   *
   * It always answers with a `Response`. After a successful upgrade that is
   * the 101 on Deno and Workers; on Bun, which writes the 101 itself inside
   * `server.upgrade()` and ignores what `fetch` returns afterwards, it is a
   * 101 `Response` carrying the headers that were sent.
   */
  fetch = (request: Request, context?: unknown): Response | Promise<Response> =>
    this.handle(request, context);

  /**
   * {@linkcode fetch} for an embedder that has already decided part of the
   * handshake: a framework's middleware passes the parameters of the route it
   * matched, the data it gathered and the response headers other middleware
   * set. `fetch(request, context)` is `handle(request, context)`.
   *
   * @example
   * ```ts
   * import { createServer } from "../mod.ts";
   *
   * const wss = createServer((ws) => ws.send(`welcome to ${ws.params.room}`));
   * const request = new Request("http://localhost/rooms/lobby");
   * const response = await wss.handle(request, undefined, { params: { room: "lobby" } });
   * console.log(response.status); // 426: not an upgrade request
   * await wss.close();
   * ```
   */
  handle(
    request: Request,
    context: unknown,
    embedding: Embedding<Data> = NO_EMBEDDING,
  ): Response | Promise<Response> {
    const hook = this.#options.processRequest;
    // While shutting down the hook still answers what it answers (load balancers poll health
    // checks during a rolling deploy); everything else gets 503.
    if (!this.#accepting && !hook) return this.#shuttingDown();
    const url = new URL(request.url);
    // Routes are matched before anything else, so that processRequest sees the params.
    const route = this.#router?.match(url);
    const handshake = new ServerHandshake<Data>(
      this.adapter.remoteAddress(request, context),
      url,
      embedding.params ?? route?.params ?? NO_PARAMS,
      route ? route.handler : this.#handler,
      this.#sink,
    );
    if (embedding.data !== undefined) handshake.data = embedding.data;
    if (hook) {
      let result;
      try {
        result = hook(request, handshake);
      } catch (error) {
        return this.#hookFailed(error);
      }
      if (result instanceof Promise) {
        return result.then(
          (response) => this.#afterHook(request, context, handshake, response, embedding),
          (error) => this.#hookFailed(error),
        );
      }
      return this.#afterHook(request, context, handshake, result, embedding);
    }
    return this.#afterHook(request, context, handshake, undefined, embedding);
  }

  /** A processRequest that throws: 500 to the client, the error to onError, no upgrade. */
  #hookFailed(error: unknown): Response {
    this.#report(error, undefined);
    return new Response("500 Internal Server Error: the handshake hook failed\n", {
      status: 500,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }

  #shuttingDown(): Response {
    return this.#refused(refuse("shuttingDown", 503, "503 Service Unavailable: the server is shutting down"));
  }

  #notFound(): Response {
    return this.#refused(refuse("notFound", 404, "404 Not Found: no WebSocket route for this path"));
  }

  #afterHook(
    request: Request,
    context: unknown,
    handshake: ServerHandshake<Data>,
    response: ProcessRequestResult,
    embedding: Embedding<Data>,
  ): Response {
    if (response instanceof Response) {
      // A health check or a redirect is an answer; a 4xx/5xx (401, 403, 429) is a refusal.
      if (response.status < 400) this.counters.answered++;
      else this.counters.refused.processRequest++;
      return response;
    }
    // Shutting down (since before the hook or while it ran): whatever the path, no upgrade.
    if (!this.#accepting) return this.#shuttingDown();
    // No route matched and the hook did not answer: refused before any upgrade.
    if (!handshake.handler) return this.#notFound();
    return this.#upgrade(request, context, handshake, embedding);
  }

  #refused(refusal: Refusal): Response {
    this.counters.refused[refusal.reason]++;
    return refusal.response;
  }

  #upgrade(
    request: Request,
    context: unknown,
    handshake: ServerHandshake<Data>,
    embedding: Embedding<Data>,
  ): Response {
    const options = this.#options;
    const protocol = negotiate(request, options, this.#connections.size + this.#pendingUpgrades);
    if (typeof protocol !== "string") return this.#refused(protocol);
    handshake.protocol = protocol;
    // The embedder's headers, then the shared ones, then this handshake's own (context.headers).
    const shared = embedding.headers ? mergeHeaders(embedding.headers, this.#headers) : this.#headers;
    handshake.responseHeaders = mergeHeaders(shared, Handshake.headersOf(handshake));
    // Copied now: the runtime may free the request once it has upgraded it (Deno).
    handshake.request = copyRequest(request);
    if (!this.#topics.native && this.adapter.nativeTopics) {
      this.#topics.native = this.adapter.nativeTopics(context);
    }
    this.#pendingUpgrades++;
    try {
      return this.adapter.upgrade(request, context, handshake, this.limits);
    } catch (error) {
      this.#pendingUpgrades--;
      throw error;
    }
  }

  #sink: UpgradeSink<Data> = {
    accept: (handshake, transport) => this.#accept(handshake, transport),
    abandon: () => {
      this.#pendingUpgrades--;
      this.#checkIdle();
    },
  };

  #accept(handshake: ServerHandshake<Data>, transport: Transport): Connection<Data> {
    this.#pendingUpgrades--;
    const headers = handshake.responseHeaders;
    const connection = new Connection<Data>(transport, this.#context, {
      request: handshake.request!,
      remoteAddress: handshake.remoteAddress,
      protocol: handshake.protocol,
      data: handshake.data as Data,
      params: handshake.params,
      // Only a connection whose 101 differed from the shared headers keeps its own.
      responseHeaders: headers === this.#headers ? undefined : headers,
    });
    // The adapter must see the connection before any user code can close it:
    // Bun runs close handlers synchronously inside ws.close().
    handshake.connection = connection as Connection;
    this.#connections.add(connection);
    this.counters.accepted++;
    if (!this.#accepting && this.#closeOptions?.closeConnections !== false) {
      // Opened while shutting down: it gets the same goodbye as the others.
      connection.close(this.#closeOptions!.code, this.#closeOptions!.reason).catch(() => {});
    }
    // Handlers start after the adapter's open callback has returned.
    const handler = handshake.handler!;
    queueMicrotask(() => this.#run(connection, handler));
    return connection;
  }

  #run(connection: Connection<Data>, handler: Handler<Data>): void {
    this.#runningHandlers++;
    let result;
    try {
      result = handler(connection);
    } catch (error) {
      this.#handlerFailed(connection, error);
      this.#handlerEnded();
      return;
    }
    if (result instanceof Promise) {
      // One reaction for both outcomes: it is held for the connection's whole life.
      result.then(
        () => {
          this.#handlerReturned(connection);
          this.#handlerEnded();
        },
        (error) => {
          this.#handlerFailed(connection, error);
          this.#handlerEnded();
        },
      );
    } else {
      this.#handlerReturned(connection);
      this.#handlerEnded();
    }
  }

  #handlerReturned(connection: Connection<Data>): void {
    if (connection.readyState === "open") connection.close(1000).catch(() => {});
  }

  #handlerFailed(connection: Connection<Data>, error: unknown): void {
    // A handler that lets ConnectionClosed escape only reports what the peer did.
    if (error instanceof ConnectionClosed) return this.#handlerReturned(connection);
    this.counters.closed.handlerError++;
    this.#report(error, connection);
    if (connection.readyState === "open") connection.close(1011, "internal error").catch(() => {});
  }

  #report(error: unknown, connection: Connection<Data> | undefined): void {
    reportError(this.#options.onError, error, connection);
  }

  /**
   * Publishes to every subscriber of `topic` on this server (without waiting
   * for any of them, skipping slow ones as {@linkcode broadcast} does) and,
   * through the `pubsub` backend, on every process sharing it. Resolves once
   * the backend took the message; rejects with `PublishError` if it failed
   * (local delivery has happened; the failure is also counted and reported
   * to `onError`, so an unawaited publish never crashes the server). Without
   * a backend it resolves at once, or on the next turn of the event loop once
   * the current one has run for 10 ms: a loop of awaited publishes lets other
   * connections be served.
   *
   * For a topic that keeps history (the `history` option) it resolves with
   * the message's `position` too. With a backend that keeps the history
   * (Redis), the backend delivers the message to every process in position
   * order, this one included, so `delivered` is 0 and `except` is not
   * applied.
   */
  publish(
    topic: string,
    data: OutgoingData,
    options?: { except?: Connection<Data> },
  ): Promise<PublishResult> {
    return this.#topics.publish(topic, data, options?.except as Connection | undefined);
  }

  /**
   * Reads a topic's history: the messages after `since` (everything kept,
   * without it), oldest first, at most `limit`, with the topic's position,
   * and whether every message after `since` was still there. Rejects with
   * `InvalidOption` for a topic the `history` option gives no rule.
   *
   * @example
   * ```ts
   * import { serve } from "../mod.ts";
   *
   * const server = serve(() => {}, { port: 0, history: { "news": { size: 10 } } });
   * const { position } = await server.publish("news", "first");
   * await server.publish("news", "second");
   * const read = await server.history("news", { since: position });
   * console.log(read.messages.map((m) => m.data)); // ["second"]
   * await server.close();
   * ```
   */
  history(topic: string, options?: HistoryReadOptions): Promise<HistoryRead> {
    return this.#topics.history(topic, options);
  }

  /**
   * The members of a topic's presence (connections that called
   * `ws.join(topic, info)`), on every process sharing the backend. Rejects
   * with `InvalidOption` when the backend keeps no presence.
   *
   * @example
   * ```ts
   * import { serve } from "../mod.ts";
   *
   * const server = serve(async (ws) => {
   *   await ws.join("lobby", { name: "ada" });
   * }, { port: 0 });
   * console.log(await server.presence("lobby")); // [] (nobody connected)
   * await server.close();
   * ```
   */
  presence(topic: string): Promise<PresenceMember[]> {
    return this.#topics.members(topic);
  }

  /** How many connections of this server are subscribed to `topic`. */
  subscribers(topic: string): number {
    return this.#topics.count(topic);
  }

  #handlerEnded(): void {
    this.#runningHandlers--;
    this.#checkIdle();
  }

  #connectionClosed(connection: Connection<Data>): void {
    this.#connections.delete(connection);
    this.#checkIdle();
  }

  #checkIdle(): void {
    if (
      this.#idle && this.#connections.size === 0 && this.#runningHandlers === 0 && this.#pendingUpgrades === 0
    ) {
      this.#idle.resolve();
    }
  }

  #closeOptions: Required<CloseOptions> | undefined;

  /**
   * Shuts down gracefully: refuses new upgrades (503; `processRequest` still
   * runs and may answer, e.g. health checks), closes every
   * connection with `code` (default 1001), waits up to `closeTimeout` for
   * peers and handlers, then drops what is left. Resolves when done, as
   * {@linkcode finished} does. Calling it again returns the same promise.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.#closing) return this.#closing;
    const code = options.code ?? 1001;
    this.#closeOptions = {
      closeConnections: options.closeConnections ?? true,
      code,
      reason: options.reason ?? (code === 1001 ? "going away" : ""),
    };
    this.#accepting = false;
    this.#closing = this.drain(this.#closeOptions).finally(() => this.#topics.close()).then(
      () => this.#finished.resolve(),
      (error) => {
        this.#finished.resolve();
        throw error;
      },
    );
    return this.#closing;
  }

  /**
   * The shutdown sequence after accepting has stopped. `serve()` extends it
   * to stop its listener.
   */
  protected async drain(options: Required<CloseOptions>): Promise<void> {
    this.#idle = Promise.withResolvers<void>();
    this.#checkIdle();
    if (!options.closeConnections) return await this.#idle.promise;
    for (const connection of this.#connections) {
      if (connection.readyState === "open") connection.close(options.code, options.reason).catch(() => {});
    }
    // Connections drop themselves after closeTimeout; handlers get the same time (plus a margin) to return.
    const timeout = this.limits.closeTimeout + 100;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<void>((resolve) => timer = setTimeout(resolve, timeout));
    await Promise.race([this.#idle.promise, expired]);
    clearTimeout(timer);
  }

  /** Handlers still running (they are not waited for past `closeTimeout`). */
  get runningHandlers(): number {
    return this.#runningHandlers;
  }

  /**
   * `await using server = ...` closes the server when the enclosing block
   * ends (at a module's top level: once the module has run, i.e. at once).
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
