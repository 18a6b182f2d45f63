/**
 * The in-memory history of one server: for each topic with a rule, its last
 * messages and their positions, trimmed to the rule's `size` and `ttl`.
 *
 * Trimming by `ttl` happens on each append and read of a topic, plus one
 * timer for the whole store (not one per topic) that frees topics nobody
 * touches any more; `close()` clears it.
 *
 * @module
 */
import type { Message } from "../transport.ts";
import type { HistoryRead, HistoryReadOptions, HistoryRule, StoredMessage, StreamPosition } from "./types.ts";

/** The sweep timer's period is the smallest ttl in use, kept within these bounds (ms). */
const MIN_SWEEP_MS = 1000;
const MAX_SWEEP_MS = 60_000;
/** The array of a log is compacted once this many dropped slots sit in front of it. */
const COMPACT_AFTER = 1024;

/** A random, short, opaque epoch: it changes with every server instance. */
function randomEpoch(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (byte) => byte.toString(36).padStart(2, "0")).join("");
}

/** One topic's kept messages: parallel arrays from `head`, the first of them at offset `first`. */
class TopicLog {
  readonly epoch: string;
  messages: Message[] = [];
  times: number[] = [];
  head = 0;
  /** The offset of `messages[head]`. */
  first = 1;
  /** The offset of the last message appended (0: none yet). */
  last = 0;
  /** The highest offset dropped to keep the log at `size` (0: none). */
  droppedForSize = 0;
  /** When the log was last appended to or created. */
  touched: number;
  ttl: number;

  constructor(epoch: string, now: number, ttl: number) {
    this.epoch = epoch;
    this.touched = now;
    this.ttl = ttl;
  }

  get length(): number {
    return this.messages.length - this.head;
  }

  dropOldest(): void {
    this.messages[this.head] = undefined as unknown as Message; // let the message go now
    this.head++;
    this.first++;
    if (this.head >= COMPACT_AFTER && this.head * 2 >= this.messages.length) {
      this.messages = this.messages.slice(this.head);
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }

  expire(now: number): void {
    const oldest = now - this.ttl;
    while (this.length > 0 && this.times[this.head] <= oldest) this.dropOldest();
  }
}

/**
 * History kept in this process. Positions carry an epoch made of this
 * store's random id and a number per topic log, so that a position from
 * another server instance reads as `reason: "epoch"`, and one from a topic
 * log this store let go (all its messages expired) as `reason: "expired"`.
 */
export class MemoryHistory {
  /** This store's random id: the first part of every epoch it hands out. */
  readonly id: string = randomEpoch();
  #logs = new Map<string, TopicLog>();
  #logsMade = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #sweepMs = MAX_SWEEP_MS;

  /** Stores `message` as the topic's next and returns its position. */
  append(topic: string, message: Message, rule: Required<HistoryRule>, now = Date.now()): StreamPosition {
    const log = this.#log(topic, rule, now);
    log.expire(now);
    log.messages.push(message);
    log.times.push(now);
    log.last++;
    log.touched = now;
    while (log.length > rule.size) {
      log.droppedForSize = log.first;
      log.dropOldest();
    }
    return { epoch: log.epoch, offset: log.last };
  }

  /** The topic's latest position (a log is made for it if it has none). */
  position(topic: string, rule: Required<HistoryRule>, now = Date.now()): StreamPosition {
    const log = this.#log(topic, rule, now);
    return { epoch: log.epoch, offset: log.last };
  }

  /** Reads the topic's history after `since` (everything kept, without it). */
  read(
    topic: string,
    options: HistoryReadOptions,
    rule: Required<HistoryRule>,
    now = Date.now(),
  ): HistoryRead {
    const log = this.#log(topic, rule, now);
    log.expire(now);
    const position = { epoch: log.epoch, offset: log.last };
    const since = options.since;
    let from = log.first; // the offset of the first message to return
    if (since) {
      if (since.epoch !== log.epoch || since.offset > log.last || since.offset < 0) {
        // A log of this store that was let go: its messages had all expired.
        const ours = since.epoch.startsWith(this.id + ":") && since.epoch !== log.epoch;
        return { messages: [], position, recovered: false, reason: ours ? "expired" : "epoch" };
      }
      const missing = since.offset + 1; // the first message the reader lacks
      if (missing < log.first) {
        const reason = missing <= log.droppedForSize ? "too-far-behind" : "expired";
        return { messages: [], position, recovered: false, reason };
      }
      from = missing;
    }
    const limit = options.limit ?? Infinity;
    const messages: StoredMessage[] = [];
    for (let offset = from; offset <= log.last && messages.length < limit; offset++) {
      const data = log.messages[log.head + offset - log.first];
      messages.push({ data, position: { epoch: log.epoch, offset } });
    }
    return { messages, position, recovered: true };
  }

  #log(topic: string, rule: Required<HistoryRule>, now: number): TopicLog {
    let log = this.#logs.get(topic);
    if (!log) {
      log = new TopicLog(`${this.id}:${(++this.#logsMade).toString(36)}`, now, rule.ttl);
      this.#logs.set(topic, log);
      this.#schedule(rule.ttl);
    }
    log.ttl = rule.ttl;
    return log;
  }

  /** Keeps one sweep timer while any log exists, as often as the smallest ttl (within bounds). */
  #schedule(ttl: number): void {
    const period = Math.min(MAX_SWEEP_MS, Math.max(MIN_SWEEP_MS, ttl));
    if (this.#timer !== undefined && period >= this.#sweepMs) return;
    clearTimeout(this.#timer);
    this.#sweepMs = period;
    this.#timer = setTimeout(() => this.#sweep(), period);
    // Where timers can be unref'd (Node, Bun), the sweep alone does not keep the process alive.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** Drops expired messages everywhere, and the logs left empty for a whole ttl. */
  #sweep(now = Date.now()): void {
    this.#timer = undefined;
    let smallestTtl = Infinity;
    for (const [topic, log] of this.#logs) {
      log.expire(now);
      if (log.length === 0 && now - log.touched >= log.ttl) this.#logs.delete(topic);
      else smallestTtl = Math.min(smallestTtl, log.ttl);
    }
    this.#sweepMs = MAX_SWEEP_MS;
    if (this.#logs.size > 0) this.#schedule(smallestTtl);
  }

  /** Messages stored, over every topic (for tests and the bench). */
  get size(): number {
    let total = 0;
    for (const log of this.#logs.values()) total += log.length;
    return total;
  }

  /** Stops the sweep timer and forgets everything. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#logs.clear();
  }
}
