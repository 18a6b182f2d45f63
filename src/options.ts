/**
 * Limits and timeouts, their defaults, and their validation.
 *
 * Every limit is a named option with a documented default, in the manner of
 * Python's websockets: the defaults keep memory bounded for a server with
 * many slow or hostile clients and never get in the way of a normal one.
 *
 * @module
 */
import { InvalidOption } from "./errors.ts";

/** High and low water marks of the outgoing buffer, in bytes. */
export interface WriteLimit {
  /** `send()` waits once this many bytes are buffered. Default 64 KiB. */
  high: number;
  /** A waiting `send()` resumes once the buffer drains to this. Default `high / 4`. */
  low?: number;
}

/** Limits that apply to each connection. */
export interface LimitOptions {
  /**
   * The largest incoming message, in bytes. A larger one closes the
   * connection with 1009 (message too big). Default 1 MiB (1,048,576).
   */
  maxMessageSize?: number;
  /**
   * Bounds the received messages waiting for the handler to read them, as
   * Python's websockets does: `maxQueue` messages of up to `maxMessageSize`
   * bytes always fit. The bound is a byte budget, not a count, so that a
   * client pipelining many small messages is never cut off: each queued
   * message is charged its size (bytes for binary, UTF-16 code units for text,
   * never more than its UTF-8 size) plus 64 bytes, and the queue may hold
   * `maxQueue × (maxMessageSize + 64)` charged bytes per connection (16 MiB +
   * 1 KiB with the defaults; a JavaScript string stores one or two bytes per
   * code unit). Python pauses reading there, and so does the ws engine (Node,
   * and Deno's default), resuming at a quarter of the budget. Bun and
   * Deno's native engine cannot pause reading a WebSocket, so there the
   * message that would pass the budget closes the connection with 1013 (try
   * again later), is dropped and counted, and the messages already queued can
   * still be read. (Deno's native engine assembles each message, any frame
   * under 64 MiB and fragmented messages without limit, before wsport can
   * check its size: a public server there needs the ws engine, Deno's
   * default, or a size-limiting proxy in front.) Default 16.
   */
  maxQueue?: number;
  /**
   * Backpressure for `send()`: a number is the high water mark (low = high / 4).
   * Default `{ high: 65536, low: 16384 }`.
   */
  writeLimit?: number | WriteLimit;
  /**
   * Milliseconds a peer may stay silent before it is pinged and, if it still
   * does not answer, closed. Deno's and Bun's native engines do the pinging
   * (their own `idleTimeout`, whole seconds); the ws engine pings after a half
   * to a whole `idleTimeout` of silence and drops a peer that sends no pong
   * within half more. `0` turns it off. Default 30,000.
   */
  idleTimeout?: number;
  /**
   * Milliseconds to wait for the peer to answer a close frame before the
   * connection is dropped, and for handlers to finish on shutdown.
   * Default 10,000.
   */
  closeTimeout?: number;
  /**
   * Offers permessage-deflate (RFC 7692) to clients that ask for it: on the ws
   * engine (Node, and Deno's default) and on Bun. It trades CPU, and on
   * the ws engine memory per compressing connection, for bandwidth: see
   * docs/runtimes.md, "Compression", for the measured cost. Deno's native engine
   * cannot compress and ignores it. Default `false`.
   */
  compression?: boolean;
}

/** Limits with every default filled in. */
export interface ResolvedLimits {
  /** See {@linkcode LimitOptions.maxMessageSize}. */
  maxMessageSize: number;
  /** See {@linkcode LimitOptions.maxQueue}. */
  maxQueue: number;
  /** High water mark of {@linkcode LimitOptions.writeLimit}. */
  writeHigh: number;
  /** Low water mark of {@linkcode LimitOptions.writeLimit}. */
  writeLow: number;
  /** See {@linkcode LimitOptions.idleTimeout}. */
  idleTimeout: number;
  /** See {@linkcode LimitOptions.closeTimeout}. */
  closeTimeout: number;
  /** See {@linkcode LimitOptions.compression}. */
  compression: boolean;
}

/** What each message in the receive queue is charged on top of its size, in bytes. */
export const QUEUE_OVERHEAD = 64;

/** The receive queue's byte budget: `maxQueue` messages of `maxMessageSize` always fit. */
export function queueBudget(limits: ResolvedLimits): number {
  return limits.maxQueue * (limits.maxMessageSize + QUEUE_OVERHEAD);
}

/**
 * The most a connection's outgoing buffer may hold before `broadcast()` and
 * topic delivery skip it even within one turn of the event loop: 16 MiB, or
 * 4 × `writeLimit.high` if that is more. Bun's native topic fan-out drops
 * messages past the same bound (its `backpressureLimit`).
 */
export function burstLimit(writeHigh: number): number {
  return Math.max(16 * 1024 * 1024, 4 * writeHigh);
}

/** The defaults, named so documentation and tests can refer to them. */
export const DEFAULT_LIMITS: Readonly<ResolvedLimits> = Object.freeze({
  maxMessageSize: 1024 * 1024,
  maxQueue: 16,
  writeHigh: 64 * 1024,
  writeLow: 16 * 1024,
  idleTimeout: 30_000,
  closeTimeout: 10_000,
  compression: false,
});

/**
 * Returns `value` when it is a number from `min` to `max`, else throws
 * `InvalidOption` naming the option. The default `max` leaves out
 * `Infinity` (limits must be finite); the client's options pass `Infinity`.
 */
export function checkNumber(
  name: string,
  value: number,
  min: number,
  max: number = Number.MAX_VALUE,
): number {
  if (typeof value !== "number" || Number.isNaN(value) || value < min || value > max) {
    const range = max === Number.MAX_VALUE ? `>= ${min}` : `from ${min} to ${max}`;
    throw new InvalidOption(`${name} must be a number ${range}, got ${String(value)}`);
  }
  return value;
}

/** Fills in defaults and rejects values that make no sense. */
export function resolveLimits(options: LimitOptions): ResolvedLimits {
  const d = DEFAULT_LIMITS;
  const write = options.writeLimit ?? d.writeHigh;
  const writeHigh = checkNumber("writeLimit.high", typeof write === "number" ? write : write.high, 0);
  const writeLow = checkNumber(
    "writeLimit.low",
    typeof write === "number" ? writeHigh / 4 : write.low ?? writeHigh / 4,
    0,
  );
  if (writeLow > writeHigh) throw new InvalidOption("writeLimit.low must not exceed writeLimit.high");
  return {
    maxMessageSize: checkNumber("maxMessageSize", options.maxMessageSize ?? d.maxMessageSize, 1),
    maxQueue: Math.floor(checkNumber("maxQueue", options.maxQueue ?? d.maxQueue, 1)),
    writeHigh,
    writeLow,
    idleTimeout: checkNumber("idleTimeout", options.idleTimeout ?? d.idleTimeout, 0),
    closeTimeout: checkNumber("closeTimeout", options.closeTimeout ?? d.closeTimeout, 0),
    compression: options.compression === true,
  };
}
