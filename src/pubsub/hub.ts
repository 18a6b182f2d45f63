/**
 * The topic hub of one server: who is subscribed to what on this process,
 * local delivery (Bun's native fan-out where present, else one pass over the
 * subscribers), and the backend that reaches other processes.
 *
 * @module
 */
import type { Connection, PublishResult, Topics } from "../connection.ts";
import type { ServerCounters } from "../counters.ts";
import type { Message, NativeTopics, OutgoingData } from "../transport.ts";
import type { PubSubBackend } from "./backend.ts";
import { broadcast } from "../broadcast.ts";
import { quietReject } from "../errors.ts";
import { yieldIfTurnIsLong } from "../turn.ts";

const NO_DELIVERY: PublishResult = Object.freeze({ delivered: 0, skipped: 0 });

/**
 * The result of a publish that involved no backend: at once, or on the next
 * turn of the event loop once this one has run long, so that a loop of
 * `await publish()` lets the runtime write and other connections run.
 */
function resultSoon(local: PublishResult): Promise<PublishResult> {
  const turnEnded = yieldIfTurnIsLong();
  return turnEnded ? turnEnded.then(() => local) : Promise.resolve(local);
}

/** A publish whose local delivery happened but whose backend failed. */
export class PublishError extends Error {
  /** What local delivery did before the backend failed. */
  readonly local: PublishResult;

  /** Wraps the backend's error. */
  constructor(topic: string, local: PublishResult, cause: unknown) {
    super(`publish to "${topic}" reached local subscribers but not the backend: ${String(cause)}`, { cause });
    this.name = "PublishError";
    this.local = local;
  }
}

function toMessage(data: OutgoingData): Message {
  if (typeof data === "string") return data;
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

/** Topics of one server. */
export class TopicHub implements Topics {
  #subscribers = new Map<string, Set<Connection>>();
  #backend: PubSubBackend | undefined;
  #counters: ServerCounters;
  #onError: (error: unknown) => void;
  /** Bun's native fan-out, learned from the first upgrade. */
  native: NativeTopics | undefined;

  /** Creates a hub, and starts the backend if one is given. */
  constructor(
    counters: ServerCounters,
    backend: PubSubBackend | undefined,
    onError: (error: unknown) => void,
  ) {
    this.#counters = counters;
    this.#backend = backend;
    this.#onError = onError;
    backend?.start((topic, message) => {
      counters.pubsub.received++;
      this.#deliverLocally(topic, message, undefined);
    });
  }

  /** Local subscribers of a topic. */
  count(topic: string): number {
    return this.#subscribers.get(topic)?.size ?? 0;
  }

  subscribe(connection: Connection, topic: string): void {
    let set = this.#subscribers.get(topic);
    if (!set) {
      this.#subscribers.set(topic, set = new Set());
      this.#backend?.subscribe(topic);
    }
    set.add(connection);
    connection.transport.subscribe?.(topic);
  }

  unsubscribe(connection: Connection, topic: string): void {
    const set = this.#subscribers.get(topic);
    if (!set?.delete(connection)) return;
    connection.transport.unsubscribe?.(topic);
    if (set.size === 0) {
      this.#subscribers.delete(topic);
      this.#backend?.unsubscribe(topic);
    }
  }

  publish(topic: string, data: OutgoingData, except?: Connection): Promise<PublishResult> {
    const local = this.#deliverLocally(topic, data, except);
    this.#counters.pubsub.published++;
    const backend = this.#backend;
    if (!backend) return resultSoon(local);
    let sent;
    try {
      sent = backend.publish(topic, toMessage(data));
    } catch (error) {
      return this.#failed(topic, local, error);
    }
    if (!(sent instanceof Promise)) return resultSoon(local);
    const result = sent.then(() => local, (error) => {
      throw this.#failure(topic, local, error);
    });
    result.catch(() => {}); // reported by #failure; rejects only for callers that await
    return result;
  }

  #failed(topic: string, local: PublishResult, cause: unknown): Promise<PublishResult> {
    return quietReject(this.#failure(topic, local, cause));
  }

  /** Counts and reports a backend failure, so that nothing fails silently. */
  #failure(topic: string, local: PublishResult, cause: unknown): PublishError {
    this.#counters.pubsub.publishFailures++;
    const error = new PublishError(topic, local, cause);
    this.#onError(error);
    return error;
  }

  #deliverLocally(topic: string, data: OutgoingData, except: Connection | undefined): PublishResult {
    const set = this.#subscribers.get(topic);
    if (!set) return NO_DELIVERY;
    const native = this.native;
    if (native) {
      // Bun fans out in C++; a subscriber past Bun's backpressure limit (burstLimit: 16 MiB by
      // default) misses the message there. The turn rule of trySend does not apply.
      if (except?.transport.publishExceptSelf && set.has(except)) {
        except.transport.publishExceptSelf(topic, data);
        return { delivered: set.size - 1, skipped: 0 };
      }
      native.publish(topic, data);
      return { delivered: set.size, skipped: 0 };
    }
    const { sent, skipped } = broadcast(set, data, { except });
    this.#counters.pubsub.skipped += skipped;
    return { delivered: sent, skipped };
  }

  /** Stops the backend. */
  async close(): Promise<void> {
    await this.#backend?.close();
  }
}
