/**
 * A pub/sub backend over `BroadcastChannel`: topic messages reach every
 * server in the same process's workers (Deno and Bun `Worker`s, and
 * `deno serve --parallel` workers). Not across processes or machines: use
 * the Redis backend for that. (Deno Deploy is retiring cross-region
 * `BroadcastChannel`; use Redis there too.)
 *
 * @module
 */
import type { Message } from "../transport.ts";
import type { PubSubBackend } from "./backend.ts";

interface Envelope {
  topic: string;
  message: Message;
}

/**
 * Creates a backend that shares topics through a `BroadcastChannel` named
 * `name`. Every server that should share topics uses the same name.
 *
 * @example Share topics between workers
 * ```ts
 * import { broadcastChannelBackend, serve } from "../../mod.ts";
 *
 * const server = serve((ws) => {
 *   ws.subscribe("news");
 * }, { port: 0, pubsub: broadcastChannelBackend("my-app") });
 * await server.publish("news", "hello from this worker");
 * await server.close();
 * ```
 */
export function broadcastChannelBackend(name = "wsport"): PubSubBackend {
  let channel: BroadcastChannel | undefined;
  return {
    start(deliver) {
      channel = new BroadcastChannel(name);
      channel.onmessage = (event: MessageEvent<Envelope>) => deliver(event.data.topic, event.data.message);
    },
    // Every worker gets every message; the hub drops topics without local subscribers.
    subscribe() {},
    unsubscribe() {},
    publish(topic, message) {
      channel?.postMessage({ topic, message } satisfies Envelope);
    },
    close() {
      channel?.close();
      channel = undefined;
      return Promise.resolve();
    },
  };
}
