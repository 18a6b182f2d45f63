/**
 * A pub/sub backend over Redis `PUBLISH`/`SUBSCRIBE`, for servers in several
 * processes or on several machines. Each process subscribes only to the
 * topics its own connections subscribe to, and delivers only to them. Topic
 * history (Redis Streams) and presence (Redis hashes) are shared by every
 * process of the backend.
 *
 * Built on `ioredis` (npm), which runs on Deno and Bun. If Redis goes away,
 * local delivery goes on, each publish rejects (and is counted and reported
 * by the server) instead of queueing without bound, and the backend
 * reconnects and resubscribes when Redis is back.
 *
 * This module is its own entry point (`@wsport/wsport/redis`) so that
 * `mod.ts` stays free of dependencies.
 *
 * @module
 */
export { type RedisBackend, redisBackend, type RedisBackendOptions } from "./src/pubsub/redis.ts";
export type { Message, PubSubBackend } from "./src/pubsub/redis.ts";
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
