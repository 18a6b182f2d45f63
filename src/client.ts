/**
 * The client: `connect()` opens a {@linkcode Connection} over the runtime's
 * standard global `WebSocket` (Deno, Bun, Node 22+, browsers); `reconnect()`
 * (in `reconnect.ts`) keeps one open, with backoff, for as long as you iterate.
 *
 * The connection is the same class a server handler receives: iterate it,
 * `recv()`, `send()` with backpressure, `close()`, `closed`, `signal`, streams.
 *
 * @module
 */
import { Connection, type ConnectionContext, type RemoteAddress } from "./connection.ts";
import { createCounters } from "./counters.ts";
import { type CloseInfo, InvalidHandshake, InvalidOption, InvalidURI } from "./errors.ts";
import type { HeadersInit } from "./handshake.ts";
import { checkNumber, type LimitOptions, resolveLimits } from "./options.ts";
import { closeCodeOf, messageOf, WebSocketTransport } from "./adapters/web_socket.ts";

export { InvalidHandshake, InvalidURI } from "./errors.ts";

/** Options of {@linkcode connect}. */
export interface ConnectOptions extends Omit<LimitOptions, "idleTimeout"> {
  /** Subprotocols to offer, in order of preference; `connection.protocol` is the one the server chose. */
  protocols?: string | string[];
  /**
   * Extra handshake request headers (`Authorization`, cookies, …). Deno, Bun
   * and Node send them (a non-standard `WebSocket` option they share).
   * Browsers cannot: there `connect()` rejects with {@linkcode InvalidOption}
   * rather than silently connect without them.
   */
  headers?: HeadersInit;
  /**
   * Aborting it before the connection opens cancels the attempt: the socket
   * is closed and `connect()` rejects with the signal's reason. Aborting it
   * later closes the connection with 1000, so one signal can own the
   * connection's whole life.
   */
  signal?: AbortSignal;
  /**
   * Milliseconds the opening handshake may take. Past it the socket is closed
   * and `connect()` rejects with a `DOMException` named `"TimeoutError"` (as
   * `AbortSignal.timeout()` does). `0` turns it off. Default 10,000.
   */
  openTimeout?: number;
}

const DEFAULT_OPEN_TIMEOUT = 10_000;
const noop = () => {};
const encoder = new TextEncoder();

/** The page's URL in a browser, so relative URLs resolve as `new WebSocket()` resolves them. */
function baseURL(): string | undefined {
  try {
    return (globalThis as { location?: { href?: string } }).location?.href;
  } catch {
    return undefined; // Deno without --location throws on access
  }
}

/** Parses a ws(s) or http(s) URL into a ws(s) URL without fragment. */
export function parseURL(url: string | URL): URL {
  const text = String(url);
  let parsed: URL;
  try {
    parsed = new URL(text, baseURL());
  } catch {
    throw new InvalidURI(text, "not a valid URL");
  }
  if (parsed.protocol === "http:") parsed.protocol = "ws:";
  else if (parsed.protocol === "https:") parsed.protocol = "wss:";
  else if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new InvalidURI(text, `the scheme must be ws:, wss:, http: or https:, not ${parsed.protocol}`);
  }
  if (!parsed.hostname) throw new InvalidURI(text, "no host");
  parsed.hash = "";
  return parsed;
}

/** Whether the global `WebSocket` accepts `{ headers }`: Deno, Bun and Node (undici) do; browsers do not. */
function acceptsHeaders(): boolean {
  const g = globalThis as { Deno?: unknown; Bun?: unknown; process?: { versions?: { node?: string } } };
  return g.Deno !== undefined || g.Bun !== undefined || typeof g.process?.versions?.node === "string";
}

/**
 * A transport over a client `WebSocket`. The standard client API (Deno,
 * browsers, Node) may only send 1000 and 3000–4999; another code (1001,
 * 1009, 1011, 1013) is sent as 1000 with the code at the head of the reason,
 * and reported locally as the code that was asked for.
 */
class ClientTransport extends WebSocketTransport {
  /** This side started the closing handshake. */
  closeStarted = false;
  /** The code and reason asked for, when the runtime refused the code. */
  substituted: CloseInfo | undefined;
  #socket: WebSocket;

  constructor(socket: WebSocket) {
    super(socket);
    this.#socket = socket;
  }

  override close(code: number, reason: string): void {
    this.closeStarted = true;
    try {
      this.#socket.close(code, reason);
    } catch (error) {
      if ((error as { name?: string })?.name !== "InvalidAccessError") throw error;
      this.substituted = { code, reason };
      const tagged = `${code} ${reason}`.trimEnd();
      this.#socket.close(1000, encoder.encode(tagged).byteLength <= 123 ? tagged : reason);
    }
  }
}

/** The HTTP status in a runtime's handshake error message: Deno's "Invalid status code: 401", Bun's "Expected 101 status code: 401". */
function statusFromMessage(message: string): number | undefined {
  const match = /status code:?\s*(\d{3})\b/i.exec(message);
  return match ? Number(match[1]) : undefined;
}

/**
 * Opens a WebSocket connection to `url` and resolves once the handshake is
 * done, with the same {@linkcode Connection} a server handler gets.
 *
 * - `url`: `ws:`, `wss:`, `http:` or `https:` (the last two mean ws/wss);
 *   anything else rejects with {@linkcode InvalidURI}. Relative URLs resolve
 *   against the page in a browser.
 * - A server that answers with another status than 101, or that cannot be
 *   reached, rejects with {@linkcode InvalidHandshake} (`status` on Deno and Bun).
 * - `openTimeout` rejects with a `DOMException` named `"TimeoutError"`;
 *   `signal` rejects with its reason. Either closes the socket.
 * - Limits (`maxMessageSize`, `maxQueue`, `writeLimit`, `closeTimeout`) apply
 *   to incoming messages and `send()` as on a server; see
 *   {@linkcode LimitOptions}. The client does not ping (no `idleTimeout`).
 *
 * The connection's `request` describes the handshake (the http(s) URL and the
 * headers wsport asked the runtime to send; the runtime adds the key, host and
 * its own), `remoteAddress` is the host and port of the URL (the standard API
 * does not tell the resolved IP), and `protocol` is the server's choice.
 *
 * @example Send, receive, close
 * ```ts
 * import { connect, serve } from "../mod.ts";
 *
 * await using server = serve(async (ws) => {
 *   for await (const message of ws) await ws.send(message);
 * }, { hostname: "127.0.0.1", port: 0 });
 *
 * const ws = await connect(`ws://127.0.0.1:${server.addr.port}/`, {
 *   headers: { authorization: "Bearer token" }, // Deno, Bun, Node; not browsers
 *   openTimeout: 5000,
 * });
 * await ws.send("hello");
 * console.log(await ws.recv()); // "hello"
 * await ws.close();
 * ```
 */
export async function connect(url: string | URL, options: ConnectOptions = {}): Promise<Connection> {
  return (await openClient(url, options)).connection;
}

/** A client connection and whether this side started its closing handshake, for `reconnect()`. */
export interface OpenedClient {
  /** The open connection. */
  connection: Connection;
  /** Whether this side started the closing handshake (`close()`, a limit, or the signal). */
  closeStarted(): boolean;
}

/** {@linkcode connect}, also telling who started the close (`reconnect()`'s `initiatedByClient`). */
export async function openClient(url: string | URL, options: ConnectOptions = {}): Promise<OpenedClient> {
  const target = parseURL(url);
  const limits = resolveLimits(options);
  const openTimeout = checkNumber("openTimeout", options.openTimeout ?? DEFAULT_OPEN_TIMEOUT, 0, Infinity);
  const signal = options.signal;
  signal?.throwIfAborted();
  const headers = new Headers(options.headers);
  const hasHeaders = !headers.keys().next().done;
  if (hasHeaders && !acceptsHeaders()) {
    throw new InvalidOption(
      "headers: this runtime's WebSocket cannot send handshake headers (browsers); " +
        "put credentials in the URL or a subprotocol instead",
    );
  }
  const protocols = options.protocols === undefined
    ? []
    : typeof options.protocols === "string"
    ? [options.protocols]
    : [...options.protocols];

  let socket: WebSocket;
  try {
    socket = hasHeaders ? new WebSocket(target, { protocols, headers }) : new WebSocket(target, protocols);
  } catch (error) {
    // The URL was checked above: what is left is a malformed or repeated subprotocol.
    throw new InvalidOption(`protocols: ${(error as Error).message}`);
  }
  socket.binaryType = "arraybuffer";

  // The request describing the handshake, as a server would see it.
  const httpURL = new URL(target);
  httpURL.protocol = target.protocol === "wss:" ? "https:" : "http:";
  const requestHeaders = new Headers({
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-version": "13",
  });
  for (const [name, value] of headers) requestHeaders.set(name, value);
  if (protocols.length > 0) requestHeaders.set("sec-websocket-protocol", protocols.join(", "));
  const request = new Request(httpURL, { headers: requestHeaders });
  const remoteAddress: RemoteAddress = {
    hostname: target.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: Number(target.port) || (target.protocol === "wss:" ? 443 : 80),
  };

  const transport = new ClientTransport(socket);
  const onAbortAfterOpen = () => void connection?.close(1000).catch(noop);
  const context: ConnectionContext = {
    limits,
    counters: createCounters(),
    connectionClosed: () => signal?.removeEventListener("abort", onAbortAfterOpen),
  };
  let connection: Connection | undefined;
  const opening = Promise.withResolvers<OpenedClient>();
  let failure = "";
  let timer: ReturnType<typeof setTimeout> | undefined;

  let gaveUp = false;
  const giveUp = (error: unknown) => {
    if (connection || gaveUp) return;
    gaveUp = true;
    // Rejected before the close: Node's WebSocket fires its close event from inside close().
    opening.reject(error);
    socket.close();
  };
  const onAbortBeforeOpen = () => giveUp(signal!.reason);
  signal?.addEventListener("abort", onAbortBeforeOpen, { once: true });
  if (openTimeout > 0) {
    timer = setTimeout(
      () => giveUp(new DOMException(`opening ${target.href} took over ${openTimeout} ms`, "TimeoutError")),
      openTimeout,
    );
  }

  socket.onopen = () => {
    if (gaveUp) return; // an open that raced the timeout or the signal: the socket is already closing
    connection = new Connection(transport, context, {
      request,
      remoteAddress,
      protocol: socket.protocol,
      data: undefined,
    });
    signal?.addEventListener("abort", onAbortAfterOpen, { once: true });
    opening.resolve({ connection, closeStarted: () => transport.closeStarted });
  };
  socket.onmessage = (event) => connection?.handleMessage(messageOf(event));
  // The attempt failed: the server refused the handshake or could not be reached.
  const failOpen = () => {
    if (connection || gaveUp) return;
    gaveUp = true;
    const status = statusFromMessage(failure);
    const what = status ? `the server answered ${status} instead of 101` : failure || "connection failed";
    opening.reject(
      new InvalidHandshake(`could not open ${target.href}: ${what}`, status, { cause: failure || undefined }),
    );
  };
  socket.onerror = (event) => {
    event.preventDefault();
    if (connection) return; // the close event that follows tells the rest
    // Before the open, an error means the attempt failed, and its message is all a runtime tells. It
    // settles connect() at once: Node 22's WebSocket (undici) fires no close event after it.
    failure = (event as ErrorEvent).message ?? "";
    failOpen();
  };
  socket.onclose = (event) => {
    if (!connection) return failOpen();
    const asked = transport.substituted;
    if (asked && event.code === 1000) connection.handleClose(asked.code, asked.reason);
    else connection.handleClose(closeCodeOf(event), event.reason);
  };

  try {
    return await opening.promise;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbortBeforeOpen);
  }
}
