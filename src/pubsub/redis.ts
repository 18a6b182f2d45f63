/**
 * The Redis pub/sub backend (entry point: `redis.ts` at the root).
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import { Redis, type RedisOptions } from "ioredis";
import type { PubSubBackend } from "./backend.ts";
import type { HistoryStore, PresenceStore } from "../history/types.ts";
import { checkNumber } from "../options.ts";
import { decode, encodePlain, ORIGIN_BYTES } from "./redis_wire.ts";
import { redisHistory } from "./redis_history.ts";
import { RedisPresence } from "./redis_presence.ts";

export type { PubSubBackend };
import type { Message } from "../transport.ts";
export type { Message };

/** Options of {@linkcode redisBackend}. */
export interface RedisBackendOptions {
  /**
   * Prefix of the Redis channel of each topic (`prefix + topic`) and of the
   * keys of its history (`prefix + "history:" + topic`, `prefix +
   * "history-meta:" + topic`) and presence (`prefix + "presence:" + topic`);
   * presence events go on the channel `prefix + "presence"`. Default `"wsport:"`.
   */
  prefix?: string;
  /** How long publishes made before the first connection wait for it, in ms. Default 5,000. */
  connectTimeout?: number;
  /** Longest wait between reconnection attempts, in ms. Default 2,000. */
  maxReconnectDelay?: number;
  /**
   * How long a presence member outlives the last refresh by its process, in
   * ms: each process refreshes its members every `presenceTtl / 3`, so the
   * members of a process that dies disappear within `presenceTtl`. Default
   * 10,000.
   */
  presenceTtl?: number;
  /**
   * How long a topic's history epoch and top offset are kept after its last
   * message, in ms (at least the topic's history `ttl`). Longer than the
   * messages themselves so that a client coming back after they expired
   * learns `"expired"` rather than `"epoch"`. Default 86,400,000 (24 hours).
   */
  historyMetaTtl?: number;
  /** Called when a Redis connection fails or recovers. Default: one `console.warn` per change. */
  onStatus?(status: "down" | "up", error?: unknown): void;
  /** More ioredis options (TLS, auth, …), passed to `new Redis()` as they are. */
  redis?: Record<string, unknown>;
}

/** The Redis backend: a {@linkcode PubSubBackend} with history and presence shared by every process. */
export interface RedisBackend extends PubSubBackend {
  /**
   * Resolves once Redis confirmed the subscription. While Redis is away it
   * waits for the reconnection; it never rejects (failures go to `onStatus`).
   */
  subscribe(topic: string): Promise<void>;
  /** Rejects when Redis cannot be reached (nothing is queued). */
  publish(topic: string, message: Message): Promise<void>;
  /**
   * History in Redis Streams (key `prefix + "history:" + topic`, trimmed to
   * exactly `size`, expiring `ttl` after the last append), with the epoch and
   * top offset in `prefix + "history-meta:" + topic` (kept `historyMetaTtl`).
   * An append stores the message and publishes it in one Lua script, so every
   * process, the appending one included, receives it live in offset order.
   * Messages older than `ttl` are never read, even while Redis still holds
   * them. A read from `since` that misses messages says `"too-far-behind"`
   * when more than `size` messages came after `since`, else `"expired"`; a
   * `since` of another epoch (or past the top offset) says `"epoch"`.
   */
  history: HistoryStore;
  /**
   * Presence in Redis hashes (`prefix + "presence:" + topic`); events reach
   * every process, this one included. Members of a process that dies
   * disappear within `presenceTtl`; their `"leave"` events are sent, best
   * effort, by the next `members()` read of the topic or the next refresh of
   * a process with members in it. `close()` removes this process's members.
   */
  presence: PresenceStore;
}

/**
 * Creates a Redis backend for `url` (`redis://host:port/db`; Redis 5 or
 * later).
 *
 * Topics with history (`history.append`) are stored and published by one
 * Lua script, and delivered to every process in the same order, the
 * appending one included. Plain `publish` reaches only the other processes.
 * If Redis goes away, every operation on it rejects at once (nothing queues
 * without bound) and the backend reconnects and resubscribes by itself.
 *
 * @example Two processes with the same REDIS_URL share topics
 * ```ts ignore
 * import { serve } from "@wsport/wsport";
 * import { redisBackend } from "@wsport/wsport/redis";
 *
 * serve(async (ws) => {
 *   ws.subscribe("chat");
 *   for await (const _ of ws); // subscribed until the peer leaves
 * }, { pubsub: redisBackend("redis://127.0.0.1:6379") });
 * ```
 *
 * @example History and presence, directly
 * ```ts ignore
 * import { redisBackend } from "@wsport/wsport/redis";
 *
 * const backend = redisBackend("redis://127.0.0.1:6379", { presenceTtl: 5_000 });
 * backend.start((topic, message, position) => console.log(topic, message, position));
 * await backend.subscribe("chat");
 * const rule = { size: 100, ttl: 60_000 };
 * const position = await backend.history.append("chat", "hello", rule);
 * const { messages } = await backend.history.read("chat", { since: { ...position, offset: 0 } }, rule);
 * await backend.presence.join("chat", { id: "conn-1", info: { name: "ada" } });
 * console.log(messages, await backend.presence.members("chat"));
 * await backend.close();
 * ```
 */
export function redisBackend(url: string, options: RedisBackendOptions = {}): RedisBackend {
  const prefix = options.prefix ?? "wsport:";
  const origin = crypto.getRandomValues(new Uint8Array(ORIGIN_BYTES));
  const maxDelay = checkNumber("maxReconnectDelay", options.maxReconnectDelay ?? 2000, 0);
  const presenceTtl = checkNumber("presenceTtl", options.presenceTtl ?? 10_000, 3);
  const historyMetaTtl = checkNumber("historyMetaTtl", options.historyMetaTtl ?? 86_400_000, 1);
  const connectTimeout = checkNumber("connectTimeout", options.connectTimeout ?? 5000, 0);
  const presenceChannel = `${prefix}presence`;
  let down = false;
  let closed = false;
  const onStatus = options.onStatus ?? ((status, error) => {
    if (status === "down") console.warn(`wsport: Redis unreachable (${String(error)}); retrying`);
    else console.warn("wsport: Redis reachable again");
  });
  const common: RedisOptions = {
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, maxDelay),
    lazyConnect: false,
    ...options.redis as RedisOptions,
  };
  // Commands fail fast while Redis is away instead of queueing without bound.
  const publisher = new Redis(url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  // The subscriber queues its (few) SUBSCRIBE commands and resubscribes on reconnect.
  // No ready check (INFO) on it: a SUBSCRIBE queued before the connection opens can go
  // out first, and Redis then refuses the INFO on a connection in subscriber mode.
  const subscriber = new Redis(url, {
    ...common,
    autoResubscribe: true,
    maxRetriesPerRequest: null,
    enableReadyCheck: false,
  });

  const setDown = (error: unknown) => {
    if (down || closed) return;
    down = true;
    onStatus("down", error);
  };
  const setUp = () => {
    if (!down) return;
    down = false;
    onStatus("up");
  };
  for (const client of [publisher, subscriber]) {
    client.on("error", setDown);
    client.on("ready", setUp);
  }
  // The first commands may come while the first connection is still being made:
  // they wait for it (up to connectTimeout), later ones fail fast.
  let firstConnection: Promise<void> | undefined = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, connectTimeout);
    publisher.once("ready", () => {
      clearTimeout(timer);
      resolve();
    });
    publisher.once("end", () => clearTimeout(timer));
  }).then(() => firstConnection = undefined);
  const ready = async () => {
    if (firstConnection) await firstConnection;
  };
  const confirmed = (subscribing: Promise<unknown>): Promise<void> =>
    subscribing.then(() => {}, (error) => setDown(error));
  // Presence events of this process come back through the subscriber too: they wait for it.
  let presenceListening: Promise<void> = Promise.resolve();

  const history = redisHistory(publisher, { prefix, metaTtl: historyMetaTtl, ready });
  const presence = new RedisPresence(publisher, {
    prefix,
    channel: presenceChannel,
    ttl: presenceTtl,
    process: Array.from(origin, (byte) => byte.toString(16).padStart(2, "0")).join(""),
    ready,
    listening: () => presenceListening,
  });

  return {
    history,
    presence: {
      join: (topic, member) => presence.join(topic, member),
      leave: (topic, id) => presence.leave(topic, id),
      members: (topic) => presence.members(topic),
    },
    start(deliver, onPresence) {
      subscriber.on("messageBuffer", (channel: Buffer, payload: Buffer) => {
        const received = decode(payload, origin);
        if (received.kind === "message") {
          deliver(channel.toString("utf8").slice(prefix.length), received.message, received.position);
        } else if (received.kind === "presence") {
          onPresence?.(received.topic, received.event);
        }
        // "own": this process's plain publishes come back from Redis; they were delivered locally already.
      });
      presenceListening = confirmed(subscriber.subscribe(presenceChannel));
    },
    subscribe(topic) {
      return confirmed(subscriber.subscribe(prefix + topic));
    },
    unsubscribe(topic) {
      // A topic named like the presence channel shares it: the backend keeps listening.
      if (prefix + topic === presenceChannel) return;
      subscriber.unsubscribe(prefix + topic).catch(setDown);
    },
    async publish(topic, message) {
      await ready();
      await publisher.publish(prefix + topic, encodePlain(origin, message));
    },
    async close() {
      firstConnection = undefined;
      await presence.close(); // (its leaves fail at once while Redis is away)
      closed = true;
      publisher.disconnect();
      subscriber.disconnect();
    },
  };
}
