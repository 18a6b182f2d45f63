/**
 * Bun adapter: `Bun.serve`, `server.upgrade` and the `websocket` handlers
 * translated to core events.
 *
 * Bun's uWebSockets core enforces `maxMessageSize` itself (its close event
 * then says 1006 "Received too big message" while the peer receives 1009; the
 * adapter reports 1009), signals drain natively, and can drop TCP.
 *
 * @module
 */
import type { Adapter, PendingUpgrade } from "../adapter.ts";
import { Connection } from "../connection.ts";
import { burstLimit, type ResolvedLimits } from "../options.ts";
import type { OutgoingData, Transport } from "../transport.ts";
import type {
  BunGlobal,
  BunServer,
  BunServerWebSocket,
  BunSocketData,
  BunWebSocketHandlers,
} from "./bun_types.ts";

type Socket = BunServerWebSocket<BunSocketData>;
/**
 * What Bun's `send` and `publish` take, as Bun's types say: text, bytes as a
 * typed array or a `DataView` (which every `ArrayBufferView` is at run time).
 */
type BunSendable = Parameters<Socket["send"]>[0];

class BunTransport implements Transport {
  // Getters, not fields: this object lives as long as the socket.
  get emitsDrain(): boolean {
    return true;
  }
  get enforcesMaxMessageSize(): boolean {
    return true;
  }
  #ws: Socket;
  /** Bun compresses a message only when its send asks to (with `compression` on and negotiated). */
  #compress: boolean;

  constructor(ws: Socket, compress: boolean) {
    this.#ws = ws;
    this.#compress = compress;
  }
  send(data: OutgoingData): void {
    this.#ws.send(data as BunSendable, this.#compress);
  }
  close(code: number, reason: string): void {
    this.#ws.close(code, reason);
  }
  terminate(): boolean {
    this.#ws.terminate();
    return true;
  }
  get bufferedAmount(): number {
    return this.#ws.getBufferedAmount();
  }
  subscribe(topic: string): void {
    this.#ws.subscribe(topic);
  }
  unsubscribe(topic: string): void {
    this.#ws.unsubscribe(topic);
  }
  publishExceptSelf(topic: string, data: OutgoingData): void {
    this.#ws.publish(topic, data as BunSendable);
  }
}

/** Bun's close reasons when uWebSockets enforces a limit. */
const TOO_BIG_REASON = "Received too big message";
const IDLE_REASON = "WebSocket timed out from inactivity";

/**
 * The `websocket` handlers to pass to `Bun.serve` beside a wsport `fetch`.
 * Limits are per server in Bun, so they are fixed here.
 */
export function bunWebSocketHandlers(limits: ResolvedLimits): BunWebSocketHandlers<BunSocketData> {
  return {
    maxPayloadLength: limits.maxMessageSize,
    // Bun counts whole seconds, from 0 (off) to 960.
    idleTimeout: Math.min(960, Math.ceil(limits.idleTimeout / 1000)),
    sendPings: true,
    // wsport's writeLimit governs send(); this bound only caps what native topic
    // delivery may queue for a slow subscriber (Bun drops past it), as trySend does.
    backpressureLimit: burstLimit(limits.writeHigh),
    closeOnBackpressureLimit: false,
    perMessageDeflate: limits.compression,
    open(ws) {
      ws.binaryType = "uint8array";
      // (Bun may run the close handler from inside accept: it finds the connection on the upgrade.)
      ws.data = (ws.data as PendingUpgrade).accept(new BunTransport(ws, limits.compression));
    },
    message(ws, message) {
      (ws.data as Connection).handleMessage(message);
    },
    drain(ws) {
      if (ws.data instanceof Connection) ws.data.handleDrain();
    },
    close(ws, code, reason) {
      const data = ws.data;
      const connection = data instanceof Connection ? data : data.connection;
      if (!connection) return (data as PendingUpgrade).abandon();
      if (code === 1006 && reason === TOO_BIG_REASON) {
        connection.handleLimitClose("messageTooBig");
        code = 1009;
      } else if (code === 1006 && reason === IDLE_REASON) {
        connection.handleLimitClose("idleTimeout");
      }
      connection.handleClose(code, reason);
    },
  };
}

/** The Bun adapter. */
export const bunAdapter: Adapter = {
  runtime: "bun",
  nativeTopics(context) {
    const server = context as BunServer | undefined;
    if (typeof server?.publish !== "function") return undefined;
    return { publish: (topic, data) => void server.publish(topic, data) };
  },
  remoteAddress(request, context) {
    const ip = (context as BunServer | undefined)?.requestIP?.(request);
    return { hostname: ip?.address ?? "", port: ip?.port ?? 0 };
  },
  upgrade(request, context, pending) {
    const server = context as BunServer | undefined;
    if (typeof server?.upgrade !== "function") {
      throw new TypeError("wsport on Bun: pass Bun's server as fetch's second argument");
    }
    const headers = new Headers(pending.responseHeaders as [string, string][]);
    // Bun echoes the first offered subprotocol unless told otherwise; "" sends none.
    headers.set("sec-websocket-protocol", pending.protocol);
    if (!server.upgrade(request, { headers, data: pending })) {
      pending.abandon();
      return new Response("400 Bad Request: the upgrade failed\n", { status: 400 });
    }
    // Bun has written the 101 and ignores whatever fetch returns now (a Response, even a 200, or
    // nothing: tests/handshake_headers.test.ts). Returning one that says what was sent lets `fetch`
    // answer every request with a Response on every runtime, as Deno.serve's type requires.
    if (!pending.protocol) headers.delete("sec-websocket-protocol");
    headers.set("upgrade", "websocket");
    headers.set("connection", "Upgrade");
    return new Response(null, { status: 101, headers });
  },
  websocket: bunWebSocketHandlers,
  listen(fetch, options, limits, onListen) {
    const Bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;
    const server = Bun.serve({
      hostname: options.hostname ?? "localhost",
      port: options.port ?? 8000,
      fetch: (request, server) => fetch(request, server),
      websocket: bunWebSocketHandlers(limits) as unknown as BunWebSocketHandlers<never>,
    });
    // The bound address, as Deno reports it ("127.0.0.1", not the "localhost" that was asked for).
    const addr = { hostname: server.address?.address ?? server.hostname, port: server.port };
    onListen(addr);
    // Bun's stop(false) would close the listener at once (connection refused instead of 503
    // during the drain): the listener stays open until the drain ends.
    return { addr, stop: async () => await server.stop(true) };
  },
};
