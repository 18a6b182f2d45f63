/**
 * One message handed to many connections at once.
 *
 * While {@linkcode broadcast} (and so topic delivery) loops over its
 * connections, `active` is true and no user code runs: the message cannot
 * change. A transport that frames messages itself (the ws engine) keeps the
 * frame it built for the first connection in `data`/`frame` and writes the
 * same bytes to every other socket, instead of framing (and, for text,
 * encoding) the message once per subscriber. The loop clears both when it
 * ends, so no message outlives its broadcast here.
 *
 * @module
 */

/** The state of the broadcast in progress, if any. */
export const sharedSend: {
  /** True while one message is being handed to many connections. */
  active: boolean;
  /** The message the frame below was built from. */
  data: unknown;
  /** What a transport made of `data`, for the next connection of the same loop. */
  frame: unknown;
} = { active: false, data: undefined, frame: undefined };
