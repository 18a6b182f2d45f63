/**
 * Durable Object rooms over the WebSocket Hibernation API.
 *
 * A room (a chat room, a topic, a document) lives in one Durable Object, so
 * every client of the room reaches the same object and one `publish` reaches
 * them all. The object accepts sockets with `state.acceptWebSocket`, which
 * lets the runtime evict it from memory while the sockets stay open: an idle
 * room costs nothing, and the next message wakes a fresh instance that finds
 * its sockets with `state.getWebSockets()` and each connection's data in the
 * socket's attachment.
 *
 * Hibernation does not fit a `for await` loop (no code may be waiting while
 * the object sleeps), so a room has event methods instead: `onConnect`,
 * `onMessage`, `onClose`, `onError`. Their connection is wsport-shaped
 * (`send`, `close`, `data`, `topics`, `id`), and messages and close
 * information are wsport's `Message` and `CloseInfo`.
 *
 * @module
 */
import type { PublishResult } from "../connection.ts";
import { type CloseInfo, ConnectionClosed } from "../errors.ts";
import { Handshake, type HandshakeOptions, negotiate, validateUpgrade } from "../handshake.ts";
import { DEFAULT_LIMITS } from "../options.ts";
import type { HandshakeContext } from "../server.ts";
import type { Message, OutgoingData } from "../transport.ts";
import { readPublish } from "./publish.ts";
import {
  type Attachment,
  messageSize,
  type RoomConnection,
  RoomPeer,
  sentHeaders,
} from "./room_connection.ts";
import {
  answerClose,
  type DurableObjectStateLike,
  webSocketPairConstructor,
  type WorkersWebSocket,
} from "./types.ts";

/**
 * What `processRequest` of a room can read and set: wsport's handshake
 * context, and topics.
 *
 * @example Attach a name and topics from the query
 * ```ts ignore
 * import type { RoomHandshakeContext } from "@wsport/wsport/workers";
 *
 * function processRequest(request: Request, context: RoomHandshakeContext<{ name: string }>): void {
 *   const query = new URL(request.url).searchParams;
 *   context.data = { name: query.get("name") ?? "anonymous" };
 *   context.topics = query.getAll("topic");
 * }
 * ```
 */
export interface RoomHandshakeContext<Data = unknown> extends HandshakeContext<Data> {
  /**
   * Topics (hibernation tags) of the connection, fixed once it is accepted:
   * `publish(data, { topic })` reaches the connections with that topic. At
   * most 10, each at most 256 characters (the runtime's limits).
   */
  topics: string[];
}

/**
 * Options of a {@linkcode WebSocketRoom}: the core's handshake options that
 * make sense in a room. Set them by overriding the room's `options` field.
 * `processRequest` sees each upgrade request before anything else (plain
 * HTTP goes to `onRequest`): a `Response` refuses it (401, 403);
 * `context.data` attaches data, `context.topics` topics. The Worker that
 * forwards requests to the room may authenticate instead.
 *
 * @example
 * ```ts ignore
 * import { type RoomOptions, WebSocketRoom } from "@wsport/wsport/workers";
 *
 * export class Lobby extends WebSocketRoom {
 *   override options: RoomOptions = {
 *     maxConnections: 100,
 *     maxMessageSize: 16 * 1024,
 *     subprotocols: ["lobby.v1"],
 *     origins: ["https://app.example"],
 *   };
 * }
 * ```
 */
export interface RoomOptions<Data = unknown> extends HandshakeOptions<RoomHandshakeContext<Data>> {
  /** A larger incoming message closes its connection with 1009. Default 1 MiB, as in the core. */
  maxMessageSize?: number;
}

/**
 * Options of {@linkcode WebSocketRoom.publish}.
 *
 * @example Relay to everyone else with the same topic
 * ```ts ignore
 * import { type Message, type RoomConnection, WebSocketRoom } from "@wsport/wsport/workers";
 *
 * export class Relay extends WebSocketRoom {
 *   override onMessage(connection: RoomConnection, message: Message): void {
 *     for (const topic of connection.topics) this.publish(message, { topic, except: connection });
 *   }
 * }
 * ```
 */
export interface RoomPublishOptions<Data = unknown> {
  /** Only connections with this topic (tag). Default: every connection of the room. */
  topic?: string;
  /** Leave this connection out (e.g. the sender). */
  except?: RoomConnection<Data>;
}

/** A room's handshake context: the core's, with topics. */
class RoomHandshake<Data> extends Handshake<Data> implements RoomHandshakeContext<Data> {
  topics: string[] = [];
}

/**
 * A Durable Object class for a room of WebSocket clients, over the
 * WebSocket Hibernation API. Extend it, export the subclass from the
 * Worker's module, bind it (`[[durable_objects.bindings]]`), and forward the
 * room's requests to it: `env.ROOMS.get(env.ROOMS.idFromName(room)).fetch(request)`.
 *
 * The room answers an upgrade with wsport's handshake (RFC 6455 checks, 426
 * for plain HTTP, `processRequest`, origins, subprotocols, `maxConnections`
 * → 503) and accepts the socket with `state.acceptWebSocket`. Then the
 * runtime calls `webSocketMessage`/`webSocketClose`/`webSocketError`, which
 * call your `onMessage`/`onClose`/`onError` with a {@linkcode RoomConnection}.
 *
 * Close semantics are the core's: `onMessage` throwing closes that
 * connection with 1011 and goes to `onError`; a message over
 * `maxMessageSize` closes it with 1009; `onClose` runs once per connection
 * with the peer's `{ code, reason }` (1006 for an error or a lost
 * connection). A peer's close frame is answered for you.
 *
 * Plain HTTP requests go to {@linkcode onRequest}: by default `POST …/publish`
 * publishes its body to the room (see {@linkcode publishToRoom}); anything
 * else gets 426. Only the Worker reaches the object, so authorize publishes
 * there before forwarding them.
 *
 * Do not keep per-connection state in fields: they are lost when the object
 * hibernates. Use `connection.data` (stored with the socket) or
 * `state.storage`.
 *
 * @example A chat room: every message reaches every client of the room
 * ```ts ignore
 * import { type Message, type RoomConnection, type RoomOptions, WebSocketRoom } from "@wsport/wsport/workers";
 *
 * type Member = { name: string };
 *
 * export class ChatRoom extends WebSocketRoom<Member> {
 *   override options: RoomOptions<Member> = {
 *     maxMessageSize: 16 * 1024,
 *     processRequest(request, context) {
 *       context.data = { name: new URL(request.url).searchParams.get("name") ?? "anonymous" };
 *     },
 *   };
 *   override onMessage(_conn: RoomConnection<Member>, message: Message): void {
 *     this.publish(message);
 *   }
 * }
 * ```
 */
export class WebSocketRoom<Data = unknown, Env = unknown> {
  /** The Durable Object's state (`ctx`). */
  readonly state: DurableObjectStateLike;
  /** The Worker's bindings. */
  readonly env: Env;
  /** Handshake options and limits; override the field in a subclass. Read on each request. */
  options: RoomOptions<Data> = {};
  #clients = new WeakMap<WorkersWebSocket, RoomPeer<Data>>();

  /** Called by the runtime with the object's state and the Worker's bindings. */
  constructor(state: DurableObjectStateLike, env: Env) {
    this.state = state;
    this.env = env;
  }

  /** A client connected (before its 101 response is sent; messages sent here arrive first). */
  onConnect(_connection: RoomConnection<Data>): void | Promise<void> {}

  /** A message arrived: `string` for text, `Uint8Array` for binary. */
  onMessage(_connection: RoomConnection<Data>, _message: Message): void | Promise<void> {}

  /** A connection ended, with the peer's close code and reason (1006 if it was lost). Runs once. */
  onClose(_connection: RoomConnection<Data>, _info: CloseInfo): void | Promise<void> {}

  /** An event method threw, or the runtime reported a socket error. Default: `console.error`. */
  onError(error: unknown, connection: RoomConnection<Data> | undefined): void {
    console.error(connection ? "wsport room: connection failed:" : "wsport room:", error);
  }

  /**
   * Plain HTTP requests (no `Upgrade` header). Default: `POST` to a path
   * ending in `/publish` publishes the body to the room (text for `text/*`
   * and JSON content types, binary otherwise; `?topic=` narrows it) and
   * answers the {@linkcode PublishResult} as JSON; anything else gets 426.
   * Override it for more routes and call `super.onRequest(request)` for these.
   */
  async onRequest(request: Request): Promise<Response> {
    const published = await readPublish(request);
    if (published) return Response.json(this.publish(published.data, { topic: published.topic }));
    return validateUpgrade(request)!.response;
  }

  /**
   * The connections of this room, or those with `topic`: the sockets the
   * runtime kept, rebuilt from their attachments after hibernation.
   */
  connections(topic?: string): RoomConnection<Data>[] {
    const sockets = topic === undefined ? this.state.getWebSockets() : this.state.getWebSockets(topic);
    return sockets.map((socket) => this.#client(socket));
  }

  /**
   * Sends `data` to every open connection of the room (or of `topic`),
   * except `except`. Returns how many got it and how many were skipped as
   * closing. Nothing waits: Workers has no backpressure to wait for.
   */
  publish(data: OutgoingData, options: RoomPublishOptions<Data> = {}): PublishResult {
    let delivered = 0;
    let skipped = 0;
    for (const connection of this.connections(options.topic)) {
      if (connection === options.except || connection.socket === options.except?.socket) continue;
      if (connection.trySend(data)) delivered++;
      else skipped++;
    }
    return { delivered, skipped };
  }

  /** The Durable Object's `fetch`: upgrades to a room connection, or goes to {@linkcode onRequest}. */
  async fetch(request: Request): Promise<Response> {
    if (request.headers.get("upgrade") === null) return await this.onRequest(request);
    const options = this.options;
    const context = new RoomHandshake<Data>(
      { hostname: request.headers.get("cf-connecting-ip") ?? "", port: 0 },
      new URL(request.url),
      {},
    );
    if (options.processRequest) {
      const result = await options.processRequest(request, context);
      if (result instanceof Response) return result;
    }
    const protocol = negotiate(request, options, this.state.getWebSockets().length);
    if (typeof protocol !== "string") return protocol.response;
    const WebSocketPair = webSocketPairConstructor();
    if (!WebSocketPair) throw new TypeError("wsport room: WebSocketPair is missing; rooms run on Cloudflare");
    const { 0: client, 1: server } = new WebSocketPair();
    const ownHeaders = [...Handshake.headersOf(context) ?? []];
    const attachment: Attachment<Data> = {
      id: crypto.randomUUID(),
      url: request.url,
      protocol,
      remoteAddress: context.remoteAddress,
      topics: [...context.topics],
      data: context.data as Data,
    };
    // Stored with the socket only when processRequest set some (the attachment's size is limited).
    if (ownHeaders.length > 0) attachment.headers = ownHeaders;
    try {
      server.serializeAttachment(attachment);
      this.state.acceptWebSocket(server, attachment.topics);
    } catch (error) {
      // An attachment over the runtime's limit (16 KiB; 2 KiB in older runtimes), more than 10
      // topics, or a topic over 256 characters.
      this.onError(error, undefined);
      return new Response("500 Internal Server Error: the connection could not be accepted\n", {
        status: 500,
      });
    }
    const connection = new RoomPeer(server, attachment, this);
    this.#clients.set(server, connection);
    // Made apart from connection.responseHeaders, which onConnect may change.
    const headers = sentHeaders(options.headers, ownHeaders);
    if (protocol) headers.set("sec-websocket-protocol", protocol);
    try {
      await this.onConnect(connection);
    } catch (error) {
      this.#failed(connection, error);
    }
    return new Response(null, { status: 101, webSocket: client, headers } as ResponseInit);
  }

  /** Called by the runtime for each message (waking the object if it hibernated). */
  async webSocketMessage(socket: WorkersWebSocket, message: string | ArrayBuffer): Promise<void> {
    const connection = this.#client(socket);
    if (connection.readyState !== "open") return; // closing: the peer's late frames are dropped
    const data: Message = typeof message === "string" ? message : new Uint8Array(message);
    const max = this.options.maxMessageSize ?? DEFAULT_LIMITS.maxMessageSize;
    if (messageSize(data) > max) return connection.close(1009, "message too big");
    try {
      await this.onMessage(connection, data);
    } catch (error) {
      this.#failed(connection, error);
    }
  }

  /** Called by the runtime when a connection closed. */
  async webSocketClose(
    socket: WorkersWebSocket,
    code: number,
    reason: string,
    _wasClean: boolean,
  ): Promise<void> {
    answerClose(socket, code, reason);
    await this.#ended(socket, { code: code || 1006, reason });
  }

  /** Called by the runtime when a connection failed. */
  async webSocketError(socket: WorkersWebSocket, error: unknown): Promise<void> {
    const connection = this.#client(socket);
    this.onError(error, connection);
    await this.#ended(socket, { code: 1006, reason: error instanceof Error ? error.message : String(error) });
  }

  async #ended(socket: WorkersWebSocket, info: CloseInfo): Promise<void> {
    const connection = this.#client(socket);
    if (connection.ended) return;
    connection.ended = true;
    try {
      await this.onClose(connection, info);
    } catch (error) {
      this.onError(error, connection);
    }
  }

  #failed(connection: RoomPeer<Data>, error: unknown): void {
    if (error instanceof ConnectionClosed) return;
    this.onError(error, connection);
    connection.close(1011, "internal error");
  }

  #client(socket: WorkersWebSocket): RoomPeer<Data> {
    let client = this.#clients.get(socket);
    if (!client) {
      client = new RoomPeer(socket, socket.deserializeAttachment() as Attachment<Data>, this);
      this.#clients.set(socket, client);
    }
    return client;
  }
}
