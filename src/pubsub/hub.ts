/**
 * The topic hub of one server: who is subscribed to what on this process,
 * local delivery (Bun's native fan-out where present, else one pass over the
 * subscribers), the backend that reaches other processes, and, for topics
 * with a history rule, positions, recovery and presence.
 *
 * @module
 */
import type { Connection, PublishResult, Topics } from "../connection.ts";
import type { ServerCounters } from "../counters.ts";
import type { Message, NativeTopics, OutgoingData } from "../transport.ts";
import type { PubSubBackend } from "./backend.ts";
import { broadcast } from "../broadcast.ts";
import { InvalidOption, quietReject } from "../errors.ts";
import { yieldIfTurnIsLong } from "../turn.ts";
import { sharedSend } from "../shared_send.ts";
import { type HistoryOption, historyRules, type RuleLookup } from "../history/rules.ts";
import { MemoryHistory } from "../history/memory.ts";
import { MemoryPresence } from "../history/presence.ts";
import type {
  HistoryRead,
  HistoryReadOptions,
  HistoryRule,
  PresenceEvent,
  PresenceMember,
  PresenceStore,
  StreamPosition,
} from "../history/types.ts";
import type { SubscribeOptions, SubscribeResult, TopicEvent } from "../history/subscription.ts";

const NO_DELIVERY: PublishResult = Object.freeze({ delivered: 0, skipped: 0 });
const RECOVERED: SubscribeResult = Object.freeze({ recovered: true });
const RECOVERED_NOW: Promise<SubscribeResult> = Promise.resolve(RECOVERED);

/** A publish result with the position the message was stored at. */
export type PositionedResult = PublishResult & { position?: StreamPosition };

/**
 * The result of a publish that involved no backend: at once, or on the next
 * turn of the event loop once this one has run long, so that a loop of
 * `await publish()` lets the runtime write and other connections run.
 */
function resultSoon<T>(local: T): Promise<T> {
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

/** A message kept in history must not change when the publisher reuses its buffer: a copy. */
function toStoredMessage(data: OutgoingData): Message {
  if (typeof data === "string") return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  return new Uint8Array(data.slice(0));
}

/** A live message held for a subscription while its history is being replayed. */
interface Held {
  data: Message;
  position: StreamPosition | undefined;
}

/**
 * A subscription with options (an envelope, presence events, a position to
 * resume from). Plain subscriptions have none: they cost what they did
 * before history existed.
 */
interface Subscription {
  envelope: ((event: TopicEvent) => OutgoingData) | undefined;
  presence: boolean;
  /** Live messages held while the history is replayed; `undefined` once live. */
  held: Held[] | undefined;
  /** Live messages that may be held: past it the replay gives up (`too-far-behind`). */
  holdLimit: number;
  /** Set when more than `holdLimit` arrived during the replay. */
  overflowed: boolean;
  /**
   * The last position sent from the history, until a live message past it
   * arrives: a backend reads history and receives live messages on separate
   * connections, so a message the read returned may still arrive live after
   * the replay ended. Live messages at or before it are not sent again.
   */
  replayedUpTo: StreamPosition | undefined;
}

/** What the hub is made with, beside the counters. */
export interface HubOptions {
  /** The server's `history` option. */
  history?: HistoryOption;
}

/** Topics of one server. */
export class TopicHub implements Topics {
  #subscribers = new Map<string, Set<Connection>>();
  /** Subscriptions with options, by topic: only topics that have some are here. */
  #special = new Map<string, Map<Connection, Subscription>>();
  /** Backend subscriptions still being made, by topic (recovery waits for them). */
  #backendReady = new Map<string, Promise<void>>();
  #backend: PubSubBackend | undefined;
  #counters: ServerCounters;
  #onError: (error: unknown) => void;
  #rules: RuleLookup | undefined;
  #memory: MemoryHistory | undefined;
  #presence: PresenceStore | undefined;
  /** Bun's native fan-out, learned from the first upgrade. */
  native: NativeTopics | undefined;

  /** Creates a hub, and starts the backend if one is given. */
  constructor(
    counters: ServerCounters,
    backend: PubSubBackend | undefined,
    onError: (error: unknown) => void,
    options: HubOptions = {},
  ) {
    this.#counters = counters;
    this.#backend = backend;
    this.#onError = onError;
    if (options.history !== undefined) {
      this.#rules = historyRules(options.history);
      if (backend && !backend.history) {
        throw new InvalidOption(
          "history needs one ordering authority for every process: the pubsub backend keeps no history " +
            "(broadcastChannelBackend cannot; redisBackend can). Drop the backend or the history option.",
        );
      }
      if (!backend) this.#memory = new MemoryHistory();
    }
    // Presence is per process without a backend; a backend without presence would show only
    // this process's members as if they were all, so presence is refused there (join rejects).
    this.#presence = backend
      ? backend.presence
      : new MemoryPresence((topic, event) => this.#announce(topic, event));
    backend?.start((topic, message, position) => {
      this.#counters.pubsub.received++;
      this.#deliverLocally(topic, message, undefined, position);
    }, (topic, event) => this.#announce(topic, event));
  }

  /** Local subscribers of a topic. */
  count(topic: string): number {
    return this.#subscribers.get(topic)?.size ?? 0;
  }

  /** The history rule of a topic, if it keeps history. */
  ruleOf(topic: string): Required<HistoryRule> | undefined {
    return this.#rules?.(topic);
  }

  subscribe(connection: Connection, topic: string, options?: SubscribeOptions): Promise<SubscribeResult> {
    let set = this.#subscribers.get(topic);
    if (!set) {
      this.#subscribers.set(topic, set = new Set());
      const ready = this.#backend?.subscribe(topic);
      if (ready instanceof Promise) {
        const settled = ready.then(() => {}, (error) => this.#onError(error)).finally(() => {
          if (this.#backendReady.get(topic) === settled) this.#backendReady.delete(topic);
        });
        this.#backendReady.set(topic, settled);
      }
    }
    set.add(connection);
    if (!options || (!options.since && !options.envelope && !options.presence)) {
      connection.transport.subscribe?.(topic);
      return this.#rules ? this.#positionNow(topic) : RECOVERED_NOW;
    }
    const subscription: Subscription = {
      envelope: options.envelope,
      presence: options.presence === true,
      held: undefined,
      holdLimit: 0,
      overflowed: false,
      replayedUpTo: undefined,
    };
    let special = this.#special.get(topic);
    if (!special) this.#special.set(topic, special = new Map());
    special.set(connection, subscription);
    const since = options.since;
    if (!since) return this.#positionNow(topic);
    const rule = this.#rules?.(topic);
    if (!rule) return Promise.resolve({ recovered: false, reason: "no-history" });
    subscription.held = [];
    subscription.holdLimit = rule.size;
    return this.#replay(connection, topic, subscription, since, rule);
  }

  /** The position of a topic that keeps history, as a subscription's result. */
  #positionNow(topic: string): Promise<SubscribeResult> {
    const rule = this.#rules?.(topic);
    if (!rule) return RECOVERED_NOW;
    if (this.#memory) {
      return Promise.resolve({ recovered: true, position: this.#memory.position(topic, rule) });
    }
    return this.#backend!.history!.read(topic, { limit: 0 }, rule).then(
      (read) => ({ recovered: true, position: read.position }),
      (error) => {
        this.#onError(error);
        return RECOVERED;
      },
    );
  }

  /**
   * Sends what the history holds after `since`, then what arrived live
   * meanwhile and was not in it, then lets the subscription go live. With
   * the in-memory store all of it happens before `subscribe()` returns.
   */
  async #replay(
    connection: Connection,
    topic: string,
    subscription: Subscription,
    since: StreamPosition,
    rule: Required<HistoryRule>,
  ): Promise<SubscribeResult> {
    let read: HistoryRead | undefined;
    let failure: unknown;
    try {
      // Nothing may fall between the history read and live delivery: the backend must be receiving first.
      const ready = this.#backendReady.get(topic);
      if (ready) await ready;
      read = this.#memory ? this.#memory.read(topic, { since }, rule) : await this.#backend!.history!.read(
        topic,
        { since },
        rule,
      );
    } catch (error) {
      failure = error;
    }
    const held = subscription.held ?? [];
    subscription.held = undefined;
    if (this.#special.get(topic)?.get(connection) !== subscription) {
      return { recovered: false }; // unsubscribed (or closed) during the replay
    }
    let last = since.offset;
    let lastPosition: StreamPosition | undefined;
    let result: SubscribeResult;
    if (!read) {
      this.#onError(failure);
      result = { recovered: false };
    } else if (subscription.overflowed) {
      result = { recovered: false, reason: "too-far-behind", position: read.position };
    } else if (read.recovered) {
      for (const stored of read.messages) {
        this.#sendReplayed(connection, subscription, topic, stored.data, stored.position);
        last = stored.position.offset;
        lastPosition = stored.position;
      }
      result = { recovered: true, position: read.position };
    } else {
      result = { recovered: false, reason: read.reason, position: read.position };
    }
    const epoch = read?.position.epoch;
    for (const message of held) {
      const position = message.position;
      // Already sent from the history: the switch from replay to live sends nothing twice.
      if (result.recovered && position?.epoch === epoch && position!.offset <= last) continue;
      this.#sendReplayed(connection, subscription, topic, message.data, position);
      lastPosition = position;
    }
    if (result.recovered) subscription.replayedUpTo = lastPosition;
    if (failure !== undefined) return quietReject(failure);
    return result;
  }

  unsubscribe(connection: Connection, topic: string): void {
    const set = this.#subscribers.get(topic);
    if (!set?.delete(connection)) return;
    const special = this.#special.get(topic);
    if (special?.delete(connection)) {
      if (special.size === 0) this.#special.delete(topic);
    } else {
      connection.transport.unsubscribe?.(topic);
    }
    if (set.size === 0) {
      this.#subscribers.delete(topic);
      this.#backend?.unsubscribe(topic);
    }
  }

  publish(topic: string, data: OutgoingData, except?: Connection): Promise<PositionedResult> {
    const rule = this.#rules?.(topic);
    if (rule) return this.#publishKept(topic, data, except, rule);
    const local = this.#deliverLocally(topic, data, except, undefined);
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

  /**
   * A publish to a topic that keeps history. In memory: stored, then
   * delivered at once. With a backend's history: stored there, and
   * delivered by the backend to every process (this one too) in position
   * order, so nothing is delivered here now (`delivered` is 0).
   */
  #publishKept(
    topic: string,
    data: OutgoingData,
    except: Connection | undefined,
    rule: Required<HistoryRule>,
  ): Promise<PositionedResult> {
    const message = toStoredMessage(data);
    this.#counters.pubsub.published++;
    if (this.#memory) {
      const position = this.#memory.append(topic, message, rule);
      const local = this.#deliverLocally(topic, message, except, position);
      return resultSoon({ delivered: local.delivered, skipped: local.skipped, position });
    }
    let appended;
    try {
      appended = this.#backend!.history!.append(topic, message, rule);
    } catch (error) {
      return this.#failed(topic, NO_DELIVERY, error);
    }
    const result = appended.then((position) => ({ delivered: 0, skipped: 0, position }), (error) => {
      throw this.#failure(topic, NO_DELIVERY, error);
    });
    result.catch(() => {});
    return result;
  }

  /** Reads a topic's history; rejects with InvalidOption for a topic that keeps none. */
  history(topic: string, options: HistoryReadOptions = {}): Promise<HistoryRead> {
    const rule = this.#rules?.(topic);
    if (!rule) {
      return quietReject(new InvalidOption(`topic "${topic}" keeps no history (see the history option)`));
    }
    if (this.#memory) return Promise.resolve(this.#memory.read(topic, options, rule));
    return this.#backend!.history!.read(topic, options, rule);
  }

  /** Adds a connection to a topic's presence. */
  join(connection: Connection, topic: string, info: unknown): Promise<void> {
    const store = this.#presence;
    if (!store) return quietReject(this.#noPresence());
    return store.join(topic, { id: connection.id, info });
  }

  /** Removes a connection from a topic's presence. */
  leave(connection: Connection, topic: string): Promise<void> {
    const store = this.#presence;
    if (!store) return quietReject(this.#noPresence());
    const left = store.leave(topic, connection.id);
    left.catch((error) => this.#onError(error));
    return left;
  }

  /** The members of a topic's presence, on every process sharing the backend. */
  members(topic: string): Promise<PresenceMember[]> {
    const store = this.#presence;
    if (!store) return quietReject(this.#noPresence());
    return store.members(topic);
  }

  #noPresence(): InvalidOption {
    return new InvalidOption(
      "presence needs a pubsub backend that keeps presence for every process (redisBackend), or none",
    );
  }

  /** Hands a presence change to the subscriptions that asked for them. */
  #announce(topic: string, presence: PresenceEvent): void {
    const special = this.#special.get(topic);
    if (!special) return;
    const event: TopicEvent = { topic, presence };
    for (const [connection, subscription] of special) {
      if (subscription.presence && subscription.envelope) connection.trySend(subscription.envelope(event));
    }
  }

  #failed<T>(topic: string, local: PublishResult, cause: unknown): Promise<T> {
    return quietReject(this.#failure(topic, local, cause));
  }

  /** Counts and reports a backend failure, so that nothing fails silently. */
  #failure(topic: string, local: PublishResult, cause: unknown): PublishError {
    this.#counters.pubsub.publishFailures++;
    const error = new PublishError(topic, local, cause);
    this.#onError(error);
    return error;
  }

  #deliverLocally(
    topic: string,
    data: OutgoingData,
    except: Connection | undefined,
    position: StreamPosition | undefined,
  ): PublishResult {
    const set = this.#subscribers.get(topic);
    if (!set) return NO_DELIVERY;
    const special = this.#special.get(topic);
    if (special) return this.#deliverMixed(set, special, topic, data, except, position);
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

  /** Delivery to a topic some of whose subscriptions have options (they are never natively subscribed). */
  #deliverMixed(
    set: Set<Connection>,
    special: Map<Connection, Subscription>,
    topic: string,
    data: OutgoingData,
    except: Connection | undefined,
    position: StreamPosition | undefined,
  ): PublishResult {
    let delivered = 0;
    let skipped = 0;
    const plain = set.size - special.size;
    const native = this.native;
    if (plain > 0 && native) {
      if (except && !special.has(except) && set.has(except) && except.transport.publishExceptSelf) {
        except.transport.publishExceptSelf(topic, data);
        delivered += plain - 1;
      } else {
        native.publish(topic, data);
        delivered += plain;
      }
    } else if (plain > 0) {
      sharedSend.active = true;
      try {
        for (const connection of set) {
          if (connection === except || special.has(connection)) continue;
          if (connection.trySend(data)) delivered++;
          else skipped++;
        }
      } finally {
        sharedSend.active = false;
        sharedSend.data = sharedSend.frame = undefined;
      }
    }
    const message = toMessage(data);
    // Each envelope wraps the message once, however many subscriptions use it (jsonEnvelope: all followers).
    let lastEnvelope: Subscription["envelope"];
    let lastFrame: OutgoingData | undefined;
    for (const [connection, subscription] of special) {
      if (connection === except) continue;
      if (subscription.held) {
        this.#hold(subscription, message, position);
        continue;
      }
      const replayed = subscription.replayedUpTo;
      if (replayed && position) {
        if (position.epoch === replayed.epoch && position.offset <= replayed.offset) continue; // sent already
        subscription.replayedUpTo = undefined;
      }
      const envelope = subscription.envelope;
      let frame: OutgoingData = message;
      if (envelope) {
        if (envelope !== lastEnvelope) {
          lastEnvelope = envelope;
          lastFrame = envelope({ topic, data: message, position });
        }
        frame = lastFrame!;
      }
      if (connection.trySend(frame)) delivered++;
      else skipped++;
    }
    this.#counters.pubsub.skipped += skipped;
    return { delivered, skipped };
  }

  /** Holds a live message for a subscription that is replaying; gives up past its limit. */
  #hold(subscription: Subscription, data: Message, position: StreamPosition | undefined): void {
    const held = subscription.held!;
    if (subscription.overflowed) return;
    if (held.length >= subscription.holdLimit) {
      // More arrived during the replay than the history keeps: the reader is too far behind.
      subscription.overflowed = true;
      held.length = 0;
      return;
    }
    held.push({ data, position });
  }

  /** Sends a replayed message: with `send()`, never skipped (the history it comes from is bounded). */
  #sendReplayed(
    connection: Connection,
    subscription: Subscription,
    topic: string,
    data: Message,
    position: StreamPosition | undefined,
  ): void {
    const frame = subscription.envelope ? subscription.envelope({ topic, data, position }) : data;
    connection.send(frame).catch(() => {});
  }

  /** Stops the backend and the history's timer. */
  async close(): Promise<void> {
    this.#memory?.close();
    await this.#backend?.close();
  }
}
