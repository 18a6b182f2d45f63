/**
 * `followTopics()`: a client that follows topics across reconnections,
 * resuming each from the last position it saw (the server answers with
 * `answerTopicRequest`). Deno, Bun, Node and browsers.
 *
 * @module
 */
import type { Connection } from "../connection.ts";
import { ConnectionClosed } from "../errors.ts";
import { reconnect, type ReconnectOptions } from "../reconnect.ts";
import type { Message, OutgoingData } from "../transport.ts";
import { fromBase64 } from "./envelope.ts";
import type { PresenceEvent, RecoveryFailure, StreamPosition } from "./types.ts";

/** What a {@linkcode TopicFollower} yields. */
export type FollowEvent =
  /** A message of a followed topic, with its position when the topic keeps history. */
  | { type: "message"; topic: string; data: Message; position?: StreamPosition }
  /**
   * The server's answer to a (re)subscription. `recovered: false`: messages
   * were lost since the last position (`reason` says why): reload the state.
   */
  | {
    type: "subscribed";
    topic: string;
    recovered: boolean;
    reason?: RecoveryFailure;
    position?: StreamPosition;
  }
  /** The server refused to let this client follow the topic. */
  | { type: "refused"; topic: string; reason: string }
  /** Someone joined or left the topic's presence (with `presence: true`). */
  | { type: "presence"; topic: string; event: PresenceEvent }
  /** A frame that is not part of the topic protocol: the application's own. */
  | { type: "frame"; data: Message };

/** Options of {@linkcode followTopics}: those of `reconnect()`, and: */
export interface FollowOptions extends ReconnectOptions {
  /** Ask for the topics' presence events too. Default `false`. */
  presence?: boolean;
  /** Positions to resume from on the first connection (e.g. saved by a previous page). Default: none. */
  positions?: Record<string, StreamPosition>;
}

const noop = () => {};

/**
 * Follows topics over a connection kept open by `reconnect()`. Iterate it
 * for {@linkcode FollowEvent}s; {@linkcode send} sends over the current
 * connection; {@linkcode close} (or aborting `signal`) ends it.
 */
export class TopicFollower implements AsyncIterable<FollowEvent> {
  /** The last position seen of each topic: where the next connection resumes. */
  readonly positions: Map<string, StreamPosition>;
  #topics: Set<string>;
  #url: string | URL;
  #options: FollowOptions;
  #stop = new AbortController();
  #connection: Connection | undefined;
  #started = false;

  /** Prefer {@linkcode followTopics}. */
  constructor(url: string | URL, topics: Iterable<string>, options: FollowOptions = {}) {
    this.#url = url;
    this.#topics = new Set(topics);
    this.#options = options;
    this.positions = new Map(Object.entries(options.positions ?? {}));
  }

  /** The open connection, if any. */
  get connection(): Connection | undefined {
    return this.#connection;
  }

  /** Sends over the current connection; rejects with `ConnectionClosed` while there is none. */
  send(data: OutgoingData): Promise<void> {
    const connection = this.#connection;
    if (!connection) {
      const closed = ConnectionClosed.from({ code: 1006, reason: "not connected" });
      return Promise.reject(closed);
    }
    return connection.send(data);
  }

  /** Follows one more topic (now, and on every reconnection). */
  follow(topic: string): void {
    if (this.#topics.has(topic)) return;
    this.#topics.add(topic);
    this.#connection?.send(this.#request(topic)).catch(noop);
  }

  /** Stops following a topic. */
  unfollow(topic: string): void {
    if (!this.#topics.delete(topic)) return;
    this.#connection?.send(JSON.stringify({ unsubscribe: topic })).catch(noop);
  }

  /** Ends the iteration and closes the connection. */
  close(): void {
    this.#stop.abort();
  }

  #request(topic: string): string {
    const since = this.positions.get(topic);
    return JSON.stringify({ subscribe: topic, since, presence: this.#options.presence || undefined });
  }

  /** Keeps the later of two positions of a topic (or the newer epoch's). */
  #advance(topic: string, position: StreamPosition | undefined): void {
    if (!position) return;
    const current = this.positions.get(topic);
    if (!current || current.epoch !== position.epoch || current.offset < position.offset) {
      this.positions.set(topic, position);
    }
  }

  /** Turns a frame into an event, keeping positions up to date. */
  #parse(message: Message): FollowEvent {
    if (typeof message !== "string" || !message.startsWith('{"topic"')) {
      return { type: "frame", data: message };
    }
    let frame;
    try {
      frame = JSON.parse(message);
    } catch {
      return { type: "frame", data: message };
    }
    const topic: string = frame.topic;
    if (frame.presence) return { type: "presence", topic, event: frame.presence };
    if (frame.subscribed) {
      const { recovered, reason, position } = frame.subscribed;
      // After a failed recovery the application reloads its state as of now: later reconnections
      // resume from here (a position of another epoch replaces the old one).
      this.#advance(topic, position);
      return { type: "subscribed", topic, recovered, reason, position };
    }
    if (frame.refused !== undefined) return { type: "refused", topic, reason: frame.refused };
    if (!("data" in frame)) return { type: "frame", data: message };
    const data: Message = frame.binary ? fromBase64(frame.data) : frame.data;
    const position = typeof frame.epoch === "string"
      ? { epoch: frame.epoch, offset: frame.offset }
      : undefined;
    this.#advance(topic, position);
    return position ? { type: "message", topic, data, position } : { type: "message", topic, data };
  }

  /**
   * Connects (again and again, as `reconnect()` does), sends the subscribe
   * requests with the last positions, and yields what arrives. Iterate once.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<FollowEvent, void, undefined> {
    if (this.#started) throw new TypeError("a TopicFollower can be iterated once");
    this.#started = true;
    const signal = this.#options.signal
      ? AbortSignal.any([this.#options.signal, this.#stop.signal])
      : this.#stop.signal;
    const { presence: _presence, positions: _positions, ...reconnectOptions } = this.#options;
    for await (const ws of reconnect(this.#url, { ...reconnectOptions, signal })) {
      this.#connection = ws;
      try {
        for (const topic of this.#topics) ws.send(this.#request(topic)).catch(noop);
        for await (const message of ws) yield this.#parse(message);
      } catch (error) {
        if (!(error instanceof ConnectionClosed)) throw error;
      } finally {
        this.#connection = undefined;
      }
    }
  }
}

/**
 * Follows `topics` on a server that answers with `answerTopicRequest`,
 * reconnecting with backoff as `reconnect()` does, and after every
 * reconnection resuming each topic from the last position it saw: the
 * messages published meanwhile arrive once each, in order, then the live
 * ones. When the server cannot resume a topic (history lost, too far
 * behind, expired) the `subscribed` event says `recovered: false`.
 *
 * @example
 * ```ts ignore
 * import { followTopics } from "@wsport/wsport";
 *
 * const follower = followTopics("wss://example.com/chat", ["room:blue"], { presence: true });
 * for await (const event of follower) {
 *   if (event.type === "message") console.log(event.topic, event.data, event.position);
 *   if (event.type === "subscribed" && !event.recovered) console.log("reload: missed messages", event.reason);
 * }
 * ```
 */
export function followTopics(
  url: string | URL,
  topics: Iterable<string>,
  options?: FollowOptions,
): TopicFollower {
  return new TopicFollower(url, topics, options);
}
