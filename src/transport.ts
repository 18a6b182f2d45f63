/**
 * The seam between the core and a runtime adapter.
 *
 * The core never touches a runtime object: an adapter wraps the runtime's
 * socket in a {@linkcode Transport} and calls the connection's
 * `handleMessage`, `handleClose` and `handleDrain` when the runtime reports
 * those events.
 *
 * @module
 */

/** Data a connection can send: text, or binary in any buffer form. */
export type OutgoingData = string | ArrayBuffer | ArrayBufferView;

/**
 * A received message: `string` for a text frame, `Uint8Array` for binary.
 * A binary message may be a view of a larger `ArrayBuffer` (the ws engine
 * copies small messages into a shared 16 KiB buffer): use `byteOffset` and
 * `byteLength`, or `slice()` for a buffer of its own.
 */
export type Message = string | Uint8Array;

/**
 * A runtime's socket, reduced to what the core needs.
 *
 * @example A transport over a standard `WebSocket`
 * ```ts
 * import type { Transport } from "./transport.ts";
 *
 * function wrap(socket: WebSocket): Transport {
 *   return {
 *     send: (data) => socket.send(data),
 *     close: (code, reason) => socket.close(code, reason),
 *     terminate: () => false,
 *     get bufferedAmount() { return socket.bufferedAmount; },
 *     emitsDrain: false,
 *     enforcesMaxMessageSize: false,
 *   };
 * }
 * ```
 */
export interface Transport {
  /** Queues a frame for sending. Never throws for a closed socket. */
  send(data: OutgoingData): void;
  /** Starts the closing handshake with this code and reason. */
  close(code: number, reason: string): void;
  /**
   * Drops the TCP connection without a closing handshake. Returns `false`
   * when the runtime offers no way to do so (the core then releases the
   * connection itself and the runtime keeps the socket until the peer leaves).
   */
  terminate(): boolean;
  /** Bytes queued for sending and not yet written to the network. */
  readonly bufferedAmount: number;
  /** Whether the runtime calls `handleDrain` when the buffer empties; if not, the core polls `bufferedAmount`. */
  readonly emitsDrain: boolean;
  /** Whether the runtime itself closes with 1009 a message over `maxMessageSize`. */
  readonly enforcesMaxMessageSize: boolean;
  /**
   * Stops reading the socket (where the runtime can): the connection calls it
   * when `maxQueue` messages wait for the handler, so the peer is held back by
   * TCP instead of being closed with 1013. Messages already read may still arrive.
   */
  pause?(): void;
  /** Resumes reading after {@linkcode Transport.pause}. */
  resume?(): void;
  /** Native topic subscription (Bun), used by the server's topic hub when present. */
  subscribe?(topic: string): void;
  /** Native topic unsubscription (Bun). */
  unsubscribe?(topic: string): void;
  /** Native publish to a topic's subscribers except this socket (Bun). */
  publishExceptSelf?(topic: string, data: OutgoingData): void;
}

/**
 * A runtime's own topic fan-out (Bun's `server.publish`, in C++), used for
 * local delivery instead of a JavaScript loop where it exists.
 */
export interface NativeTopics {
  /** Sends `data` to every socket subscribed to `topic` through `Transport.subscribe`. */
  publish(topic: string, data: OutgoingData): void;
}
