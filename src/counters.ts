/**
 * Counters a server keeps so that nothing is refused or dropped silently.
 *
 * @module
 */

/** Why an upgrade request was answered with an HTTP error instead of a WebSocket. */
export type RefusalReason =
  | "upgradeRequired"
  | "methodNotAllowed"
  | "badRequest"
  | "unsupportedVersion"
  | "forbiddenOrigin"
  | "notFound"
  | "overCapacity"
  | "shuttingDown"
  | "processRequest";

/** Why wsport itself closed a connection. */
export type LimitCloseReason =
  | "messageTooBig"
  | "queueOverflow"
  | "idleTimeout"
  | "closeTimeout"
  | "handlerError";

/**
 * What a server has accepted, refused and closed, by reason. Read it at any
 * time from `server.counters`; the numbers only grow.
 *
 * @example Log the counters every minute
 * ```ts
 * import { createServer } from "../mod.ts";
 *
 * const server = createServer(async (ws) => { for await (const m of ws) await ws.send(m); });
 * const timer = setInterval(() => console.log(JSON.stringify(server.counters)), 60_000);
 * clearInterval(timer);
 * ```
 */
export interface ServerCounters {
  /** Upgrades accepted. */
  accepted: number;
  /**
   * Requests `processRequest` answered itself with a 2xx or 3xx status
   * (health checks, redirects): answers, not refusals.
   */
  answered: number;
  /**
   * Requests refused, by reason (426, 405, 400, 426, 403, 404, 503, 503, and
   * `processRequest` returning a 4xx or 5xx status such as 401).
   */
  refused: Record<RefusalReason, number>;
  /** Connections closed by wsport because of a limit or a handler error. */
  closed: Record<LimitCloseReason, number>;
  /** Messages dropped: received past `maxQueue`, or over `maxMessageSize`. */
  droppedMessages: number;
  /** Topic traffic: publishes made here, messages received from the backend, failures, slow subscribers skipped. */
  pubsub: { published: number; received: number; publishFailures: number; skipped: number };
}

/** Returns counters set to zero. */
export function createCounters(): ServerCounters {
  return {
    accepted: 0,
    answered: 0,
    refused: {
      upgradeRequired: 0,
      methodNotAllowed: 0,
      badRequest: 0,
      unsupportedVersion: 0,
      forbiddenOrigin: 0,
      notFound: 0,
      overCapacity: 0,
      shuttingDown: 0,
      processRequest: 0,
    },
    closed: { messageTooBig: 0, queueOverflow: 0, idleTimeout: 0, closeTimeout: 0, handlerError: 0 },
    droppedMessages: 0,
    pubsub: { published: 0, received: 0, publishFailures: 0, skipped: 0 },
  };
}
