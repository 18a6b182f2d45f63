/**
 * The connection a handler receives: a state machine fed by transport events.
 *
 * It knows no runtime. An adapter creates it over a {@linkcode Transport} and
 * feeds it `handleMessage`, `handleClose` and `handleDrain`.
 *
 * @module
 */
import {
  checkCloseArguments,
  type CloseInfo,
  ConnectionClosed,
  ConnectionClosedOK,
  isNormalClose,
  quietReject,
} from "./errors.ts";
import type { ServerCounters } from "./counters.ts";
import { burstLimit, QUEUE_OVERHEAD, queueBudget, type ResolvedLimits } from "./options.ts";
import { type RequestCopy, requestFromCopy } from "./request_copy.ts";
import type { Message, OutgoingData, Transport } from "./transport.ts";
import { currentTurn, yieldIfTurnIsLong } from "./turn.ts";
import { InvalidOption } from "./errors.ts";
import type { PresenceMember, StreamPosition } from "./history/types.ts";
import type { SubscribeOptions, SubscribeResult } from "./history/subscription.ts";

/**
 * A connection handler: it receives each new connection. When it returns the
 * connection closes with 1000; when it throws, with 1011 (the error goes to
 * `onError`). A `ConnectionClosed` it lets escape is not an error.
 */
export type Handler<Data = unknown> = (ws: Connection<Data>) => void | Promise<void>;

/** Where a peer connected from. */
export interface RemoteAddress {
  /** IP address of the peer ("" where the runtime does not tell). */
  hostname: string;
  /** TCP port of the peer (0 where the runtime does not tell). */
  port: number;
}

/** What the connection needs from the server that owns it. */
export interface ConnectionContext {
  /** Limits with defaults filled in, shared by every connection of a server. */
  readonly limits: ResolvedLimits;
  /** The server's counters, where limit closes are recorded. */
  readonly counters: ServerCounters;
  /** The server's topics; absent for connections outside a server (clients). */
  readonly topics?: Topics;
  /** Called once, when the connection has closed. */
  connectionClosed(connection: Connection): void;
  /** The extra 101 headers every connection of the server got (the `headers` option); none if absent. */
  readonly responseHeaders?: readonly (readonly [string, string])[];
}

/** Topic operations a connection delegates to its server. */
export interface Topics {
  /** Adds the connection to a topic's subscribers (replaying what it missed when `options.since` says so). */
  subscribe(connection: Connection, topic: string, options?: SubscribeOptions): Promise<SubscribeResult>;
  /** Removes the connection from a topic's subscribers. */
  unsubscribe(connection: Connection, topic: string): void;
  /** Publishes to a topic, optionally skipping one connection. */
  publish(topic: string, data: OutgoingData, except?: Connection): Promise<PublishResult>;
  /** Adds the connection to a topic's presence. */
  join(connection: Connection, topic: string, info: unknown): Promise<void>;
  /** Removes the connection from a topic's presence. */
  leave(connection: Connection, topic: string): Promise<void>;
  /** A topic's presence. */
  members(topic: string): Promise<PresenceMember[]>;
}

/** What a publish did: local deliveries, and subscribers skipped as closed or slow. */
export interface PublishResult {
  /** Local subscribers the message was handed to. */
  delivered: number;
  /** Local subscribers skipped because they were closing or over their write limit. */
  skipped: number;
  /**
   * Where the message was stored, for a topic that keeps history (the
   * server's `history` option); absent otherwise.
   */
  position?: StreamPosition;
}

/** Options of {@linkcode Connection.publish}. */
export interface PublishOptions {
  /** Leave this connection out. Default `false`: the sender gets its own message too. */
  exceptSelf?: boolean;
}

/** What a connection is created with. */
export interface ConnectionInit<Data> {
  /** The upgrade request, or what makes it on first use. */
  request: Request | RequestCopy;
  /** Where the peer connected from. */
  remoteAddress: RemoteAddress;
  /** The negotiated subprotocol, "" if none. */
  protocol: string;
  /** What the handshake hook attached. */
  data: Data;
  /** Route parameters, if the connection was routed by path. */
  params?: Record<string, string | undefined>;
  /**
   * The extra headers of this connection's 101, when they are not the ones
   * every connection of the server got (`ConnectionContext.responseHeaders`).
   */
  responseHeaders?: readonly (readonly [string, string])[];
}

/** Options for {@linkcode Connection.recv}. */
export interface RecvOptions {
  /** Stops waiting when aborted; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

const OPEN = 0;
const CLOSING = 1;
const CLOSED = 2;

const RESOLVED: Promise<void> = Promise.resolve();
/** What subscribing a closed connection (or one already subscribed without options) resolves with. */
const NOTHING_TO_RECOVER: Promise<SubscribeResult> = Promise.resolve(Object.freeze({ recovered: true }));
/** The params of every connection not routed by path: one shared, frozen object. */
export const NO_PARAMS: Record<string, string | undefined> = Object.freeze({});
const noop = () => {};
const encoder = new TextEncoder();

/** UTF-8 size of a text message, computed only when the length alone cannot decide. */
function textExceeds(text: string, max: number): boolean {
  if (text.length > max) return true; // every UTF-16 unit is at least one byte
  if (text.length * 3 <= max) return false; // and at most three
  return encoder.encode(text).byteLength > max;
}

/** Bytes a queued message is counted for: its payload plus a fixed overhead. */
function queueCost(message: Message): number {
  return (typeof message === "string" ? message.length : message.byteLength) + QUEUE_OVERHEAD;
}

/**
 * `send()` reads the clock (to yield once the turn has run too long) only
 * every this many calls, counted over all connections: reading it costs more
 * than the rest of a send that does not wait.
 */
const SENDS_PER_CLOCK_CHECK = 64;
let sendsSinceClockCheck = 0;

/**
 * Connections whose `send()` waits for a drain the runtime does not signal.
 * One timer serves them all: a timer per connection costs more CPU than the
 * sends it paces once many connections wait.
 */
const waitingForDrain = new Set<Connection>();
let drainPollTimer: ReturnType<typeof setTimeout> | undefined;

function pollForDrain(connection: Connection): void {
  waitingForDrain.add(connection);
  drainPollTimer ??= setTimeout(pollWaitingConnections, 1);
}

function pollWaitingConnections(): void {
  drainPollTimer = undefined;
  // handleDrain removes the connections it resolves (deleting while iterating a Set is safe).
  for (const connection of waitingForDrain) connection.handleDrain();
  // (A connection still waiting may have rescheduled the timer from inside handleDrain.)
  if (waitingForDrain.size > 0) drainPollTimer ??= setTimeout(pollWaitingConnections, 1);
}

interface Waiter {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /** Resolve with an iterator result instead of the message. */
  iterating: boolean;
}

/**
 * The parts of a connection that only some connections use, kept apart so
 * that an idle connection (the one there are thousands of) does not carry
 * them: it costs the server memory for its whole life.
 */
class Extras {
  remoteAddress: RemoteAddress | undefined = undefined;
  id: string | undefined = undefined;
  url: URL | undefined = undefined;
  controller: AbortController | undefined = undefined;
  closedPromise: PromiseWithResolvers<CloseInfo> | undefined = undefined;
  topics: Set<string> | undefined = undefined;
  /** The topics whose presence this connection joined. */
  joined: Set<string> | undefined = undefined;
  readable: ReadableStream<Message> | undefined = undefined;
  writable: WritableStream<OutgoingData> | undefined = undefined;
  /** Receivers waiting behind the first (concurrent `recv()` calls). */
  moreWaiters: Waiter[] | undefined = undefined;
  /** Bun's drain safety poll. */
  drainTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** Whether reading is paused because the queue is full (transports with `pause`). */
  paused = false;
}

/**
 * Each connection's 101 headers once read, and before that those of the
 * connections whose 101 had headers of its own (as pairs): outside the
 * connection, so that the others carry nothing for them.
 */
const responseHeaders = new WeakMap<Connection, Headers | readonly (readonly [string, string])[]>();

/**
 * A WebSocket connection: iterate it, `recv()` from it, `send()` to it.
 *
 * @example Echo every message
 * ```ts
 * import { serve } from "../mod.ts";
 *
 * const server = serve(async (ws) => {
 *   for await (const message of ws) await ws.send(message);
 * }, { port: 0 });
 * await server.close();
 * ```
 */
export class Connection<Data = unknown> implements AsyncIterable<Message> {
  #request: Request | RequestCopy;
  // Where the peer connected from, as two fields: the object is made only if asked for.
  #remoteHostname: string;
  #remotePort: number;
  /** The negotiated subprotocol, "" if none. */
  readonly protocol: string;
  /** What `processRequest` attached to the handshake; yours to change. */
  data: Data;
  /** Route parameters when the connection was routed by path, else an empty frozen object. */
  readonly params: Record<string, string | undefined>;

  #transport: Transport;
  #context: ConnectionContext;
  #state = OPEN;
  /** Messages no receiver has taken yet (made on first use: an idle connection has none). */
  #queue: Message[] | undefined;
  /** What the queued messages hold, in bytes, counting QUEUE_OVERHEAD for each. */
  #queuedBytes = 0;
  // The receiver waiting for the next message. One is the common case, so its
  // callbacks sit in fields, not in an object made for every wait.
  #resolveNext: ((value: unknown) => void) | undefined;
  #rejectNext: ((error: unknown) => void) | undefined;
  #nextIterates = false;
  /** The turn (see turn.ts) of this connection's last `trySend`. */
  #sendTurn = -1;
  /** What was buffered at this connection's first `trySend` in `#sendTurn`: what earlier turns left. */
  #bufferedBeforeTurn = 0;
  /** Senders waiting for the buffer to drain. */
  #drainWaiters: PromiseWithResolvers<void>[] | undefined;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #closeInfo: CloseInfo | undefined;
  /** What only some connections use, made on first use. */
  #extras: Extras | undefined;

  get #more(): Extras {
    return this.#extras ??= new Extras();
  }

  /** Creates a connection over a transport. Adapters call this; handlers receive it. */
  constructor(transport: Transport, context: ConnectionContext, init: ConnectionInit<Data>) {
    this.#transport = transport;
    this.#context = context;
    this.#request = init.request;
    this.#remoteHostname = init.remoteAddress.hostname;
    this.#remotePort = init.remoteAddress.port;
    this.protocol = init.protocol;
    this.data = init.data;
    this.params = init.params ?? NO_PARAMS;
    if (init.responseHeaders) responseHeaders.set(this as Connection, init.responseHeaders);
  }

  /** The HTTP request that asked for the upgrade. */
  get request(): Request {
    const request = this.#request;
    return typeof request === "string" ? (this.#request = requestFromCopy(request)) : request;
  }

  /** Where the peer connected from. */
  get remoteAddress(): RemoteAddress {
    return this.#more.remoteAddress ??= { hostname: this.#remoteHostname, port: this.#remotePort };
  }

  /**
   * The extra headers the 101 response carried: the server's `headers`
   * option, then what `processRequest` set in `context.headers` (with the
   * Hono middleware, first what other middleware set before the upgrade).
   * Not the handshake's own (`Upgrade`, `Connection`, `Sec-WebSocket-Accept`;
   * the subprotocol is `protocol`). Made on first use; empty on a client
   * connection (the standard `WebSocket` does not show the server's headers).
   */
  get responseHeaders(): Headers {
    const sent = responseHeaders.get(this as Connection) ?? this.#context.responseHeaders ?? [];
    if (sent instanceof Headers) return sent;
    const headers = new Headers(sent as [string, string][]);
    responseHeaders.set(this as Connection, headers);
    return headers;
  }

  /** A unique id for this connection (a random UUID, made on first use). */
  get id(): string {
    return this.#more.id ??= crypto.randomUUID();
  }

  /** The upgrade request's URL, parsed. */
  get url(): URL {
    return this.#more.url ??= new URL(this.request.url);
  }

  /** `"open"`, `"closing"` (close frame sent, waiting for the peer) or `"closed"`. */
  get readyState(): "open" | "closing" | "closed" {
    return this.#state === OPEN ? "open" : this.#state === CLOSING ? "closing" : "closed";
  }

  /** Bytes queued for sending and not yet written. */
  get bufferedAmount(): number {
    return this.#state === CLOSED ? 0 : this.#transport.bufferedAmount;
  }

  /** Aborted when the connection closes; its reason is a {@linkcode ConnectionClosed}. */
  get signal(): AbortSignal {
    const extras = this.#more;
    if (!extras.controller) {
      extras.controller = new AbortController();
      if (this.#closeInfo) extras.controller.abort(ConnectionClosed.from(this.#closeInfo));
    }
    return extras.controller.signal;
  }

  /** Resolves with the close code and reason once the connection has closed. Never rejects. */
  get closed(): Promise<CloseInfo> {
    if (this.#closeInfo) return Promise.resolve(this.#closeInfo);
    return (this.#more.closedPromise ??= Promise.withResolvers<CloseInfo>()).promise;
  }

  /**
   * Returns the next message. Messages that arrived before the close are
   * still returned; after them it rejects with {@linkcode ConnectionClosed}.
   */
  recv(options?: RecvOptions): Promise<Message> {
    return this.#next(false, options?.signal) as Promise<Message>;
  }

  /** Iterates messages until the peer closes; throws `ConnectionClosedError` on an abnormal close. */
  [Symbol.asyncIterator](): AsyncIterator<Message> {
    // The connection is its own iterator: nothing is allocated per loop.
    return this;
  }

  /** Iterator protocol: the next message, or `done` after a normal close. */
  next(): Promise<IteratorResult<Message>> {
    return this.#next(true, undefined) as Promise<IteratorResult<Message>>;
  }

  /** Iterator protocol: leaving a `for await` loop ends the loop, not the connection. */
  return(): Promise<IteratorResult<Message>> {
    return Promise.resolve({ done: true, value: undefined });
  }

  #next(iterating: boolean, signal: AbortSignal | undefined): Promise<unknown> {
    if (this.#queue?.length) {
      const value = this.#queue.shift()!;
      this.#queuedBytes -= queueCost(value);
      if (this.#extras?.paused) this.#resumeIfDrained();
      return Promise.resolve(iterating ? { done: false, value } : value);
    }
    if (this.#closeInfo) return this.#settleAfterClose(iterating);
    signal?.throwIfAborted();
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    if (!this.#resolveNext) {
      this.#resolveNext = resolve;
      this.#rejectNext = reject;
      this.#nextIterates = iterating;
    } else {
      (this.#more.moreWaiters ??= []).push({ resolve, reject, iterating });
    }
    if (signal) {
      const onAbort = () => {
        this.#removeWaiter(resolve);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const cleanup = () => signal.removeEventListener("abort", onAbort);
      promise.then(cleanup, cleanup);
    }
    return promise;
  }

  /** Moves the receiver next in line (if any) into the first place. */
  #shiftWaiters(): void {
    const next = this.#extras?.moreWaiters?.shift();
    this.#resolveNext = next?.resolve;
    this.#rejectNext = next?.reject;
    this.#nextIterates = next?.iterating ?? false;
  }

  /** Takes out the receiver whose promise `resolve` settles. */
  #removeWaiter(resolve: (value: unknown) => void): void {
    if (this.#resolveNext === resolve) return this.#shiftWaiters();
    const more = this.#extras?.moreWaiters;
    const index = more?.findIndex((waiter) => waiter.resolve === resolve) ?? -1;
    if (index >= 0) more!.splice(index, 1);
  }

  #settleAfterClose(iterating: boolean): Promise<unknown> {
    const error = ConnectionClosed.from(this.#closeInfo!);
    if (iterating && error instanceof ConnectionClosedOK) {
      return Promise.resolve({ done: true, value: undefined });
    }
    return Promise.reject(error);
  }

  /**
   * Sends a text (`string`) or binary message. Resolves at once while fewer
   * than `writeLimit.high` bytes are buffered; otherwise once the buffer has
   * drained to `writeLimit.low`. Rejects with {@linkcode ConnectionClosed} if
   * the connection is or becomes closed; a send that is not awaited never
   * causes an unhandled rejection.
   *
   * Once the current turn of the event loop has run for more than 10 ms, a
   * send that need not wait resolves on the next turn instead of at once: a
   * loop such as `while (true) await ws.send(chunk)` to a peer that keeps up
   * (on Bun, whose buffer then never fills) lets other connections be served
   * every 10 ms instead of holding the event loop.
   */
  send(data: OutgoingData): Promise<void> {
    if (this.#state !== OPEN) return quietReject(this.#closedError());
    this.#transport.send(data);
    if (this.#transport.bufferedAmount > this.#context.limits.writeHigh) return this.#waitForDrain();
    if (++sendsSinceClockCheck < SENDS_PER_CLOCK_CHECK) return RESOLVED;
    sendsSinceClockCheck = 0;
    return yieldIfTurnIsLong() ?? RESOLVED;
  }

  /**
   * Sends without waiting unless the peer is slow; returns `false` and sends
   * nothing if it is slow or the connection is not open. This is what
   * {@linkcode broadcast} and topic delivery use for each peer.
   *
   * Slow means that what the peer had buffered before the current turn of the
   * event loop is over `writeLimit.high`: it has not drained what earlier
   * turns gave it. What the current turn itself queues does not count, so a
   * burst sent in one synchronous loop reaches every peer that keeps up
   * (Deno writes to the network only between turns; Bun at once), the same
   * on every runtime. A peer that is never skipped therefore holds at most
   * `writeLimit.high` plus one turn's burst, and never more than 16 MiB (or
   * 4 × `writeLimit.high`, if larger) even within one turn.
   */
  trySend(data: OutgoingData): boolean {
    if (this.#state !== OPEN) return false;
    const buffered = this.#transport.bufferedAmount;
    const turn = currentTurn();
    if (this.#sendTurn !== turn) {
      this.#sendTurn = turn;
      this.#bufferedBeforeTurn = buffered;
    }
    const writeHigh = this.#context.limits.writeHigh;
    if (this.#bufferedBeforeTurn > writeHigh || buffered > burstLimit(writeHigh)) return false;
    this.#transport.send(data);
    return true;
  }

  /** The underlying transport, for the server's topic hub (native pub/sub on Bun). */
  get transport(): Transport {
    return this.#transport;
  }

  /** The topics this connection is subscribed to. */
  get topics(): ReadonlySet<string> {
    return this.#more.topics ??= new Set();
  }

  /**
   * Subscribes to a topic: messages published to it (by `server.publish`,
   * `ws.publish`, or another process sharing the server's backend) are sent
   * to this connection, as they were published. Unsubscribed automatically
   * on close.
   *
   * Options (see {@linkcode SubscribeOptions}): `since` resumes after a
   * position of a topic that keeps history (the server's `history` option):
   * the messages stored after it come first, in order, then the live ones,
   * none missing and none twice; `envelope` wraps each message (with its
   * position) in a frame of your choice, e.g. `jsonEnvelope`; `presence`
   * adds the topic's joins and leaves to what the envelope receives.
   *
   * Resolves with whether the subscription recovered what came after
   * `since` (`{ recovered: false, reason }` when it could not: reload your
   * state; the subscription is live either way) and the topic's position.
   * Ignoring the promise is fine: it rejects only when the backend failed to
   * read the history, and never unhandled. Subscribing again with options
   * replaces the subscription; without, does nothing; on a closed
   * connection, does nothing.
   *
   * @example Resume a topic after a position, with positions in each frame
   * ```ts
   * import { jsonEnvelope, serve } from "../mod.ts";
   *
   * const server = serve(async (ws) => {
   *   const since = { epoch: ws.url.searchParams.get("epoch") ?? "", offset: Number(ws.url.searchParams.get("offset")) };
   *   const { recovered, reason } = await ws.subscribe("news", { since, envelope: jsonEnvelope });
   *   if (!recovered) await ws.send(JSON.stringify({ reload: reason }));
   * }, { port: 0, history: { "news": { size: 100 } } });
   * await server.close();
   * ```
   */
  subscribe(topic: string, options?: SubscribeOptions): Promise<SubscribeResult> {
    const hub = this.#requireTopics();
    if (options?.presence && !options.envelope) {
      throw new InvalidOption("subscribe: presence events need an envelope to be sent in");
    }
    const topics = this.#more.topics ??= new Set();
    if (this.#state === CLOSED) return NOTHING_TO_RECOVER;
    if (topics.has(topic)) {
      if (!options) return NOTHING_TO_RECOVER;
      hub.unsubscribe(this as Connection, topic);
    }
    topics.add(topic);
    return hub.subscribe(this as Connection, topic, options);
  }

  /**
   * Joins a topic's presence with `info` (small and JSON-serialisable): it
   * shows in `server.presence(topic)` on every process sharing the backend,
   * as a member whose `id` is this connection's {@linkcode id}, and
   * subscribers that asked for presence get a join event. Joining again
   * replaces the info. Left automatically on close. Rejects with
   * `InvalidOption` when the server's backend keeps no presence.
   */
  join(topic: string, info: unknown = null): Promise<void> {
    const hub = this.#requireTopics();
    if (this.#state === CLOSED) return RESOLVED;
    (this.#more.joined ??= new Set()).add(topic);
    return hub.join(this as Connection, topic, info);
  }

  /** Leaves a topic's presence (subscribers that asked for presence get a leave event). */
  leave(topic: string): Promise<void> {
    if (!this.#extras?.joined?.delete(topic)) return RESOLVED;
    return this.#requireTopics().leave(this as Connection, topic);
  }

  /** Unsubscribes from a topic. */
  unsubscribe(topic: string): void {
    if (!this.#extras?.topics?.delete(topic)) return;
    this.#requireTopics().unsubscribe(this as Connection, topic);
  }

  /**
   * Publishes to a topic's subscribers on this server and, through the
   * server's backend, on every process sharing it. Resolves as
   * `server.publish` does (on the next turn once the current one has run for
   * 10 ms).
   */
  publish(topic: string, data: OutgoingData, options?: PublishOptions): Promise<PublishResult> {
    return this.#requireTopics().publish(topic, data, options?.exceptSelf ? this as Connection : undefined);
  }

  #requireTopics(): Topics {
    const topics = this.#context.topics;
    if (!topics) throw new TypeError("topics need a server: this connection has none");
    return topics;
  }

  #closedError(): ConnectionClosed {
    return ConnectionClosed.from(this.#closeInfo ?? { code: 1006, reason: "connection is closing" });
  }

  #waitForDrain(): Promise<void> {
    const waiter = Promise.withResolvers<void>();
    waiter.promise.catch(noop);
    (this.#drainWaiters ??= []).push(waiter);
    this.#pollDrain();
    return waiter.promise;
  }

  /**
   * Polls `bufferedAmount` while a `send()` waits. Where the runtime has no
   * drain event (Deno), one shared timer polls every waiting connection each
   * millisecond; where it has one (Bun), a slow per-connection timer is only
   * a safety net.
   */
  #pollDrain(): void {
    if (!this.#transport.emitsDrain) return pollForDrain(this as Connection);
    const extras = this.#more;
    if (extras.drainTimer !== undefined) return;
    extras.drainTimer = setTimeout(() => {
      extras.drainTimer = undefined;
      this.handleDrain();
    }, 25);
  }

  /**
   * Starts the closing handshake. Resolves once it has ended: the peer
   * answered, or `closeTimeout` passed and the connection was dropped.
   * Calling it again, or after the peer closed, waits for the same end.
   */
  close(code = 1000, reason = ""): Promise<void> {
    if (this.#state === OPEN) {
      checkCloseArguments(code, reason);
      this.#startClosing(code, reason);
    }
    return this.closed.then(noop);
  }

  #startClosing(code: number, reason: string): void {
    this.#state = CLOSING;
    if (this.#drainWaiters) this.#rejectDrainWaiters(ConnectionClosed.from({ code, reason }));
    this.#closeTimer = setTimeout(() => this.#dropAfterTimeout(), this.#context.limits.closeTimeout);
    // Some runtimes (Bun) report the close synchronously, from inside this call.
    this.#transport.close(code, reason);
  }

  #dropAfterTimeout(): void {
    this.#closeTimer = undefined;
    if (this.#state === CLOSED) return;
    this.#context.counters.closed.closeTimeout++;
    // Drop TCP where the runtime can; either way the connection is released now, with the
    // same reason on every engine (where the runtime cannot drop TCP it keeps its socket
    // until the peer goes away).
    this.#transport.terminate();
    this.handleClose(1006, "close timeout");
  }

  /** Closes with a limit's code and counts it. */
  #closeForLimit(code: number, reason: string, counter: "messageTooBig" | "queueOverflow"): void {
    this.#context.counters.droppedMessages++;
    // Counted once per connection: messages the peer sends while the close is under way are only dropped.
    if (this.#state !== OPEN) return;
    this.#context.counters.closed[counter]++;
    this.#startClosing(code, reason);
  }

  /** Adapter event: a message arrived. */
  handleMessage(message: Message): void {
    if (this.#state === CLOSED) return;
    const limits = this.#context.limits;
    if (!this.#transport.enforcesMaxMessageSize) {
      const tooBig = typeof message === "string"
        ? textExceeds(message, limits.maxMessageSize)
        : message.byteLength > limits.maxMessageSize;
      if (tooBig) return this.#closeForLimit(1009, "message too big", "messageTooBig");
    }
    const resolve = this.#resolveNext;
    if (resolve) {
      const iterating = this.#nextIterates;
      this.#shiftWaiters();
      resolve(iterating ? { done: false, value: message } : message);
      return;
    }
    // maxQueue messages of maxMessageSize always fit: the bound of Python's websockets,
    // which pauses reading there. Where the transport cannot pause, past it the connection
    // is closed instead. Bytes, not a count, so that many small messages fit too.
    const budget = queueBudget(limits);
    const queuedBytes = this.#queuedBytes + queueCost(message);
    const pausable = this.#transport.pause !== undefined;
    if (!pausable && queuedBytes > budget) {
      return this.#closeForLimit(1013, "message queue full", "queueOverflow");
    }
    this.#queuedBytes = queuedBytes;
    const queue = this.#queue ??= [];
    queue.push(message);
    if (pausable && (queue.length >= limits.maxQueue || queuedBytes >= budget) && !this.#extras?.paused) {
      // Hold the peer back by TCP until the handler catches up (what was read already still arrives).
      this.#more.paused = true;
      this.#transport.pause!();
    }
  }

  /** Resumes reading once the queue is down to a quarter of maxQueue (Python's low-water mark). */
  #resumeIfDrained(): void {
    const limits = this.#context.limits;
    if (this.#queue!.length > limits.maxQueue >> 2) return;
    if (this.#queuedBytes > queueBudget(limits) / 4) return;
    this.#extras!.paused = false;
    if (this.#state !== CLOSED) this.#transport.resume?.();
  }

  /**
   * Adapter event: the runtime closed the connection because of a limit it
   * enforces natively (a message over `maxMessageSize`, a peer silent past
   * `idleTimeout`). Counts it; `handleClose` follows.
   */
  handleLimitClose(reason: "messageTooBig" | "idleTimeout"): void {
    this.#context.counters.closed[reason]++;
    if (reason === "messageTooBig") this.#context.counters.droppedMessages++;
  }

  /** Adapter event: the outgoing buffer drained (or may have). */
  handleDrain(): void {
    if (!this.#drainWaiters) return void waitingForDrain.delete(this as Connection);
    if (this.#transport.bufferedAmount > this.#context.limits.writeLow) {
      // Not drained far enough yet. Runtimes with a drain event may not raise it
      // again before the low mark is reached, so poll in any case.
      if (this.#state === OPEN) this.#pollDrain();
      return;
    }
    waitingForDrain.delete(this as Connection);
    const waiters = this.#drainWaiters;
    this.#drainWaiters = undefined;
    for (const waiter of waiters) waiter.resolve();
  }

  /** Adapter event: the connection closed, with the code and reason the runtime reports. */
  handleClose(code: number, reason: string): void {
    if (this.#state === CLOSED) return;
    this.#state = CLOSED;
    const info: CloseInfo = { code, reason };
    this.#closeInfo = info;
    clearTimeout(this.#closeTimer);
    this.#closeTimer = undefined;
    const extras = this.#extras;
    if (extras?.drainTimer !== undefined) {
      clearTimeout(extras.drainTimer);
      extras.drainTimer = undefined;
    }
    waitingForDrain.delete(this as Connection);
    // The error is made only if someone will see it: a stack capture per close shows in churn profiles
    // (a `for await` loop that ends normally does not see one).
    const normal = isNormalClose(code);
    let error: ConnectionClosed | undefined;
    while (this.#resolveNext) {
      const resolve = this.#resolveNext, reject = this.#rejectNext!, iterating = this.#nextIterates;
      this.#shiftWaiters();
      if (iterating && normal) resolve({ done: true, value: undefined });
      else reject(error ??= ConnectionClosed.from(info));
    }
    if (this.#drainWaiters || extras?.controller) error ??= ConnectionClosed.from(info);
    if (error) this.#rejectDrainWaiters(error);
    const topics = extras?.topics;
    if (topics?.size) {
      for (const topic of topics) this.#context.topics!.unsubscribe(this as Connection, topic);
      topics.clear();
    }
    const joined = extras?.joined;
    if (joined?.size) {
      // Not awaited: a backend failure is reported by the hub; the close does not wait for it.
      for (const topic of joined) this.#context.topics!.leave(this as Connection, topic).catch(noop);
      joined.clear();
    }
    if (error) extras?.controller?.abort(error);
    extras?.closedPromise?.resolve(info);
    this.#context.connectionClosed(this);
  }

  #rejectDrainWaiters(error: ConnectionClosed): void {
    const waiters = this.#drainWaiters;
    if (!waiters) return;
    this.#drainWaiters = undefined;
    for (const waiter of waiters) waiter.reject(error);
  }

  /**
   * A `WebSocketStream`-like readable side: the same messages as iteration.
   * It closes when the peer closes normally and errors otherwise.
   */
  get readable(): ReadableStream<Message> {
    return this.#more.readable ??= new ReadableStream<Message>({
      pull: async (controller) => {
        try {
          controller.enqueue(await this.recv());
        } catch (error) {
          if (error instanceof ConnectionClosedOK) controller.close();
          else controller.error(error);
        }
      },
      cancel: () => this.close(1000).catch(noop),
    }, { highWaterMark: 0 });
  }

  /**
   * A `WebSocketStream`-like writable side: each chunk is sent with
   * backpressure; closing the stream closes the connection with 1000.
   */
  get writable(): WritableStream<OutgoingData> {
    return this.#more.writable ??= new WritableStream<OutgoingData>({
      write: (chunk) => this.send(chunk),
      close: () => this.close(1000),
      abort: () => this.close(1011, "stream aborted").catch(noop),
    });
  }

  /** `WebSocketStream`-like: resolves with the protocol once open (a server connection is open from the start). */
  get opened(): Promise<
    { protocol: string; readable: ReadableStream<Message>; writable: WritableStream<OutgoingData> }
  > {
    return Promise.resolve({ protocol: this.protocol, readable: this.readable, writable: this.writable });
  }
}
