/**
 * The ws engine: `node:http` and the `ws` package (`noServer` and
 * `handleUpgrade`) translated to core events. It is what `serve()` runs on
 * Node, and Deno's default engine (Deno runs it through its Node layer).
 *
 * What it guarantees beyond the runtimes' own WebSockets:
 * - memory bounded against any peer: ws refuses a frame or a fragmented
 *   message over `maxMessageSize` from its header (1009), before buffering it;
 * - inbound backpressure: the transport can pause reading, so a full queue
 *   holds the peer back by TCP instead of closing with 1013;
 * - protocol errors close with the RFC's code (1002, 1007), and
 *   `terminate()` drops TCP;
 * - a message handed to many connections by `broadcast()` or a topic is
 *   framed once, and the same bytes are written to each socket.
 *
 * Node's built-ins are reached through `process.getBuiltinModule` and `ws` is
 * imported when a server starts listening, so that importing wsport does not
 * pull either into a browser or Workers bundle, and on Deno does not need the
 * environment permission ws asks for (`WS_NO_BUFFER_UTIL`) unless this engine runs.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import type { IncomingMessage, Server as HttpServer, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type {
  Adapter,
  FetchHandler,
  ListenAddress,
  Listener,
  ListenOptions,
  PendingUpgrade,
} from "../adapter.ts";
import type { Connection, RemoteAddress } from "../connection.ts";
import type { ResolvedLimits } from "../options.ts";
import { sharedSend } from "../shared_send.ts";
import type { OutgoingData, Transport } from "../transport.ts";
import type { WsModule, WsServer, WsSocket } from "./ws_types.ts";

interface NodeProcess {
  getBuiltinModule(id: string): unknown;
  binding(name: string): unknown;
}

/** The Node built-ins this engine uses, loaded on first use. */
interface Builtins {
  Buffer: typeof Buffer;
  http: typeof import("node:http");
  net: typeof import("node:net");
  stream: typeof import("node:stream");
  util: typeof import("node:util");
  process: { nextTick(callback: () => void): void };
}

let builtins: Builtins | undefined;

function node(): Builtins {
  if (builtins) return builtins;
  const process = (globalThis as unknown as { process?: NodeProcess }).process;
  if (typeof process?.getBuiltinModule !== "function") {
    throw new Error("wsport: the ws engine needs Node's built-in modules (Node 22.3+, Deno 2, Bun)");
  }
  const load = <T>(id: string) => process.getBuiltinModule(id) as T;
  return builtins = {
    Buffer: load<typeof import("node:buffer")>("node:buffer").Buffer,
    http: load("node:http"),
    net: load("node:net"),
    stream: load("node:stream"),
    util: load("node:util"),
    process: load("node:process"),
  };
}

let wsModule: Promise<WsModule> | undefined;

/**
 * Whether `ws` can be imported from here (on Deno it must be in the import map
 * or package.json of the project, or wsport come from JSR, which maps it to
 * npm). Checked before `serve()` picks this engine: the import itself happens
 * later, when the server listens.
 */
export function wsResolvable(): boolean {
  try {
    import.meta.resolve("ws");
    return true;
  } catch {
    return false;
  }
}

/**
 * Imports `ws` once, by the URL `import.meta.resolve` gives. A literal `import("ws")` would make
 * Deno fetch ws for every program that imports wsport (`deno run` and `deno install` follow a
 * dynamic import they can read), while only this engine needs it; `import.meta.resolve` is not
 * followed, and `deno publish` still rewrites its literal to `npm:ws@…` for JSR. (On Deno, ws reads
 * WS_NO_BUFFER_UTIL when it loads, which needs the env permission.)
 */
function loadWs(): Promise<WsModule> {
  return wsModule ??= (async () => {
    const module: WsModule & { default?: WsModule } = await import(import.meta.resolve("ws"));
    return module.WebSocketServer ? module : module.default!;
  })();
}

// ---------------------------------------------------------------- framing

/** Payloads up to this size are copied behind their header: one write per frame. */
const MERGE_LIMIT = 16 * 1024;

/** A frame ready to write: one buffer, or a header and the payload it precedes. */
type Frame = Buffer | [Buffer, Buffer];

function headerSize(length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10;
}

/** Writes a final, unmasked frame header for `opcode` and `length`; returns its size. */
function writeHeader(target: Buffer, opcode: number, length: number): number {
  target[0] = 0x80 | opcode;
  if (length < 126) {
    target[1] = length;
    return 2;
  }
  if (length < 65536) {
    target[1] = 126;
    target.writeUInt16BE(length, 2);
    return 4;
  }
  target[1] = 127;
  target.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
  target.writeUInt32BE(length >>> 0, 6);
  return 10;
}

/** Frames a message as a server sends it (RFC 6455 §5.2: FIN, no mask). */
function frame(data: OutgoingData): Frame {
  const B = node().Buffer;
  if (typeof data === "string") {
    if (data.length <= MERGE_LIMIT / 3) {
      // At most three bytes per UTF-16 unit: small enough to encode in place behind the header.
      const length = B.byteLength(data);
      const target = B.allocUnsafe(headerSize(length) + length);
      target.write(data, writeHeader(target, 1, length));
      return target;
    }
    const payload = B.from(data);
    const head = B.allocUnsafe(headerSize(payload.length));
    writeHeader(head, 1, payload.length);
    return [head, payload];
  }
  const length = data.byteLength;
  if (length <= MERGE_LIMIT) {
    const target = B.allocUnsafe(headerSize(length) + length);
    const offset = writeHeader(target, 2, length);
    // Copied from a Uint8Array over the bytes: no Buffer made for the payload.
    const bytes = data instanceof Uint8Array
      ? data
      : ArrayBuffer.isView(data)
      ? new Uint8Array(data.buffer, data.byteOffset, length)
      : new Uint8Array(data);
    target.set(bytes, offset);
    return target;
  }
  const payload = ArrayBuffer.isView(data)
    ? B.from(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength)
    : B.from(data);
  const head = B.allocUnsafe(headerSize(length));
  writeHeader(head, 2, length);
  return [head, payload];
}

/**
 * What one socket may gather while corked: past it, what it holds is written at once. Above the
 * size of a few frames, one system call more or less no longer shows, and a socket must not hold
 * past `writeLimit.high` (64 KiB by default) only because it is corked, or `send()` would wait.
 */
const CORK_LIMIT = 16 * 1024;

/** Sockets corked by `write` in this turn of the event loop: uncorked once its microtasks have run. */
const corked: Duplex[] = [];

function uncorkAll(): void {
  for (let i = 0; i < corked.length; i++) corked[i].uncork();
  corked.length = 0;
}

/**
 * Writes a frame. A handler answers each message of a read in a microtask
 * of the same turn (`for await` … `await ws.send`): the socket is corked at
 * its first frame of the turn and uncorked by a `nextTick`, which runs once
 * the microtasks are done, so that those frames go out in one `writev`
 * instead of one system call each (the most of the CPU an echo costs).
 */
function write(socket: Duplex, framed: Frame): void {
  if (socket.writableCorked === 0 && !socket.writableNeedDrain) {
    socket.cork();
    if (corked.push(socket) === 1) builtins!.process.nextTick(uncorkAll);
  }
  if (Array.isArray(framed)) {
    socket.write(framed[0]);
    socket.write(framed[1]);
  } else {
    socket.write(framed);
  }
  if (socket.writableLength >= CORK_LIMIT && socket.writableCorked > 0) socket.uncork();
}

// ---------------------------------------------------------------- transport

/** Where a transport stands in the idle sweep (see `WsListener.#sweep`). */
const ACTIVE = 0, SILENT = 1, PINGED = 2, DROPPED = 3;

/** The transport, as stored on the ws socket and on the TCP socket for the shared listeners. */
const kTransport = Symbol("wsport.transport");
type Holder = { [kTransport]: WsTransport };

/**
 * One ws socket as a core transport. The event listeners are shared
 * functions (the emitter is `this`), not closures: this object and what it
 * holds are what an idle connection costs.
 */
class WsTransport implements Transport {
  get emitsDrain(): boolean {
    return true;
  }
  get enforcesMaxMessageSize(): boolean {
    return true;
  }
  readonly ws: WsSocket;
  readonly socket: Duplex;
  readonly listener: WsListener;
  connection: Connection | undefined;
  /** ACTIVE, SILENT, PINGED or DROPPED. */
  idle = ACTIVE;
  /** Whether permessage-deflate was negotiated: then ws frames (and compresses) each message. */
  readonly compressing: boolean;
  /** Why ws failed the connection, if it did. */
  error: (Error & { code?: string }) | undefined;
  /**
   * The close frame this side sent, once it has: reported as the close when the peer answers, as on
   * Bun and Deno, whatever reason the answer carries (Node's own WebSocket client answers without one).
   */
  sent: { code: number; reason: string } | undefined;
  /** Whether reading is paused (a pong cannot be read then: the idle sweep leaves it alone). */
  paused = false;

  constructor(ws: WsSocket, socket: Duplex, listener: WsListener) {
    this.ws = ws;
    this.socket = socket;
    this.listener = listener;
    this.compressing = ws.extensions !== "";
  }

  send(data: OutgoingData): void {
    const ws = this.ws;
    if (ws.readyState !== 1) return;
    if (this.compressing) return ws.send(data);
    // Without compression ws's sender writes every frame at once, in order, so a
    // frame built here can go straight to the socket, and one broadcast builds one.
    let framed: Frame;
    if (!sharedSend.active) framed = frame(data);
    else if (sharedSend.data === data) framed = sharedSend.frame as Frame;
    else {
      framed = frame(data);
      sharedSend.data = data;
      sharedSend.frame = framed;
    }
    write(this.socket, framed);
  }
  close(code: number, reason: string): void {
    this.sent = { code, reason };
    this.ws.close(code, reason);
  }
  terminate(): boolean {
    // What this turn wrote goes to the kernel first, as it would have without the cork.
    if (this.socket.writableCorked > 0) this.socket.uncork();
    this.ws.terminate();
    return true;
  }
  get bufferedAmount(): number {
    // A destroyed socket has dropped what it held: none of it was written, so a waiting send()
    // must not see an empty buffer in the moment before the close event reaches the connection.
    return this.socket.destroyed ? Infinity : this.ws.bufferedAmount;
  }
  pause(): void {
    this.paused = true;
    this.ws.pause();
  }
  resume(): void {
    this.paused = false;
    this.idle = ACTIVE;
    this.ws.resume();
  }
}

// ---------------------------------------------------------------- inbound binary

/** Binary messages up to this size are copied into shared slabs (see `bytesOf`). */
const SLAB_COPY_LIMIT = 2048;
const SLAB_SIZE = 16 * 1024;
let slab = new ArrayBuffer(0);
let slabUsed = 0;

/**
 * A binary message as the handler receives it, from the Buffer ws hands over
 * (a view of the bytes read from the socket, unmasked in place, or the
 * fragments ws joined). The handler may keep it, so it must not keep much
 * more than itself alive:
 * - one that fills at least a quarter of its buffer is handed out as a view of it, uncopied;
 * - a small one is copied: one of at most 64 bytes into its own buffer (V8 keeps it on its heap), a larger
 *   one into a 16 KiB slab shared with the messages after it (what Node's `Buffer` pool does), so that
 *   no `ArrayBuffer` is made per message: making one costs more than the rest of a 1 KiB echo's own work.
 *   A kept message then keeps at most its slab.
 * It is a plain `Uint8Array` (not a Buffer, whose `slice` does not copy), as on Deno and Bun.
 */
function bytesOf(data: Buffer): Uint8Array {
  const length = data.byteLength;
  if (data.buffer.byteLength <= 4 * length) return new Uint8Array(data.buffer, data.byteOffset, length);
  if (length <= 64 || length > SLAB_COPY_LIMIT) return new Uint8Array(data);
  if (slabUsed + length > slab.byteLength) {
    slab = new ArrayBuffer(SLAB_SIZE);
    slabUsed = 0;
  }
  const bytes = new Uint8Array(slab, slabUsed, length);
  bytes.set(data);
  // Aligned to 8, so that the message can be viewed as any typed array its length allows.
  slabUsed += (length + 7) & ~7;
  return bytes;
}

// ---------------------------------------------------------------- socket events

function onMessage(this: WsSocket, data: Buffer, isBinary: boolean): void {
  const transport = (this as unknown as Holder)[kTransport];
  transport.idle = ACTIVE;
  // Text comes as a Buffer ws has checked for UTF-8.
  transport.connection!.handleMessage(isBinary ? bytesOf(data) : data.toString());
}

function onPong(this: WsSocket): void {
  (this as unknown as Holder)[kTransport].idle = ACTIVE;
}

function onError(this: WsSocket, error: Error & { code?: string }): void {
  // ws has sent its close frame (1002, 1007, 1009) and will end TCP; the close event follows.
  (this as unknown as Holder)[kTransport].error ??= error;
}

function onDrain(this: Duplex): void {
  (this as unknown as Holder)[kTransport].connection?.handleDrain();
}

/**
 * ws ends the socket once close frames went both ways, then waits for the
 * peer's FIN; its `end` handler then ends the socket and its parser again,
 * each a Node error with a stack (about 12 µs on Node, 50 µs on Deno: most
 * of what a connection's close cost on Deno). Closing TCP here, as the
 * server should first (RFC 6455 §7.1.1), skips that: a socket that is not
 * open any more emits no `end`. What the peer sent after its close frame
 * (nothing, from a peer that keeps the protocol) is not read.
 */
function onFinish(this: Duplex): void {
  this.destroy();
}

function onClose(this: WsSocket, code: number, reason: Buffer): void {
  const transport = (this as unknown as Holder)[kTransport];
  transport.listener.transports.delete(transport);
  const connection = transport.connection!;
  const error = transport.error;
  if (transport.idle === DROPPED) {
    connection.handleLimitClose("idleTimeout");
    return connection.handleClose(1006, "no pong within idleTimeout");
  }
  if (
    error?.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" ||
    error?.code === "WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH"
  ) {
    // Refused from the frame header: the peer got 1009 and nothing was buffered.
    connection.handleLimitClose("messageTooBig");
    return connection.handleClose(1009, "message too big");
  }
  // A failed connection (no valid close frame from the peer) is 1006, with ws's reason.
  if (error) return connection.handleClose(1006, error.message);
  const sent = transport.sent;
  if (sent && code !== 1006) return connection.handleClose(sent.code, sent.reason);
  connection.handleClose(code, reason.toString());
}

// ---------------------------------------------------------------- requests

/** What the adapter passes as the fetch context: the raw request, and how to answer it. */
interface NodeContext {
  readonly req: IncomingMessage;
  readonly listener: WsListener;
  /** Set for requests that came as an HTTP upgrade. */
  readonly socket?: Duplex;
  readonly head?: Buffer;
}

/** A standard `Request` for `req`: URL and headers, and the body stream for methods that have one. */
function toRequest(req: IncomingMessage, listener: WsListener, withBody: boolean): Request {
  const raw = req.rawHeaders;
  const headers = new Headers();
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i], raw[i + 1]);
  const target = req.url ?? "/";
  const host = req.headers.host ?? `${listener.addr.hostname}:${listener.addr.port}`;
  // Origin-form ("/path") is the norm; absolute-form is allowed by RFC 9112 and kept as is.
  const url = target.startsWith("/") ? `http://${host}${target}` : target;
  const method = req.method ?? "GET";
  if (!withBody || method === "GET" || method === "HEAD") return new Request(url, { method, headers });
  const body = node().stream.Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
  return new Request(url, { method, headers, body, duplex: "half" } as RequestInit);
}

function noop(): void {}

/** Answers an upgrade request with `response` over the raw socket, then closes it. */
async function writeRawResponse(socket: Duplex, response: Response): Promise<void> {
  let body: Uint8Array;
  try {
    body = new Uint8Array(await response.arrayBuffer());
  } catch {
    body = new Uint8Array(0);
  }
  const { Buffer, http } = node();
  const lines = [
    `HTTP/1.1 ${response.status} ${response.statusText || http.STATUS_CODES[response.status] || ""}`,
  ];
  for (const [name, value] of response.headers) {
    if (name !== "content-length" && name !== "connection" && name !== "transfer-encoding") {
      lines.push(`${name}: ${value}`);
    }
  }
  lines.push(`content-length: ${body.byteLength}`, "connection: close", "", "");
  if (!socket.writable) return void socket.destroy();
  socket.once("finish", () => socket.destroy());
  socket.end(Buffer.concat([Buffer.from(lines.join("\r\n"), "latin1"), body]));
}

/** Answers a plain HTTP request with `response`, streaming its body. */
async function writeResponse(req: IncomingMessage, res: ServerResponse, response: Response): Promise<void> {
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  for (const [name, value] of response.headers) {
    if (name !== "set-cookie") res.setHeader(name, value);
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.setHeader("set-cookie", cookies);
  if (!response.body || req.method === "HEAD") {
    await response.body?.cancel();
    return void res.end();
  }
  const reader = response.body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (res.destroyed) return void await reader.cancel();
      if (!res.write(value)) {
        await new Promise<void>((resolve) => {
          res.once("drain", resolve);
          res.once("close", resolve);
        });
      }
    }
    res.end();
  } catch {
    res.destroy();
  }
}

function plainResponse(status: number, text: string): Response {
  return new Response(`${status} ${text}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

// ---------------------------------------------------------------- listener

/** The upgrade being completed by ws right now: handleUpgrade runs its hooks synchronously. */
let current: PendingUpgrade | undefined;

/** permessage-deflate settings when `compression` is on (see docs/runtimes.md, "Compression", for their cost). */
const DEFLATE = {
  // Each compressing connection keeps a deflate and an inflate stream: these bound their size.
  serverMaxWindowBits: 13,
  zlibDeflateOptions: { level: 3, memLevel: 7 },
  // Messages under 1 KiB are sent as they are: compressing them costs more than it saves.
  threshold: 1024,
  concurrencyLimit: 10,
};

/**
 * Binds a listening TCP handle at once, so that `serve()` knows its port
 * before it returns as on Deno and Bun (`net.Server.listen` resolves even an
 * IP address through `dns.lookup` first, and binds a tick later). Returns
 * `undefined` where that is not possible (a host name other than localhost).
 */
function bindNow(hostname: string, port: number): { handle: unknown; addr: ListenAddress } | undefined {
  const { net, util } = node();
  const host = hostname === "localhost" ? "127.0.0.1" : hostname;
  const family = net.isIP(host);
  if (family === 0) return undefined;
  interface TcpHandle {
    bind(host: string, port: number): number;
    bind6(host: string, port: number, flags: number): number;
    listen(backlog: number): number;
    getsockname(out: { address?: string; port?: number }): number;
    close(): void;
  }
  let tcp: { TCP: new (type: number) => TcpHandle; constants: { SERVER: number } };
  try {
    tcp = (globalThis as unknown as { process: NodeProcess }).process.binding("tcp_wrap") as typeof tcp;
  } catch {
    return undefined;
  }
  const handle = new tcp.TCP(tcp.constants.SERVER);
  let status = family === 6 ? handle.bind6(host, port, 0) : handle.bind(host, port);
  if (status === 0) status = handle.listen(511);
  if (status !== 0) {
    handle.close();
    const code = util.getSystemErrorName(status);
    throw Object.assign(new Error(`listen ${code}: ${host}:${port}`), {
      code,
      errno: status,
      syscall: "listen",
    });
  }
  const out: { address?: string; port?: number } = {};
  handle.getsockname(out);
  return { handle, addr: { hostname: out.address ?? host, port: out.port ?? port } };
}

/** One listening server of the ws engine. */
class WsListener implements Listener {
  readonly addr: ListenAddress;
  /** Open ws connections, for the idle sweep and for `stop()`. */
  readonly transports = new Set<WsTransport>();
  /** TCP sockets between the `upgrade` event and their 101 or refusal. */
  readonly upgrading = new Set<Duplex>();
  wss: WsServer | undefined;
  readonly #ready: Promise<void>;
  readonly #server: HttpServer;
  readonly #fetch: FetchHandler;
  readonly #sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(
    fetch: FetchHandler,
    options: ListenOptions,
    limits: ResolvedLimits,
    onListen: (addr: ListenAddress) => void,
  ) {
    this.#fetch = fetch;
    const { http } = node();
    const server = this.#server = http.createServer();
    server.on("request", (req, res) => this.#request(req, res));
    server.on("upgrade", (req, socket, head) => this.#upgradeRequest(req, socket, head));
    server.on("error", (error) => console.error("wsport: HTTP server error:", error));
    const hostname = options.hostname ?? "localhost";
    const port = options.port ?? 8000;
    const bound = bindNow(hostname, port);
    if (bound) {
      server.listen(bound.handle as never);
      this.addr = bound.addr;
      onListen(this.addr);
    } else {
      // A host name to resolve: the port is known once listening (0 stays 0 until then).
      const addr = this.addr = { hostname, port };
      server.listen(port, hostname, () => {
        const info = server.address();
        if (info && typeof info === "object") {
          Object.assign(addr, { hostname: info.address, port: info.port });
        }
        onListen(addr);
      });
    }
    this.#ready = loadWs().then(({ WebSocketServer }) => {
      const wss = new WebSocketServer({
        noServer: true,
        clientTracking: false,
        maxPayload: limits.maxMessageSize,
        perMessageDeflate: limits.compression ? DEFLATE : false,
        handleProtocols: () => current?.protocol || false,
        // The core drops a peer that does not answer a close frame after closeTimeout; ws must not do it first.
        closeTimeout: limits.closeTimeout + 1000,
        skipUTF8Validation: false,
      });
      wss.on("headers", (lines) => {
        for (const [name, value] of current!.responseHeaders) lines.push(`${name}: ${value}`);
      });
      this.wss = wss;
    });
    this.#ready.catch((error) =>
      console.error("wsport: the ws engine could not load the ws package:", error)
    );
    if (limits.idleTimeout > 0) {
      this.#sweeper = setInterval(() => this.#sweep(), Math.max(50, limits.idleTimeout / 2));
    }
  }

  /**
   * Every half idleTimeout: a connection that was silent for a whole period
   * is pinged; one still silent a period later (no pong) is dropped. Any
   * message or pong makes it active again.
   */
  #sweep(): void {
    for (const transport of this.transports) {
      // A paused connection is waiting for its handler, not for its peer.
      if (transport.ws.readyState !== 1 || transport.paused) continue;
      if (transport.idle === ACTIVE) transport.idle = SILENT;
      else if (transport.idle === SILENT) {
        transport.idle = PINGED;
        transport.ws.ping();
      } else if (transport.idle === PINGED) {
        transport.idle = DROPPED;
        transport.ws.terminate();
      }
    }
  }

  #request(req: IncomingMessage, res: ServerResponse): void {
    let request: Request;
    try {
      request = toRequest(req, this, true);
    } catch {
      return void writeResponse(req, res, plainResponse(400, "Bad Request"));
    }
    const context: NodeContext = { req, listener: this };
    let result;
    try {
      result = this.#fetch(request, context);
    } catch (error) {
      return this.#failed(error, (response) => writeResponse(req, res, response));
    }
    Promise.resolve(result).then(
      (response) => writeResponse(req, res, response ?? plainResponse(500, "Internal Server Error")),
      (error) => this.#failed(error, (response) => writeResponse(req, res, response)),
    );
  }

  #upgradeRequest(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Until ws takes the socket over, a reset must not become an unhandled error.
    socket.on("error", noop);
    this.upgrading.add(socket);
    if (this.wss) return this.#upgrade(req, socket, head);
    this.#ready.then(
      () => this.#upgrade(req, socket, head),
      () => this.#answerUpgrade(socket, plainResponse(500, "Internal Server Error")),
    );
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    let request: Request;
    try {
      request = toRequest(req, this, false);
    } catch {
      return this.#answerUpgrade(socket, plainResponse(400, "Bad Request"));
    }
    const context: NodeContext = { req, listener: this, socket, head };
    let result;
    try {
      result = this.#fetch(request, context);
    } catch (error) {
      return this.#failed(error, (response) => this.#answerUpgrade(socket, response));
    }
    if (result instanceof Promise) {
      result.then(
        (response) => this.#answerUpgrade(socket, response),
        (error) => this.#failed(error, (response) => this.#answerUpgrade(socket, response)),
      );
    } else {
      this.#answerUpgrade(socket, result);
    }
  }

  /** Writes a refusal; a 101 means the socket was upgraded (or ws answered it). */
  #answerUpgrade(socket: Duplex, response: Response): void {
    if (response.status === 101) return;
    this.upgrading.delete(socket);
    void writeRawResponse(socket, response);
  }

  #failed(error: unknown, answer: (response: Response) => void): void {
    console.error("wsport: request failed:", error);
    answer(plainResponse(500, "Internal Server Error"));
  }

  /** Completes an upgrade the core accepted. */
  upgrade(context: NodeContext & { socket: Duplex; head: Buffer }, pending: PendingUpgrade): void {
    const { req, socket, head } = context;
    this.upgrading.delete(socket);
    socket.removeListener("error", noop);
    // The core has validated the handshake (RFC 6455 §4.2.1), which allows "Upgrade: h2c, websocket";
    // ws checks for the single token.
    req.headers.upgrade = "websocket";
    let opened = false;
    current = pending;
    try {
      this.wss!.handleUpgrade(req, socket, head, (ws) => {
        opened = true;
        this.#open(ws, socket, pending);
      });
    } finally {
      current = undefined;
    }
    // ws refused the handshake itself (and answered 400), or the peer had left.
    if (!opened) pending.abandon();
  }

  #open(ws: WsSocket, socket: Duplex, pending: PendingUpgrade): void {
    const transport = new WsTransport(ws, socket, this);
    (ws as unknown as Holder)[kTransport] = transport;
    (socket as unknown as Holder)[kTransport] = transport;
    ws.on("message", onMessage);
    ws.on("close", onClose);
    ws.on("error", onError);
    ws.on("pong", onPong);
    socket.on("drain", onDrain);
    socket.on("finish", onFinish);
    this.transports.add(transport);
    transport.connection = pending.accept(transport);
  }

  async stop(): Promise<void> {
    clearInterval(this.#sweeper);
    const server = this.#server;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const transport of this.transports) transport.ws.terminate();
    for (const socket of this.upgrading) socket.destroy();
    server.closeAllConnections?.();
    await closed;
  }
}

/**
 * What `fetch` answers once ws has written the 101 itself: a 101 `Response`.
 * Node's `Response` refuses statuses below 200, so the status is set on the object.
 */
function switchedProtocols(): Response {
  const response = new Response(null);
  Object.defineProperty(response, "status", { value: 101 });
  return response;
}

function remoteAddress(_request: Request, context: unknown): RemoteAddress {
  const socket = (context as NodeContext | undefined)?.req.socket;
  return { hostname: socket?.remoteAddress ?? "", port: socket?.remotePort ?? 0 };
}

/** The ws engine's adapter: `node:http` and the `ws` package. */
export const wsAdapter: Adapter = {
  runtime: "ws",
  remoteAddress,
  upgrade(_request, context, pending) {
    const ctx = context as NodeContext | undefined;
    if (!ctx?.socket || !ctx.head || !ctx.listener?.wss) {
      // Not an HTTP upgrade as node:http saw it (no Connection: upgrade), or not from this engine's listener.
      pending.abandon();
      return plainResponse(400, "Bad Request: the upgrade failed");
    }
    ctx.listener.upgrade(ctx as NodeContext & { socket: Duplex; head: Buffer }, pending);
    return switchedProtocols();
  },
  listen(fetch, options, limits, onListen) {
    return new WsListener(fetch, options, limits, onListen);
  },
};
