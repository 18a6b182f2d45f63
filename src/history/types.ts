/**
 * The shapes of topic history, recovery and presence, shared by the server,
 * the in-memory store and the backends that keep history for several
 * processes (Redis).
 *
 * @module
 */
import type { Message } from "../transport.ts";

/**
 * Where a message sits in a topic's history: an offset that only grows within
 * an epoch, and the epoch, which changes whenever the history was lost (a
 * flushed Redis, a restarted process with in-memory history). A position of
 * another epoch is never compared by offset: recovery from it fails with
 * `reason: "epoch"`.
 *
 * @example
 * ```ts
 * import type { StreamPosition } from "./types.ts";
 *
 * const position: StreamPosition = { epoch: "k3x9", offset: 41 };
 * ```
 */
export interface StreamPosition {
  /** Changes when the history is lost; opaque. */
  readonly epoch: string;
  /** The message's number in its topic: 1 for the first, then +1 for each. 0: nothing published yet. */
  readonly offset: number;
}

/**
 * How much history a topic keeps.
 *
 * @example
 * ```ts
 * import type { HistoryRule } from "./types.ts";
 *
 * const chat: HistoryRule = { size: 100, ttl: 5 * 60_000 };
 * ```
 */
export interface HistoryRule {
  /** Messages kept per topic (the oldest go first). */
  size: number;
  /** How long a message is kept, in milliseconds. Default 300,000 (5 minutes). */
  ttl?: number;
}

/** Why a subscription could not resume from its position. */
export type RecoveryFailure =
  /** The history was lost since (another epoch): the position means nothing now. */
  | "epoch"
  /** Messages after the position were dropped to keep the history at `size`. */
  | "too-far-behind"
  /** Messages after the position were dropped because they outlived `ttl`. */
  | "expired"
  /** The topic keeps no history (no rule of the server's `history` option matches it). */
  | "no-history";

/** A stored message and its position. */
export interface StoredMessage {
  /** The message as published. */
  readonly data: Message;
  /** Its position. */
  readonly position: StreamPosition;
}

/** What a history read found. */
export interface HistoryRead {
  /** The messages after `since` (or all kept, without it), oldest first, at most `limit`. */
  readonly messages: readonly StoredMessage[];
  /** The topic's latest position (its epoch, and the offset of its last message). */
  readonly position: StreamPosition;
  /** Whether every message after `since` was still there (always `true` without `since`). */
  readonly recovered: boolean;
  /** Why not, when `recovered` is `false`. */
  readonly reason?: RecoveryFailure;
}

/** Options of a history read. */
export interface HistoryReadOptions {
  /** Read what came after this position. Default: everything kept. */
  since?: StreamPosition;
  /** At most this many messages (the oldest after `since`). Default: all. */
  limit?: number;
}

/** A member of a topic's presence. */
export interface PresenceMember {
  /** The id of the connection that joined (unique across processes). */
  readonly id: string;
  /** What it joined with (JSON-serialisable). */
  readonly info: unknown;
}

/** A presence change: someone joined or left a topic. */
export interface PresenceEvent {
  /** `"join"` or `"leave"`. */
  readonly type: "join" | "leave";
  /** Who. */
  readonly member: PresenceMember;
}

/**
 * History kept for several processes (a backend's `history`). `append`
 * stores the message and has it delivered live to every process sharing the
 * store, this one included, through the `deliver` callback the backend got
 * in `start`, with its position, in position order: a reader never sees a
 * live message that the history lacks.
 */
export interface HistoryStore {
  /** Stores `message` as the topic's next, publishes it live, and resolves with its position. */
  append(topic: string, message: Message, rule: Required<HistoryRule>): Promise<StreamPosition>;
  /** Reads a topic's history. */
  read(topic: string, options: HistoryReadOptions, rule: Required<HistoryRule>): Promise<HistoryRead>;
}

/**
 * Presence kept for several processes (a backend's `presence`). Members of a
 * process that stops refreshing (it died) disappear within `ttl` of its last
 * refresh. `join` and `leave` reach every process's `presence` callback
 * given in `start`, this one included.
 */
export interface PresenceStore {
  /** Adds a member to a topic's presence. */
  join(topic: string, member: PresenceMember): Promise<void>;
  /** Removes a member. */
  leave(topic: string, id: string): Promise<void>;
  /** Every member of a topic, on every process. */
  members(topic: string): Promise<PresenceMember[]>;
}
