/**
 * The server side of the topic follower: answers the subscribe and
 * unsubscribe requests that `followTopics()` sends (the wire format is in
 * docs/history.md), with {@linkcode jsonEnvelope} frames.
 *
 * @module
 */
import type { Connection } from "../connection.ts";
import type { Message } from "../transport.ts";
import { jsonEnvelope } from "./envelope.ts";
import type { StreamPosition } from "./types.ts";

/** Options of {@linkcode answerTopicRequest}. */
export interface TopicRequestOptions<Data = unknown> {
  /** Whether this connection may follow `topic` (and its presence). Refused requests are answered `refused`. */
  allow(topic: string, ws: Connection<Data>): boolean | Promise<boolean>;
}

/** A request of the follower, as it arrives. */
interface TopicRequest {
  subscribe?: unknown;
  unsubscribe?: unknown;
  since?: { epoch?: unknown; offset?: unknown };
  presence?: unknown;
}

function positionOf(since: TopicRequest["since"]): StreamPosition | undefined {
  if (typeof since !== "object" || since === null) return undefined;
  const { epoch, offset } = since;
  if (typeof epoch !== "string" || typeof offset !== "number" || !Number.isSafeInteger(offset)) {
    return undefined;
  }
  return { epoch, offset };
}

/**
 * Answers `message` if it is a follower's request and resolves `true`;
 * resolves `false` for anything else (your application's own messages).
 * A request is a text frame holding a JSON object whose first key is
 * `subscribe` (`{"subscribe":"chat","since":{"epoch":"…","offset":7},"presence":true}`)
 * or `unsubscribe` (`{"unsubscribe":"chat"}`). A subscribe is answered,
 * after the replay of what the client missed, with
 * `{"topic":"chat","subscribed":{"recovered":true,"position":{…}}}`, or
 * `{"topic":"chat","refused":"…"}` when `allow` said no.
 *
 * @example A handler that lets clients follow rooms and talk in them
 * ```ts
 * import { answerTopicRequest, serve } from "../../mod.ts";
 *
 * const server = serve(async (ws) => {
 *   for await (const message of ws) {
 *     if (await answerTopicRequest(ws, message, { allow: (topic) => topic.startsWith("room:") })) continue;
 *     // ... the application's own messages
 *   }
 * }, { port: 0, history: { "room:*": { size: 100 } } });
 * await server.close();
 * ```
 */
export async function answerTopicRequest<Data>(
  ws: Connection<Data>,
  message: Message,
  options: TopicRequestOptions<Data>,
): Promise<boolean> {
  if (typeof message !== "string") return false;
  if (!message.startsWith('{"subscribe"') && !message.startsWith('{"unsubscribe"')) return false;
  let request: TopicRequest;
  try {
    request = JSON.parse(message);
  } catch {
    return false;
  }
  if (typeof request.unsubscribe === "string") {
    ws.unsubscribe(request.unsubscribe);
    return true;
  }
  const topic = request.subscribe;
  if (typeof topic !== "string") return false;
  if (!await options.allow(topic, ws)) {
    await ws.send(JSON.stringify({ topic, refused: "not allowed" })).catch(() => {});
    return true;
  }
  let subscribed;
  try {
    subscribed = await ws.subscribe(topic, {
      since: positionOf(request.since),
      envelope: jsonEnvelope,
      presence: request.presence === true,
    });
  } catch (error) {
    await ws.send(JSON.stringify({ topic, refused: String(error) })).catch(() => {});
    return true;
  }
  await ws.send(JSON.stringify({ topic, subscribed })).catch(() => {});
  return true;
}
