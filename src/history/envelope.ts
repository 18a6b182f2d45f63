/**
 * `jsonEnvelope`: the JSON frame that carries a topic message with its
 * position (or a presence change) to clients that ask for positions.
 *
 * @module
 */
import type { TopicEvent } from "./subscription.ts";

const CHUNK = 0x8000;

/** Base64 of bytes, with what every runtime and browser has (`btoa`). */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

/** Bytes of a base64 string. */
export function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * The envelope wsport's topic follower understands: one JSON text frame per
 * event.
 *
 * - a message: `{"topic":"chat","epoch":"…","offset":7,"data":"hi"}`;
 *   binary data is base64 with `"binary":true`; `epoch` and `offset` are
 *   absent for topics that keep no history;
 * - a presence change: `{"topic":"chat","presence":{"type":"join","member":{"id":"…","info":{…}}}}`.
 *
 * @example
 * ```ts
 * import { jsonEnvelope } from "./envelope.ts";
 *
 * const frame = jsonEnvelope({ topic: "chat", data: "hi", position: { epoch: "e1", offset: 7 } });
 * console.log(frame); // {"topic":"chat","epoch":"e1","offset":7,"data":"hi"}
 * ```
 */
export function jsonEnvelope(event: TopicEvent): string {
  if (event.presence) return JSON.stringify({ topic: event.topic, presence: event.presence });
  const { topic, data, position } = event;
  const binary = typeof data !== "string";
  return JSON.stringify({
    topic,
    epoch: position?.epoch,
    offset: position?.offset,
    data: binary ? toBase64(data) : data,
    binary: binary || undefined,
  });
}
