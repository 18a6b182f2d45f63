/**
 * The interface a pub/sub backend implements to carry topic messages between
 * processes or isolates. Small on purpose: NATS, Postgres LISTEN/NOTIFY and
 * others fit it.
 *
 * @module
 */
import type { Message } from "../transport.ts";
import type { HistoryStore, PresenceEvent, PresenceStore, StreamPosition } from "../history/types.ts";

/**
 * A pub/sub backend. The server calls `start` once, then `subscribe` when a
 * topic gains its first local subscriber and `unsubscribe` when it loses its
 * last, `publish` for every message published on this process, and `close`
 * on shutdown. The backend delivers messages from *other* processes through
 * the `deliver` callback it got in `start`, never echoing this process's own
 * publishes (local delivery has already happened).
 *
 * @example A backend that only logs (the shape to implement)
 * ```ts
 * import type { PubSubBackend } from "./backend.ts";
 *
 * const logging: PubSubBackend = {
 *   start(_deliver) {},
 *   subscribe(topic) { console.log("first subscriber of", topic); },
 *   unsubscribe(topic) { console.log("no subscribers left for", topic); },
 *   publish(topic, message) { console.log("publish", topic, message); },
 *   async close() {},
 * };
 * ```
 */
export interface PubSubBackend {
  /**
   * Starts the backend; `deliver` hands messages from other processes to local
   * subscribers (with their position, for topics kept in the backend's
   * `history`), and `presence` hands over the presence changes of every process.
   */
  start(
    deliver: (topic: string, message: Message, position?: StreamPosition) => void,
    presence?: (topic: string, event: PresenceEvent) => void,
  ): void;
  /**
   * This process has its first subscriber to `topic`. A returned promise
   * resolves once messages of the topic are being received (recovery waits
   * for it, so that nothing falls between the history read and live delivery).
   */
  subscribe(topic: string): void | Promise<void>;
  /** This process has no subscriber to `topic` left. */
  unsubscribe(topic: string): void;
  /** Sends a message to the other processes; may reject (the server counts and reports it). */
  publish(topic: string, message: Message): void | Promise<void>;
  /** Stops the backend and frees its connections. */
  close(): Promise<void>;
  /** History shared by every process of the backend; without it, topics keep no history. */
  history?: HistoryStore;
  /** Presence shared by every process of the backend; without it, presence is not available. */
  presence?: PresenceStore;
}
