/**
 * The shapes of a subscription that asks for more than frames: a position to
 * resume from, an envelope around each message, presence events.
 *
 * @module
 */
import type { Message, OutgoingData } from "../transport.ts";
import type { PresenceEvent, RecoveryFailure, StreamPosition } from "./types.ts";

/**
 * What an envelope wraps: a message (with its position when the topic keeps
 * history) or a presence change.
 */
export type TopicEvent =
  | {
    /** The topic. */
    readonly topic: string;
    /** The message as published. */
    readonly data: Message;
    /** Its position; absent for topics that keep no history. */
    readonly position?: StreamPosition;
    readonly presence?: undefined;
  }
  | {
    /** The topic. */
    readonly topic: string;
    /** Who joined or left. */
    readonly presence: PresenceEvent;
    readonly data?: undefined;
    readonly position?: undefined;
  };

/** Options of `ws.subscribe(topic, options)`. */
export interface SubscribeOptions {
  /**
   * Resume after this position: the messages stored after it are sent first,
   * in order, then the live ones, none twice and none missing. When that is
   * not possible the result says `recovered: false` and why, and the
   * subscription goes on live.
   */
  since?: StreamPosition;
  /**
   * Makes the frame each message of this subscription is sent as (e.g.
   * {@linkcode jsonEnvelope}), so the client can learn the positions. Without
   * it messages are sent untouched, as they were published.
   */
  envelope?: (event: TopicEvent) => OutgoingData;
  /** Also send the topic's presence changes (joins and leaves) through `envelope`, which it requires. */
  presence?: boolean;
}

/** What a subscription did about its `since`. */
export interface SubscribeResult {
  /**
   * `true` when every message after `since` was sent (or no `since` was
   * given); `false` when some were lost and the application should reload
   * its state instead.
   */
  readonly recovered: boolean;
  /** Why not, when `recovered` is `false`. */
  readonly reason?: RecoveryFailure;
  /** The topic's position when the subscription went live (topics that keep history). */
  readonly position?: StreamPosition;
}

export type { PresenceEvent, RecoveryFailure, StreamPosition };
