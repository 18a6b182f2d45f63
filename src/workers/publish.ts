/**
 * Publishing to a room from outside it, both halves of the protocol: the
 * sender ({@linkcode publishToRoom}, in any Worker with the namespace
 * binding) and the reader the room's default `onRequest` uses.
 *
 * @module
 */
import type { PublishResult } from "../connection.ts";
import type { OutgoingData } from "../transport.ts";
import type { DurableObjectNamespaceLike } from "./types.ts";

/** The path a publish is sent to (the room accepts any path ending in it). */
const PUBLISH_PATH = "/publish";

/** A copy of a view's bytes in a fresh `ArrayBuffer` (a request body). */
function copyBytes(view: ArrayBufferView): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(view.byteLength);
  bytes.set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  return bytes;
}

/**
 * Options of {@linkcode publishToRoom}.
 *
 * @example
 * ```ts ignore
 * import { publishToRoom } from "@wsport/wsport/workers";
 * declare const env: { ROOMS: any };
 * await publishToRoom(env.ROOMS, "lobby", "score: 2-1", { topic: "football" });
 * ```
 */
export interface PublishToRoomOptions {
  /** Only the room's connections with this topic. */
  topic?: string;
}

/**
 * Publishes to a room from anywhere that has its namespace binding: a
 * Worker's plain `fetch`, a cron trigger, a queue consumer, another room.
 * Sends `POST https://room/publish` to the room's object, which the default
 * {@linkcode WebSocketRoom.onRequest} answers; resolves with what it did.
 *
 * @example Publish from an HTTP endpoint
 * ```ts ignore
 * import { publishToRoom } from "@wsport/wsport/workers";
 *
 * export default {
 *   async fetch(request: Request, env: { ROOMS: any }): Promise<Response> {
 *     const result = await publishToRoom(env.ROOMS, "lobby", "the server restarts in 5 minutes");
 *     return Response.json(result); // { delivered: 3, skipped: 0 }
 *   },
 * };
 * ```
 */
export async function publishToRoom(
  namespace: DurableObjectNamespaceLike,
  room: string,
  data: OutgoingData,
  options: PublishToRoomOptions = {},
): Promise<PublishResult> {
  const url = new URL(`https://room${PUBLISH_PATH}`);
  if (options.topic !== undefined) url.searchParams.set("topic", options.topic);
  const isText = typeof data === "string";
  const stub = namespace.get(namespace.idFromName(room));
  const response = await stub.fetch(url.href, {
    method: "POST",
    headers: { "content-type": isText ? "text/plain; charset=utf-8" : "application/octet-stream" },
    body: isText ? data : data instanceof ArrayBuffer ? data : copyBytes(data),
  });
  if (!response.ok) {
    throw new Error(`wsport: publish to room "${room}" failed: ${response.status} ${await response.text()}`);
  }
  return await response.json() as PublishResult;
}

/** A publish the room received: what to send, and to which topic. */
export interface ReceivedPublish {
  /** The body: text for `text/*` and JSON content types, bytes otherwise. */
  data: OutgoingData;
  /** The `?topic=` of the request, if any. */
  topic: string | undefined;
}

/** Reads a publish request as {@linkcode publishToRoom} sends it, or `undefined` for any other request. */
export async function readPublish(request: Request): Promise<ReceivedPublish | undefined> {
  const url = new URL(request.url);
  if (request.method !== "POST" || !url.pathname.endsWith(PUBLISH_PATH)) return undefined;
  const type = request.headers.get("content-type") ?? "";
  const isText = type.startsWith("text/") || type.includes("json");
  const data = isText ? await request.text() : new Uint8Array(await request.arrayBuffer());
  return { data, topic: url.searchParams.get("topic") ?? undefined };
}
