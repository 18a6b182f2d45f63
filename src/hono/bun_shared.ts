/**
 * Bun takes one `websocket` handlers object per `Bun.serve`: every Hono
 * middleware of an app shares {@linkcode bunWebSocket}, and this keeps their
 * limits and topics apart.
 *
 * @module
 */
import { DEFAULT_LIMITS, type ResolvedLimits } from "../options.ts";
import type { OutgoingData, Transport } from "../transport.ts";
import { bunWebSocketHandlers } from "../adapters/bun.ts";
import type { BunSocketData, BunWebSocketHandlers } from "../adapters/bun_types.ts";

/**
 * What the shared Bun `bunWebSocket` object must cover: Bun fixes these limits
 * per server, wsport per middleware.
 */
export const bunShared = {
  /** The limits of every middleware not yet closed. */
  live: new Set<ResolvedLimits>(),
  /** The `maxPayloadLength` Bun last read: messages over it never reach wsport. */
  cap: undefined as number | undefined,
};

/** Limits that cover every live middleware: the largest sizes, the shortest idle timeout that is on. */
function sharedLimits(): ResolvedLimits {
  const all = [...bunShared.live];
  if (all.length === 0) return DEFAULT_LIMITS;
  const idle = all.map((limits) => limits.idleTimeout).filter((ms) => ms > 0);
  return {
    ...DEFAULT_LIMITS,
    maxMessageSize: Math.max(...all.map((limits) => limits.maxMessageSize)),
    writeHigh: Math.max(...all.map((limits) => limits.writeHigh)),
    idleTimeout: idle.length > 0 ? Math.min(...idle) : 0,
  };
}

function sharedBunHandlers(): BunWebSocketHandlers<BunSocketData> {
  const base = bunWebSocketHandlers(DEFAULT_LIMITS);
  return {
    // Bun reads these when Bun.serve starts: they cover the middlewares made by then.
    get maxPayloadLength() {
      return bunShared.cap = bunWebSocketHandlers(sharedLimits()).maxPayloadLength;
    },
    get idleTimeout() {
      return bunWebSocketHandlers(sharedLimits()).idleTimeout;
    },
    get backpressureLimit() {
      return bunWebSocketHandlers(sharedLimits()).backpressureLimit;
    },
    sendPings: base.sendPings,
    closeOnBackpressureLimit: base.closeOnBackpressureLimit,
    perMessageDeflate: base.perMessageDeflate,
    // Each socket's data is the PendingUpgrade of the middleware that upgraded it, then its connection.
    open: base.open,
    message: base.message,
    drain: base.drain,
    close: base.close,
  };
}

/**
 * Bun's `websocket` handlers (`Bun.serve({ websocket: bunWebSocket })`) for every WebSocket this module's middlewares
 * upgrade: pass it to `Bun.serve` beside `app.fetch`. One object serves any
 * number of middlewares; each socket is dispatched to its own middleware's
 * server through `ws.data`. Not needed on Deno.
 *
 * Bun fixes three limits per server, when `Bun.serve` starts, so create the
 * middlewares first: Bun's frame cap is the largest `maxMessageSize` among
 * them (wsport checks each middleware's own limit below it, with 1009), and
 * Bun's idle check uses the smallest non-zero `idleTimeout` (Bun pings, so
 * only a peer that stopped answering is dropped).
 *
 * @example
 * ```ts ignore
 * import { Hono } from "hono";
 * import { bunWebSocket, upgradeWebSocket } from "@wsport/wsport/hono";
 *
 * const app = new Hono();
 * app.get("/ws", upgradeWebSocket((ws) => ws.send("hello")));
 * Bun.serve({ port: 8765, fetch: app.fetch, websocket: bunWebSocket });
 * ```
 */
export const bunWebSocket: BunWebSocketHandlers<BunSocketData> = sharedBunHandlers();

/**
 * A transport whose size check and native topics belong to one middleware,
 * when several share a Bun server.
 */
export class SharedBunTransport implements Transport {
  readonly emitsDrain: boolean;
  readonly enforcesMaxMessageSize: boolean;
  #inner: Transport;
  #prefix: string;

  constructor(inner: Transport, prefix: string, enforcesMaxMessageSize: boolean) {
    this.#inner = inner;
    this.#prefix = prefix;
    this.emitsDrain = inner.emitsDrain;
    this.enforcesMaxMessageSize = inner.enforcesMaxMessageSize && enforcesMaxMessageSize;
  }
  send(data: OutgoingData): void {
    this.#inner.send(data);
  }
  close(code: number, reason: string): void {
    this.#inner.close(code, reason);
  }
  terminate(): boolean {
    return this.#inner.terminate();
  }
  get bufferedAmount(): number {
    return this.#inner.bufferedAmount;
  }
  subscribe(topic: string): void {
    this.#inner.subscribe?.(this.#prefix + topic);
  }
  unsubscribe(topic: string): void {
    this.#inner.unsubscribe?.(this.#prefix + topic);
  }
  publishExceptSelf(topic: string, data: OutgoingData): void {
    this.#inner.publishExceptSelf?.(this.#prefix + topic, data);
  }
}
