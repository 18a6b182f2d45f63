/**
 * wsport: WebSocket servers and clients for Node, Deno and Bun on web-standard APIs.
 *
 * A connection you iterate, `send()` with backpressure, limits that keep
 * memory bounded, a handshake hook, and graceful shutdown by `AbortSignal`.
 *
 * @example Echo server
 * ```ts
 * import { serve } from "./mod.ts";
 *
 * const server = serve(async (ws) => {
 *   for await (const message of ws) await ws.send(message);
 * }, { port: 0 });
 * await server.close();
 * ```
 *
 * @module
 */
export { Connection, type ConnectionInit, type RecvOptions, type RemoteAddress } from "./src/connection.ts";
export {
  type CloseInfo,
  ConnectionClosed,
  ConnectionClosedError,
  ConnectionClosedOK,
  InvalidOption,
} from "./src/errors.ts";
export type { LimitCloseReason, RefusalReason, ServerCounters } from "./src/counters.ts";
export { DEFAULT_LIMITS, type LimitOptions, type ResolvedLimits, type WriteLimit } from "./src/options.ts";
export type { HandshakeOptions, HeadersInit, OriginPolicy } from "./src/handshake.ts";
export type { Message, OutgoingData, Transport } from "./src/transport.ts";
export type {
  Adapter,
  FetchHandler,
  ListenAddress,
  Listener,
  ListenOptions,
  PendingUpgrade,
} from "./src/adapter.ts";
export type { BunServerWebSocket, BunSocketData, BunWebSocketHandlers } from "./src/adapters/bun_types.ts";
export type { RequestCopy } from "./src/request_copy.ts";
export { createServer } from "./src/create_server.ts";
export {
  type CloseOptions,
  type Embedding,
  type Handler,
  type HandshakeContext,
  type ProcessRequestResult,
  type ServerOptions,
  WebSocketServer,
} from "./src/server.ts";
export { serve, type ServeOptions, Server } from "./src/serve.ts";
export type { Engine } from "./src/engine.ts";
export type { Routes } from "./src/router.ts";
export { connect, type ConnectOptions, InvalidHandshake, InvalidURI } from "./src/client.ts";
export { reconnect, type ReconnectCloseInfo, type ReconnectOptions } from "./src/reconnect.ts";
export { broadcast, type BroadcastResult } from "./src/broadcast.ts";
export type { PublishOptions, PublishResult, Topics } from "./src/connection.ts";
export type { NativeTopics } from "./src/transport.ts";
export type { PubSubBackend } from "./src/pubsub/backend.ts";
export { PublishError } from "./src/pubsub/hub.ts";
export { broadcastChannelBackend } from "./src/pubsub/broadcast_channel.ts";
export type {
  HistoryRead,
  HistoryReadOptions,
  HistoryRule,
  HistoryStore,
  PresenceEvent,
  PresenceMember,
  PresenceStore,
  RecoveryFailure,
  StoredMessage,
  StreamPosition,
} from "./src/history/types.ts";
export type { HistoryOption } from "./src/history/rules.ts";
export type { SubscribeOptions, SubscribeResult, TopicEvent } from "./src/history/subscription.ts";
export { jsonEnvelope } from "./src/history/envelope.ts";
export { answerTopicRequest, type TopicRequestOptions } from "./src/history/topic_requests.ts";
export { type FollowEvent, type FollowOptions, followTopics, TopicFollower } from "./src/history/follow.ts";
