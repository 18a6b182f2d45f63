/**
 * The parts of Bun's API the Bun adapter uses, declared here so that the
 * project type-checks with `deno check` without Bun's type package.
 *
 * @module
 */
import type { PendingUpgrade } from "../adapter.ts";
import type { Connection } from "../connection.ts";
import type { HeadersInit } from "../handshake.ts";

/**
 * What wsport keeps in Bun's `ws.data`: the pending upgrade until the socket
 * opens, then the connection itself (the upgrade's state is not kept for the
 * socket's whole life).
 */
export type BunSocketData = PendingUpgrade | Connection;

/**
 * Bun's `ServerWebSocket`, as far as wsport uses it. Each member is typed so
 * that Bun's own `ServerWebSocket` (bun-types) fits it: else
 * `Bun.serve({ websocket: wss.websocket })` fails to type-check with Bun's types.
 */
export interface BunServerWebSocket<T> {
  /** What `server.upgrade` attached; wsport replaces it once the socket opens. */
  data: T;
  /** How binary messages are delivered (optional, as in Bun's own types, so that Bun's socket fits). */
  binaryType?: string;
  /** Sends a frame (compressed if `compress` and permessage-deflate was negotiated): bytes sent, -1 if buffered, 0 if dropped. */
  send(data: string | ArrayBufferLike | Uint8Array | DataView, compress?: boolean): number;
  /** Starts the closing handshake. */
  close(code?: number, reason?: string): void;
  /** Drops TCP without a handshake. */
  terminate(): void;
  /** Bytes buffered for sending. */
  getBufferedAmount(): number;
  /** Subscribes to a native topic. */
  subscribe(topic: string): void;
  /** Unsubscribes from a native topic. */
  unsubscribe(topic: string): void;
  /** Publishes to a native topic, except to this socket. */
  publish(topic: string, data: string | ArrayBufferLike | Uint8Array | DataView): number;
}

/** Bun's `Server`, as far as wsport uses it. */
export interface BunServer {
  readonly hostname: string;
  readonly port: number;
  /** The bound address (`hostname` is the name that was asked for). */
  readonly address?: { address: string; port: number } | null;
  upgrade(request: Request, options: { headers?: HeadersInit; data?: unknown }): boolean;
  requestIP(request: Request): { address: string; port: number } | null;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
  /** Publishes to every socket subscribed to `topic`. */
  publish(topic: string, data: string | ArrayBuffer | ArrayBufferView): number;
}

/** The `websocket` handlers object of `Bun.serve`. */
export interface BunWebSocketHandlers<T> {
  /** Largest message in bytes; Bun closes with 1009 past it. */
  maxPayloadLength: number;
  /** Seconds of silence before Bun closes the socket (0 = never). */
  idleTimeout: number;
  /** Whether Bun pings idle peers. */
  sendPings: boolean;
  /** Bytes Bun buffers before it drops sends. */
  backpressureLimit: number;
  /** Whether Bun closes a socket over `backpressureLimit`. */
  closeOnBackpressureLimit: boolean;
  /** Whether permessage-deflate is offered. */
  perMessageDeflate: boolean;
  /** A socket opened. */
  open(ws: BunServerWebSocket<T>): void;
  /** A message arrived. */
  message(ws: BunServerWebSocket<T>, message: string | Uint8Array): void;
  /** The send buffer drained. */
  drain(ws: BunServerWebSocket<T>): void;
  /** A socket closed. */
  close(ws: BunServerWebSocket<T>, code: number, reason: string): void;
}

/** `Bun.serve`'s options, as far as wsport uses them. */
export interface BunServeOptions {
  hostname?: string;
  port?: number;
  fetch(request: Request, server: BunServer): Response | undefined | Promise<Response | undefined>;
  websocket: BunWebSocketHandlers<never>;
}

/** The `Bun` global, as far as wsport uses it. */
export interface BunGlobal {
  serve(options: BunServeOptions): BunServer;
}
