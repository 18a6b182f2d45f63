/**
 * The parts of the `ws` package the ws engine uses, declared here so that
 * the project type-checks without `@types/ws`.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";

/** A server-side `ws` WebSocket, as far as wsport uses it. */
export interface WsSocket {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** Bytes queued in the socket and in ws's sender. */
  readonly bufferedAmount: number;
  /** The negotiated extensions, "" for none. */
  readonly extensions: string;
  /** Sends a data frame (compressed when permessage-deflate was negotiated). */
  send(data: string | ArrayBuffer | ArrayBufferView): void;
  /** Starts the closing handshake. */
  close(code?: number, reason?: string): void;
  /** Drops TCP. */
  terminate(): void;
  /** Sends a ping. */
  ping(): void;
  /** Stops reading the socket. */
  pause(): void;
  /** Resumes reading the socket. */
  resume(): void;
  /** A data message arrived, as a Buffer (binaryType "nodebuffer", the default); text with `isBinary` false. */
  on(event: "message", listener: (this: WsSocket, data: Buffer, isBinary: boolean) => void): this;
  /** The connection closed: the peer's code (1005 none, 1006 no close frame) and reason. */
  on(event: "close", listener: (this: WsSocket, code: number, reason: Buffer) => void): this;
  /** A protocol error or a limit: ws then closes with the error's status code. */
  on(event: "error", listener: (this: WsSocket, error: Error & { code?: string }) => void): this;
  /** The peer answered a ping. */
  on(event: "pong", listener: (this: WsSocket) => void): this;
}

/** `ws`'s `WebSocketServer` in `noServer` mode, as far as wsport uses it. */
export interface WsServer {
  /** Completes the handshake on `socket` and calls `done` synchronously, or answers an error itself. */
  handleUpgrade(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    done: (ws: WsSocket) => void,
  ): void;
  /** Lets the 101 response's header lines be added to before they are written. */
  on(event: "headers", listener: (headers: string[], request: IncomingMessage) => void): this;
}

/** Options of `ws`'s `WebSocketServer` that wsport sets. */
export interface WsServerOptions {
  noServer: true;
  clientTracking: boolean;
  maxPayload: number;
  perMessageDeflate: boolean | Record<string, unknown>;
  handleProtocols: (protocols: Set<string>, request: IncomingMessage) => string | false;
  closeTimeout: number;
  skipUTF8Validation: boolean;
}

/** The `ws` module. */
export interface WsModule {
  /** The server class. */
  WebSocketServer: new (options: WsServerOptions) => WsServer;
}
