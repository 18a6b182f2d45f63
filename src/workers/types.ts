/**
 * The parts of the Cloudflare Workers runtime API that wsport uses, declared
 * here so that the project type-checks with `deno check` without
 * `@cloudflare/workers-types` (whose globals clash with Deno's). Only what
 * wsport touches is declared; the real objects have more.
 *
 * @module
 */
import { isSendableCode } from "../errors.ts";

/**
 * A WebSocket as the Workers runtime (workerd) gives it: a standard-ish
 * `WebSocket` with `accept()` and, for hibernation, attachments. It has no
 * `bufferedAmount` (workerd does not implement it; cloudflare/workerd#988).
 *
 * @example The server end of a pair
 * ```ts ignore
 * import type { WorkersWebSocket } from "./types.ts";
 *
 * const pair = new WebSocketPair();
 * const server: WorkersWebSocket = pair[1];
 * server.accept();
 * server.send("hello");
 * ```
 */
export interface WorkersWebSocket {
  /** Starts delivering events to this isolate (not for hibernatable sockets). */
  accept(): void;
  /** Queues a text or binary frame. */
  send(data: string | ArrayBuffer | ArrayBufferView): void;
  /** Starts (or answers) the closing handshake. */
  close(code?: number, reason?: string): void;
  /** Registers a listener for `message`, `close` or `error`. */
  addEventListener(type: "message", listener: (event: { data: string | ArrayBuffer | Blob }) => void): void;
  /** Registers a listener for `message`, `close` or `error`. */
  addEventListener(
    type: "close",
    listener: (event: { code: number; reason: string; wasClean: boolean }) => void,
  ): void;
  /** Registers a listener for `message`, `close` or `error`. */
  addEventListener(type: "error", listener: (event: { message?: string; error?: unknown }) => void): void;
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** How binary messages are delivered; workerd's default depends on the compatibility date. */
  binaryType?: string;
  /** Absent in workerd; present only if a future runtime implements it. */
  readonly bufferedAmount?: number;
  /** Stores a structured-cloneable value with the socket; it survives hibernation. */
  serializeAttachment(value: unknown): void;
  /** The value last stored with {@linkcode WorkersWebSocket.serializeAttachment}. */
  deserializeAttachment(): unknown;
}

/**
 * The two ends made by `new WebSocketPair()`: `0` goes to the client in the
 * 101 response, `1` stays in the Worker.
 *
 * @example
 * ```ts ignore
 * import type { WorkersWebSocketPair } from "./types.ts";
 * const { 0: client, 1: server }: WorkersWebSocketPair = new WebSocketPair();
 * ```
 */
export interface WorkersWebSocketPair {
  /** The client end, returned in the 101 response. */
  0: WorkersWebSocket;
  /** The server end, used by the Worker. */
  1: WorkersWebSocket;
}

/**
 * The state a Durable Object receives in its constructor (`ctx` in
 * Cloudflare's documentation), as far as wsport's rooms use it.
 *
 * @example
 * ```ts ignore
 * import type { DurableObjectStateLike } from "./types.ts";
 * class Counter {
 *   constructor(readonly state: DurableObjectStateLike) {}
 *   count(): number { return this.state.getWebSockets().length; }
 * }
 * ```
 */
export interface DurableObjectStateLike {
  /** Accepts a socket for the WebSocket Hibernation API, with up to 10 tags. */
  acceptWebSocket(ws: WorkersWebSocket, tags?: string[]): void;
  /** The hibernatable sockets of this object, those with `tag` if given. */
  getWebSockets(tag?: string): WorkersWebSocket[];
  /** Keeps the object alive until `promise` settles. */
  waitUntil?(promise: Promise<unknown>): void;
}

/**
 * A Durable Object namespace binding (`env.ROOMS`), as far as wsport uses it.
 *
 * @example Forward a request to the room named in the path
 * ```ts ignore
 * import type { DurableObjectNamespaceLike } from "./types.ts";
 * function route(rooms: DurableObjectNamespaceLike, name: string, request: Request): Promise<Response> {
 *   return rooms.get(rooms.idFromName(name)).fetch(request);
 * }
 * ```
 */
export interface DurableObjectNamespaceLike {
  /** The id of the object named `name` (the same name gives the same object). */
  idFromName(name: string): unknown;
  /** A stub to talk to the object with id `id`. */
  get(id: unknown): DurableObjectStubLike;
}

/**
 * A stub of a Durable Object: its `fetch` reaches the object's `fetch`.
 *
 * @example
 * ```ts ignore
 * import type { DurableObjectStubLike } from "./types.ts";
 * declare const stub: DurableObjectStubLike;
 * const response = await stub.fetch("https://room/info");
 * ```
 */
export interface DurableObjectStubLike {
  /** Sends a request to the object. */
  fetch(input: Request | string, init?: RequestInit): Promise<Response>;
}

/**
 * The third argument of a Worker's `fetch` (`ctx`).
 *
 * @example
 * ```ts ignore
 * import type { ExecutionContextLike } from "./types.ts";
 * function later(ctx: ExecutionContextLike, work: Promise<void>): void {
 *   ctx.waitUntil(work);
 * }
 * ```
 */
export interface ExecutionContextLike {
  /** Keeps the request's context alive until `promise` settles. */
  waitUntil(promise: Promise<unknown>): void;
}

/** The `WebSocketPair` global of the Workers runtime, if this is one. */
export function webSocketPairConstructor(): (new () => WorkersWebSocketPair) | undefined {
  const pair = (globalThis as { WebSocketPair?: new () => WorkersWebSocketPair }).WebSocketPair;
  return typeof pair === "function" ? pair : undefined;
}

/**
 * Answers a peer's close frame. From the compatibility date 2026-04-07
 * (`web_socket_auto_reply_to_close`) workerd answers by itself; before it,
 * the Worker must, or the peer sees 1006. A second close is refused by the
 * runtime and ignored here (as is one when this side started the close).
 * The adapter and the rooms both answer with it.
 */
export function answerClose(socket: WorkersWebSocket, code: number, reason: string): void {
  try {
    if (isSendableCode(code)) socket.close(code, reason);
    else socket.close();
  } catch {
    // Already answered (by the runtime or by an earlier close).
  }
}
