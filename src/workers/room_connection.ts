/**
 * A room's connection: the {@linkcode RoomConnection} its event methods get,
 * rebuilt from the socket and its attachment after hibernation.
 *
 * @module
 */
import type { RemoteAddress } from "../connection.ts";
import { checkCloseArguments, ConnectionClosed, quietReject } from "../errors.ts";
import { type HeaderPairs, type HeadersInit, mergeHeaders } from "../handshake.ts";
import type { Message, OutgoingData } from "../transport.ts";
import type { WorkersWebSocket } from "./types.ts";

/** What a connection reads of its room (`RoomOptions` has more). */
interface RoomLike {
  readonly options: { readonly headers?: HeadersInit; readonly maxMessageSize?: number };
}

/**
 * A client of a room, as the room's event methods see it. It is rebuilt
 * from the socket after hibernation: `id`, `url`, `protocol`,
 * `remoteAddress`, `topics` and `data` live in the socket's attachment
 * (16 KiB serialized in workerd since March 2026, 2 KiB before: keep `data` small).
 *
 * @example Answer one client, count its messages across hibernation
 * ```ts ignore
 * import { type Message, type RoomConnection, WebSocketRoom } from "@wsport/wsport/workers";
 *
 * export class Counter extends WebSocketRoom<{ count: number }> {
 *   override onConnect(connection: RoomConnection<{ count: number }>): void {
 *     connection.data = { count: 0 };
 *   }
 *   override onMessage(connection: RoomConnection<{ count: number }>, _message: Message): void {
 *     connection.data = { count: connection.data.count + 1 }; // assigned: stored with the socket
 *     connection.send(String(connection.data.count));
 *     if (connection.data.count >= 100) connection.close(4000, "that is enough");
 *   }
 * }
 * ```
 */
export interface RoomConnection<Data = unknown> {
  /** A random UUID given when the connection was accepted; the same after hibernation. */
  readonly id: string;
  /** The upgrade request's URL. */
  readonly url: URL;
  /** The negotiated subprotocol, "" if none. */
  readonly protocol: string;
  /** The `CF-Connecting-IP` of the upgrade request (port 0). */
  readonly remoteAddress: RemoteAddress;
  /** The topics (tags) the connection was accepted with. */
  readonly topics: ReadonlySet<string>;
  /**
   * The extra headers the 101 response carried: the room's `headers`
   * option, then what `processRequest` set in `context.headers` (kept in the
   * attachment, and so across hibernation, only when it set any).
   */
  readonly responseHeaders: Headers;
  /**
   * What `processRequest` attached. Assigning it stores it in the socket's
   * attachment, so it survives hibernation; changing the object in place
   * does not until it is assigned again.
   */
  data: Data;
  /** `"open"`, `"closing"` (close frame sent or received) or `"closed"`. */
  readonly readyState: "open" | "closing" | "closed";
  /** The runtime's socket. */
  readonly socket: WorkersWebSocket;
  /**
   * Sends a text (`string`) or binary message. Resolves at once (Workers has
   * no `bufferedAmount`, so there is nothing to wait for); rejects with
   * `ConnectionClosed` if the connection is not open. Never causes an
   * unhandled rejection when not awaited.
   */
  send(data: OutgoingData): Promise<void>;
  /** Sends if open and returns `true`; returns `false` otherwise. */
  trySend(data: OutgoingData): boolean;
  /**
   * Starts the closing handshake; `onClose` runs when the peer answers.
   * Throws `RangeError` for a code that may not be sent or a reason over
   * 123 bytes, as the core's `close()` does.
   */
  close(code?: number, reason?: string): void;
}

/** What is stored with each socket. */
export interface Attachment<Data> {
  id: string;
  url: string;
  protocol: string;
  remoteAddress: RemoteAddress;
  topics: string[];
  data: Data;
  /** The headers `processRequest` set in `context.headers`, only when it set any. */
  headers?: HeaderPairs;
}

/** A room's extra 101 headers: its `headers` option, then those `processRequest` set for the connection. */
export function sentHeaders(headers: HeadersInit | undefined, own: HeaderPairs | undefined): Headers {
  return new Headers(mergeHeaders([...new Headers(headers)], own) as [string, string][]);
}

const OPEN = 1;
const CLOSING = 2;
const encoder = new TextEncoder();

export function messageSize(message: Message): number {
  return typeof message === "string" ? encoder.encode(message).byteLength : message.byteLength;
}

export class RoomPeer<Data> implements RoomConnection<Data> {
  readonly socket: WorkersWebSocket;
  #attachment: Attachment<Data>;
  #room: RoomLike;
  #url: URL | undefined;
  #topics: ReadonlySet<string> | undefined;
  #responseHeaders: Headers | undefined;
  /** Set once this instance has seen the connection end. */
  ended = false;

  constructor(
    socket: WorkersWebSocket,
    attachment: Attachment<Data>,
    room: RoomLike,
  ) {
    this.socket = socket;
    this.#attachment = attachment;
    this.#room = room;
  }
  get id(): string {
    return this.#attachment.id;
  }
  get url(): URL {
    return this.#url ??= new URL(this.#attachment.url);
  }
  get protocol(): string {
    return this.#attachment.protocol;
  }
  get remoteAddress(): RemoteAddress {
    return this.#attachment.remoteAddress;
  }
  get topics(): ReadonlySet<string> {
    return this.#topics ??= new Set(this.#attachment.topics);
  }
  get responseHeaders(): Headers {
    return this.#responseHeaders ??= sentHeaders(this.#room.options.headers, this.#attachment.headers);
  }
  get data(): Data {
    return this.#attachment.data;
  }
  set data(value: Data) {
    const attachment = { ...this.#attachment, data: value };
    this.socket.serializeAttachment(attachment);
    this.#attachment = attachment;
  }
  get readyState(): "open" | "closing" | "closed" {
    if (this.ended) return "closed";
    const state = this.socket.readyState;
    return state === OPEN ? "open" : state === CLOSING ? "closing" : "closed";
  }
  send(data: OutgoingData): Promise<void> {
    if (this.readyState !== "open") {
      return quietReject(ConnectionClosed.from({ code: 1006, reason: "connection is not open" }));
    }
    this.socket.send(data);
    return Promise.resolve();
  }
  trySend(data: OutgoingData): boolean {
    if (this.readyState !== "open") return false;
    try {
      this.socket.send(data);
      return true;
    } catch {
      return false;
    }
  }
  close(code = 1000, reason = ""): void {
    checkCloseArguments(code, reason);
    if (this.readyState !== "open") return;
    try {
      this.socket.close(code, reason);
    } catch {
      // Closed meanwhile; webSocketClose tells the room.
    }
  }
}
