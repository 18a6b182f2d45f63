/**
 * Cloudflare Workers: wsport's connection API in a Worker's `fetch`, and
 * hibernating Durable Object rooms. This module is its own entry point
 * (`@wsport/wsport/workers`): it pulls in neither Node built-ins nor npm
 * packages, and bundles to a single ES module.
 *
 * Two ways to serve WebSockets on Workers:
 *
 * - {@linkcode workersFetch} (or {@linkcode createWorkersServer}): the same
 *   handler as on Deno and Bun, `for await (const message of ws)`, in the
 *   Worker that received the request. The isolate stays in memory (and is
 *   billed) while the connection is open. Use it for per-connection work:
 *   echo, proxies, streaming a response, anything that talks to one client.
 * - {@linkcode WebSocketRoom}: a Durable Object class with event methods
 *   (`onMessage`, `onClose`) over the WebSocket Hibernation API. Every client
 *   of a room reaches the same object, so one `publish` reaches them all; an
 *   idle room is evicted from memory while its sockets stay open, and costs
 *   nothing until the next message wakes it. Use it for chat rooms, topics,
 *   presence: anything shared between clients.
 *
 * What the platform does not offer, and what wsport does instead:
 *
 * - **No `bufferedAmount`** (workerd does not implement it,
 *   cloudflare/workerd#988): `send()` cannot know how much is queued, so it
 *   resolves at once and backpressure (`writeLimit`) does not apply. Pace
 *   large transfers yourself. Should the runtime ever report a number,
 *   wsport uses it.
 * - **No listener**: a Worker exports `fetch`; `serve()` and the adapter's
 *   `listen` throw.
 * - **No ping control**: `idleTimeout` is not enforced; the platform's own
 *   rules for idle connections apply.
 * - **No way to drop TCP**: a peer that never answers a close frame is
 *   released after `closeTimeout` (1006), as on Deno.
 * - **No cross-request I/O in a stateless Worker**: a connection belongs to
 *   the request that opened it. `send()` from another request's handler
 *   throws (and so do `server.publish()` and `broadcast()` reaching other
 *   clients): sharing sockets between clients is what rooms are for.
 *
 * @example A Worker with an echo endpoint
 * ```ts ignore
 * import { workersFetch } from "@wsport/wsport/workers";
 *
 * const echo = workersFetch(async (ws) => {
 *   for await (const message of ws) await ws.send(message);
 * }, { maxMessageSize: 64 * 1024 });
 *
 * export default { fetch: echo };
 * ```
 *
 * @module
 */
export {
  createWorkersServer,
  workersAdapter,
  type WorkersFetch,
  workersFetch,
  type WorkersServerOptions,
} from "./src/workers/adapter.ts";
export { publishToRoom, type PublishToRoomOptions } from "./src/workers/publish.ts";
export type { RoomConnection } from "./src/workers/room_connection.ts";
export {
  type RoomHandshakeContext,
  type RoomOptions,
  type RoomPublishOptions,
  WebSocketRoom,
} from "./src/workers/room.ts";
export type {
  DurableObjectNamespaceLike,
  DurableObjectStateLike,
  DurableObjectStubLike,
  ExecutionContextLike,
  WorkersWebSocket,
  WorkersWebSocketPair,
} from "./src/workers/types.ts";
export {
  Connection,
  type PublishOptions,
  type PublishResult,
  type RecvOptions,
  type RemoteAddress,
} from "./src/connection.ts";
export { type CloseInfo, ConnectionClosed, ConnectionClosedError, ConnectionClosedOK } from "./src/errors.ts";
export type { Message, NativeTopics, OutgoingData, Transport } from "./src/transport.ts";
export type { Handler } from "./src/connection.ts";
export type {
  CloseOptions,
  Embedding,
  HandshakeContext,
  ProcessRequestResult,
  ServerOptions,
  WebSocketServer,
} from "./src/server.ts";
export type { HandshakeOptions, HeadersInit, OriginPolicy } from "./src/handshake.ts";
export type { LimitOptions, ResolvedLimits, WriteLimit } from "./src/options.ts";
export type { LimitCloseReason, RefusalReason, ServerCounters } from "./src/counters.ts";
export type {
  Adapter,
  FetchHandler,
  ListenAddress,
  Listener,
  ListenOptions,
  PendingUpgrade,
} from "./src/adapter.ts";
export type { PubSubBackend } from "./src/pubsub/backend.ts";
export type { BunServerWebSocket, BunWebSocketHandlers } from "./src/adapters/bun_types.ts";
