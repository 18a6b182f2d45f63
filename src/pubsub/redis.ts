/**
 * The Redis pub/sub backend (entry point: `redis.ts` at the root).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { Redis, type RedisOptions } from "ioredis";
import type { PubSubBackend } from "./backend.ts";

export type { PubSubBackend };
export type { Message } from "../transport.ts";

/** Options of {@linkcode redisBackend}. */
export interface RedisBackendOptions {
  /** Prefix of the Redis channel of each topic. Default `"wsport:"`. */
  prefix?: string;
  /** How long publishes made before the first connection wait for it, in ms. Default 5,000. */
  connectTimeout?: number;
  /** Longest wait between reconnection attempts, in ms. Default 2,000. */
  maxReconnectDelay?: number;
  /** Called when a Redis connection fails or recovers. Default: one `console.warn` per change. */
  onStatus?(status: "down" | "up", error?: unknown): void;
  /** More ioredis options (TLS, auth, …), passed to `new Redis()` as they are. */
  redis?: Record<string, unknown>;
}

const TEXT = 0;
const BINARY = 1;
const ORIGIN_BYTES = 16;

/**
 * Creates a Redis backend for `url` (`redis://host:port/db`).
 *
 * @example Two processes with the same REDIS_URL share topics
 * ```ts ignore
 * import { serve } from "@wsport/wsport";
 * import { redisBackend } from "@wsport/wsport/redis";
 *
 * serve((ws) => ws.subscribe("chat"), { pubsub: redisBackend("redis://127.0.0.1:6379") });
 * ```
 */
export function redisBackend(url: string, options: RedisBackendOptions = {}): PubSubBackend {
  const prefix = options.prefix ?? "wsport:";
  const origin = crypto.getRandomValues(new Uint8Array(ORIGIN_BYTES));
  const maxDelay = options.maxReconnectDelay ?? 2000;
  let down = false;
  const onStatus = options.onStatus ?? ((status, error) => {
    if (status === "down") console.warn(`wsport: Redis unreachable (${String(error)}); retrying`);
    else console.warn("wsport: Redis reachable again");
  });
  const common: RedisOptions = {
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, maxDelay),
    lazyConnect: false,
    ...options.redis as RedisOptions,
  };
  // Publishing fails fast while Redis is away instead of queueing without bound.
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
    if (down) return;
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
  // The first publishes may come while the first connection is still being made:
  // they wait for it (up to connectTimeout), later ones fail fast.
  const connectTimeout = options.connectTimeout ?? 5000;
  let firstConnection: Promise<void> | undefined = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, connectTimeout);
    publisher.once("ready", () => {
      clearTimeout(timer);
      resolve();
    });
    publisher.once("end", () => clearTimeout(timer));
  }).then(() => firstConnection = undefined);

  return {
    start(deliver) {
      subscriber.on("messageBuffer", (channel: Buffer, payload: Buffer) => {
        if (payload.length < 1 + ORIGIN_BYTES) return;
        // Our own publishes come back from Redis: they were delivered locally already.
        if (origin.every((byte, i) => payload[1 + i] === byte)) return;
        const body = payload.subarray(1 + ORIGIN_BYTES);
        const topic = channel.toString("utf8").slice(prefix.length);
        deliver(topic, payload[0] === TEXT ? body.toString("utf8") : new Uint8Array(body));
      });
    },
    subscribe(topic) {
      subscriber.subscribe(prefix + topic).catch(setDown);
    },
    unsubscribe(topic) {
      subscriber.unsubscribe(prefix + topic).catch(setDown);
    },
    async publish(topic, message) {
      if (firstConnection) await firstConnection;
      const body = typeof message === "string" ? Buffer.from(message, "utf8") : Buffer.from(message);
      const payload = Buffer.concat([
        Buffer.from([typeof message === "string" ? TEXT : BINARY]),
        origin,
        body,
      ]);
      await publisher.publish(prefix + topic, payload);
    },
    async close() {
      firstConnection = undefined;
      publisher.disconnect();
      subscriber.disconnect();
      await Promise.resolve();
    },
  };
}
