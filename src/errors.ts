/**
 * Errors raised by wsport.
 *
 * @module
 */

/** How a connection ended: the close code and reason of the closing handshake. */
export interface CloseInfo {
  /** The close code (RFC 6455 §7.4); 1006 when no close frame was exchanged. */
  code: number;
  /** The close reason, "" when none was given. */
  reason: string;
}

/** Close codes an endpoint may send (RFC 6455 §7.4.1 and the IANA registry). */
export function isSendableCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

const encoder = new TextEncoder();

/** Throws `RangeError` unless `close(code, reason)` may send them: a sendable code, a reason of at most 123 bytes. */
export function checkCloseArguments(code: number, reason: string): void {
  if (!isSendableCode(code)) throw new RangeError(`close code ${code} may not be sent`);
  if (encoder.encode(reason).byteLength > 123) throw new RangeError("close reason is over 123 bytes");
}

/** A promise rejected with `error` whose rejection is reported only if someone awaits it. */
export function quietReject<T>(error: unknown): Promise<T> {
  const promise = Promise.reject(error);
  promise.catch(() => {});
  return promise;
}

/** Close codes that count as a normal end of a connection. */
const NORMAL_CLOSE_CODES = new Set([1000, 1001, 1005]);

/** Whether a close with `code` is a normal end ({@linkcode ConnectionClosedOK}). */
export function isNormalClose(code: number): boolean {
  return NORMAL_CLOSE_CODES.has(code);
}

/**
 * Raised by `recv()`, `send()` and iteration once a connection is closed.
 *
 * Subclasses tell a normal end ({@linkcode ConnectionClosedOK}: 1000, 1001 or
 * no status) from an abnormal one ({@linkcode ConnectionClosedError}).
 *
 * @example Tell a normal close from an error
 * ```ts
 * import { ConnectionClosed, ConnectionClosedOK } from "./errors.ts";
 *
 * const error: ConnectionClosed = ConnectionClosed.from({ code: 1001, reason: "going away" });
 * console.log(error instanceof ConnectionClosedOK, error.code); // true 1001
 * ```
 */
export class ConnectionClosed extends Error {
  /** The close code. */
  readonly code: number;
  /** The close reason. */
  readonly reason: string;

  /** Creates the error for a close code and reason. */
  constructor(code: number, reason: string) {
    super(`connection closed: ${code}${reason ? ` ${reason}` : ""}`);
    this.name = new.target.name;
    this.code = code;
    this.reason = reason;
  }

  /**
   * Returns a {@linkcode ConnectionClosedOK} or a {@linkcode ConnectionClosedError}
   * depending on the close code.
   *
   * @example
   * ```ts
   * import { ConnectionClosed } from "./errors.ts";
   * console.log(ConnectionClosed.from({ code: 1011, reason: "" }).name); // "ConnectionClosedError"
   * ```
   */
  static from(info: CloseInfo): ConnectionClosed {
    return isNormalClose(info.code)
      ? new ConnectionClosedOK(info.code, info.reason)
      : new ConnectionClosedError(info.code, info.reason);
  }
}

/**
 * The connection ended normally (1000, 1001 or 1005). Async iteration ends
 * quietly on it instead of throwing.
 *
 * @example
 * ```ts
 * import { ConnectionClosedOK } from "./errors.ts";
 * const error = new ConnectionClosedOK(1000, "");
 * console.log(error.code); // 1000
 * ```
 */
export class ConnectionClosedOK extends ConnectionClosed {}

/**
 * The connection ended with an error code (1002, 1006, 1009, 1011, …).
 *
 * @example
 * ```ts
 * import { ConnectionClosedError } from "./errors.ts";
 * const error = new ConnectionClosedError(1009, "message too big");
 * console.log(error.message); // "connection closed: 1009 message too big"
 * ```
 */
export class ConnectionClosedError extends ConnectionClosed {}

/**
 * An option or argument has a value wsport cannot use.
 *
 * @example
 * ```ts
 * import { InvalidOption } from "./errors.ts";
 * const error = new InvalidOption("maxQueue must be a positive integer");
 * console.log(error.name); // "InvalidOption"
 * ```
 */
export class InvalidOption extends TypeError {
  /** Creates the error with a message naming the option. */
  constructor(message: string) {
    super(message);
    this.name = "InvalidOption";
  }
}

/**
 * A client was given a URL it cannot connect to: not a URL at all, or a
 * scheme other than `ws:`, `wss:`, `http:` or `https:`.
 *
 * @example
 * ```ts
 * import { connect, InvalidURI } from "../mod.ts";
 *
 * try {
 *   await connect("ftp://example.com/");
 * } catch (error) {
 *   console.log(error instanceof InvalidURI); // true
 * }
 * ```
 */
export class InvalidURI extends Error {
  /** The URL as it was given. */
  readonly uri: string;

  /** Creates the error for `uri`, saying what is wrong with it. */
  constructor(uri: string, message: string) {
    super(`invalid WebSocket URL ${JSON.stringify(uri)}: ${message}`);
    this.name = "InvalidURI";
    this.uri = uri;
  }
}

/**
 * A client's connection failed before it opened: the server answered the
 * handshake with an HTTP status other than 101 (401, 403, 404, 503, …), or
 * the connection could not be made at all (refused, DNS, TLS, dropped).
 *
 * `status` is the HTTP status when the server answered with one and the
 * runtime says which: Deno and Bun do; Node's and browsers' `WebSocket` report
 * every failure alike, so there `status` is always `undefined`. It is also
 * `undefined` when no HTTP answer came. `message` carries the runtime's own
 * description.
 *
 * @example Tell an authentication failure from an unreachable server
 * ```ts
 * import { connect, InvalidHandshake } from "../mod.ts";
 *
 * try {
 *   const ws = await connect("ws://127.0.0.1:1/", { openTimeout: 1000 });
 *   await ws.close();
 * } catch (error) {
 *   if (error instanceof InvalidHandshake && error.status === 401) console.log("log in first");
 *   else console.log("unreachable:", (error as Error).message);
 * }
 * ```
 */
export class InvalidHandshake extends Error {
  /** The HTTP status the server answered with, where the runtime tells; else `undefined`. */
  readonly status: number | undefined;

  /** Creates the error; `status` where known, `cause` the runtime's error or event. */
  constructor(message: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "InvalidHandshake";
    this.status = status;
  }
}
