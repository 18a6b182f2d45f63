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

/** Close codes that count as a normal end of a connection. */
const NORMAL_CLOSE_CODES = new Set([1000, 1001, 1005]);

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
    return NORMAL_CLOSE_CODES.has(info.code)
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
