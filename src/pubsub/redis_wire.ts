/**
 * What the Redis backend sends on its channels, and how a received payload is
 * read back. Three kinds share the channels:
 *
 * - a plain publish (topics without history), sent by the client:
 *   `[0 text | 1 binary][16 bytes: the publishing process][body]`, whose
 *   echo the publishing process drops (it delivered locally already);
 * - a message stored in history, sent by the append script inside Redis:
 *   `[2 text | 3 binary][epoch length: 1 byte][epoch][offset in decimal]:[body]`,
 *   delivered to every process, the publisher's own included;
 * - a presence event, sent by the presence scripts: `[4][JSON]`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Message } from "../transport.ts";
import type { PresenceEvent, StreamPosition } from "../history/types.ts";

/** The first byte of a payload. */
export const Kind = {
  TEXT: 0,
  BINARY: 1,
  STORED_TEXT: 2,
  STORED_BINARY: 3,
  PRESENCE: 4,
} as const;

/** Bytes that name the publishing process in a plain publish. */
export const ORIGIN_BYTES = 16;

const COLON = 0x3a;

/** A received payload, read. */
export type Received =
  | { kind: "message"; message: Message; position?: StreamPosition }
  | { kind: "presence"; topic: string; event: PresenceEvent }
  | { kind: "own" | "malformed" };

/** The payload of a plain publish of `message` by the process `origin`. */
export function encodePlain(origin: Uint8Array, message: Message): Buffer {
  const text = typeof message === "string";
  return Buffer.concat([
    Buffer.from([text ? Kind.TEXT : Kind.BINARY]),
    origin,
    text ? Buffer.from(message, "utf8") : Buffer.from(message.buffer, message.byteOffset, message.byteLength),
  ]);
}

/** A message body as Redis gets it (binary-safe). */
export function body(message: Message): Buffer {
  return typeof message === "string"
    ? Buffer.from(message, "utf8")
    : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
}

/** A body back as the message it was: text as a string, binary as a Uint8Array of its own. */
export function toMessage(bytes: Buffer, text: boolean): Message {
  return text ? bytes.toString("utf8") : new Uint8Array(bytes);
}

/** Reads a payload received on a channel; `origin` tells this process's own plain publishes. */
export function decode(payload: Buffer, origin: Uint8Array): Received {
  switch (payload[0]) {
    case Kind.TEXT:
    case Kind.BINARY: {
      if (payload.length < 1 + ORIGIN_BYTES) return { kind: "malformed" };
      if (origin.every((byte, i) => payload[1 + i] === byte)) return { kind: "own" };
      return {
        kind: "message",
        message: toMessage(payload.subarray(1 + ORIGIN_BYTES), payload[0] === Kind.TEXT),
      };
    }
    case Kind.STORED_TEXT:
    case Kind.STORED_BINARY: {
      const epochEnd = 2 + (payload[1] ?? 0);
      const colon = payload.indexOf(COLON, epochEnd);
      if (payload.length < epochEnd || colon < 0) return { kind: "malformed" };
      const epoch = payload.subarray(2, epochEnd).toString("latin1");
      const offset = Number(payload.subarray(epochEnd, colon).toString("latin1"));
      const message = toMessage(payload.subarray(colon + 1), payload[0] === Kind.STORED_TEXT);
      return { kind: "message", message, position: { epoch, offset } };
    }
    case Kind.PRESENCE: {
      try {
        const event = JSON.parse(payload.subarray(1).toString("utf8"));
        return {
          kind: "presence",
          topic: event.topic,
          event: { type: event.type, member: { id: event.id, info: event.member.info } },
        };
      } catch {
        return { kind: "malformed" };
      }
    }
    default:
      return { kind: "malformed" };
  }
}
