/**
 * A transport over a standard `WebSocket` (the WHATWG API): Deno's server
 * sockets, and client sockets on every runtime.
 *
 * The standard API has no drain event (the core polls its `bufferedAmount`),
 * no message size limit of wsport's choosing (the core checks sizes), and no
 * way to drop TCP without a closing handshake.
 *
 * @module
 */
import type { Message, OutgoingData, Transport } from "../transport.ts";

/** A standard `message` event's data as a core message (the socket's `binaryType` is "arraybuffer"). */
export function messageOf(event: MessageEvent): Message {
  const data = event.data;
  return typeof data === "string" ? data : new Uint8Array(data);
}

/**
 * A standard close event's code as the core's: Deno reports 0 when it drops
 * TCP (e.g. on data frames after its close frame, denoland/deno#21642, or a
 * dropped client connection); the protocol's name for that is 1006.
 */
export function closeCodeOf(event: CloseEvent): number {
  return event.code || 1006;
}

/** Wraps a standard `WebSocket` as a core {@linkcode Transport}. */
export class WebSocketTransport implements Transport {
  /** The standard API has no drain event. */
  get emitsDrain(): boolean {
    return false;
  }
  /** The standard API has no size limit the core can set. */
  get enforcesMaxMessageSize(): boolean {
    return false;
  }
  #socket: WebSocket;

  /** Wraps `socket`. */
  constructor(socket: WebSocket) {
    this.#socket = socket;
  }
  /** Sends if the socket is open; drops silently otherwise (the core checks state first). */
  send(data: OutgoingData): void {
    if (this.#socket.readyState !== WebSocket.OPEN) return;
    // A view over a whole ArrayBuffer goes out as the buffer: Deno's path for views is slower.
    if (data instanceof Uint8Array && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) {
      this.#socket.send(data.buffer as ArrayBuffer);
    } else {
      this.#socket.send(data);
    }
  }
  /**
   * Starts the closing handshake, from a fresh task: Deno drops TCP without
   * sending the close frame when `close()` runs inside a message event while
   * more frames are buffered.
   */
  close(code: number, reason: string): void {
    setTimeout(() => this.#socket.close(code, reason), 0);
  }
  /** The standard API cannot drop TCP. */
  terminate(): boolean {
    return false;
  }
  /** Exact on Deno; as the runtime reports elsewhere. */
  get bufferedAmount(): number {
    return this.#socket.bufferedAmount;
  }
}
