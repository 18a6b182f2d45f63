/**
 * `Bun.serve` as Bun's own types declare it (bun-types 1.4.5, serve.d.ts), reduced to what the
 * README's Bun blocks use, for scripts/check_docs.mjs: the project is checked with `deno check`,
 * which has no Bun types. The shapes and return types are Bun's, so a block that passes here passes
 * with bun-types.
 */
declare namespace Bun {
  type MaybePromise<T> = T | Promise<T>;
  type TypedArray<TArrayBuffer extends ArrayBufferLike = ArrayBufferLike> =
    | Uint8Array<TArrayBuffer>
    | Uint8ClampedArray<TArrayBuffer>
    | Uint16Array<TArrayBuffer>
    | Uint32Array<TArrayBuffer>
    | Int8Array<TArrayBuffer>
    | Int16Array<TArrayBuffer>
    | Int32Array<TArrayBuffer>
    | BigUint64Array<TArrayBuffer>
    | BigInt64Array<TArrayBuffer>
    | Float16Array<TArrayBuffer>
    | Float32Array<TArrayBuffer>
    | Float64Array<TArrayBuffer>;
  /** Bun's own `BufferSource` (bun.d.ts), not the DOM's. */
  type BufferSource = TypedArray<ArrayBufferLike> | DataView<ArrayBufferLike> | ArrayBufferLike;

  /** Every member, as Bun declares it: a handler typed for fewer members than Bun's socket must still fit. */
  interface ServerWebSocket<T = undefined> {
    send(data: string | BufferSource | Blob, compress?: boolean): number;
    sendText(data: string, compress?: boolean): number;
    sendBinary(data: BufferSource | Blob, compress?: boolean): number;
    close(code?: number, reason?: string): void;
    terminate(): void;
    ping(data?: string | BufferSource | Blob): number;
    pong(data?: string | BufferSource | Blob): number;
    publish(topic: string, data: string | BufferSource | Blob, compress?: boolean): number;
    publishText(topic: string, data: string, compress?: boolean): number;
    publishBinary(topic: string, data: BufferSource | Blob, compress?: boolean): number;
    subscribe(topic: string): boolean;
    unsubscribe(topic: string): boolean;
    isSubscribed(topic: string): boolean;
    readonly subscriptions: string[];
    cork<R = unknown>(callback: (ws: ServerWebSocket<T>) => R): R;
    readonly remoteAddress: string;
    readonly readyState: 0 | 1 | 2 | 3;
    binaryType?: "nodebuffer" | "arraybuffer" | "uint8array" | "blob";
    data: T;
    getBufferedAmount(): number;
    pause(): void;
    resume(): void;
    readonly isPaused: boolean;
  }

  interface WebSocketHandler<T> {
    data?: T;
    message?(ws: ServerWebSocket<T>, message: string | Uint8Array<ArrayBuffer>): void | Promise<void>;
    open?(ws: ServerWebSocket<T>): void | Promise<void>;
    drain?(ws: ServerWebSocket<T>): void | Promise<void>;
    close?(ws: ServerWebSocket<T>, code: number, reason: string): void | Promise<void>;
    maxPayloadLength?: number;
    backpressureLimit?: number;
    closeOnBackpressureLimit?: boolean;
    idleTimeout?: number;
    publishToSelf?: boolean;
    sendPings?: boolean;
    perMessageDeflate?: boolean | { compress?: boolean; decompress?: boolean };
  }

  interface Server<WebSocketData = undefined> {
    readonly port: number;
    readonly hostname: string;
    upgrade(request: Request, options?: { headers?: HeadersInit; data?: WebSocketData }): boolean;
    stop(closeActiveConnections?: boolean): Promise<void>;
  }

  interface HostnamePortServeOptions {
    hostname?: string;
    port?: string | number;
  }

  /** Without `websocket`, `fetch` must answer every request. */
  interface FetchOptions<WebSocketData> extends HostnamePortServeOptions {
    fetch(this: Server<WebSocketData>, req: Request, server: Server<WebSocketData>): MaybePromise<Response>;
    websocket?: undefined;
  }

  /** With `websocket`, `fetch` may return nothing after `server.upgrade()`. */
  interface FetchWithWebSocketOptions<WebSocketData> extends HostnamePortServeOptions {
    fetch(
      this: Server<WebSocketData>,
      req: Request,
      server: Server<WebSocketData>,
    ): MaybePromise<Response | void | undefined>;
    websocket: WebSocketHandler<WebSocketData>;
  }

  function serve<WebSocketData = undefined>(
    options: FetchOptions<WebSocketData> | FetchWithWebSocketOptions<WebSocketData>,
  ): Server<WebSocketData>;
}
