/**
 * A chat: `GET /` serves the page (`/?room=NAME` picks a room); the
 * WebSocket path `/rooms/:room` delivers every text message a client sends
 * to every client of that room, sender included, as JSON `{ room, text }`.
 * Start two processes with the same REDIS_URL and they form one chat.
 *
 * The room keeps its last 200 messages (10 minutes): the page connects with
 * `?follow` and speaks the topic follower's protocol (docs/history.md), so a
 * page that reloads or loses its connection resumes from the last message it
 * showed and shows what it missed once, in order; it also shows who is in the
 * room (presence). With REDIS_URL the history and presence are Redis's,
 * shared by every process, when the Redis backend keeps them. A client
 * without `?follow` gets each message as a plain frame, as before.
 *
 *   deno run --allow-net --allow-env examples/chat/server.ts
 *   REDIS_URL=redis://127.0.0.1:6379 bun run examples/chat/server.ts
 *
 * Environment: HOST (default localhost), PORT (default 8765), REDIS_URL (optional).
 */
import process from "node:process";
import { answerTopicRequest, type HistoryRule, type PubSubBackend, serve } from "../../mod.ts";
import { CHAT_PAGE } from "./page.ts";

/** `/rooms/NAME`: one path segment, still percent-encoded (a plain pattern: Node 22 has no URLPattern). */
const ROOM_PATH = /^\/rooms\/([^/]+)$/;
const ROOM_HISTORY: HistoryRule = { size: 200, ttl: 10 * 60_000 };

let pubsub: PubSubBackend | undefined;
if (process.env.REDIS_URL) {
  const { redisBackend } = await import("../../redis.ts");
  pubsub = redisBackend(process.env.REDIS_URL);
}
// History and presence need one authority for every process: this one without a backend, else the backend's.
const history = !pubsub || pubsub.history ? { "room:*": ROOM_HISTORY } : undefined;
const presence = !pubsub || pubsub.presence !== undefined;

const controller = new AbortController();
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => controller.abort());

const server = serve<{ room: string }>(async (ws) => {
  const topic = `room:${ws.data.room}`;
  const follows = ws.url.searchParams.has("follow");
  if (follows && presence) {
    const name = (ws.url.searchParams.get("name") ?? "").slice(0, 40) || "guest";
    await ws.join(topic, { name });
    await ws.send(JSON.stringify({ members: await server.presence(topic) }));
  }
  if (!follows) ws.subscribe(topic); // plain frames, as published
  for await (const message of ws) {
    if (typeof message !== "string") continue;
    // The page's subscribe request (with the position to resume from): only its own room.
    if (follows && await answerTopicRequest(ws, message, { allow: (asked) => asked === topic })) continue;
    // Not awaited (the loop goes on reading). A Redis failure is counted and reported by the server;
    // the sender is told, since a kept room's message then reaches nobody: nothing is delivered that
    // the room's history lacks.
    ws.publish(topic, JSON.stringify({ room: ws.data.room, text: message })).catch(() => {
      ws.trySend(JSON.stringify({ room: ws.data.room, error: "not delivered, try again", text: message }));
    });
  }
}, {
  hostname: process.env.HOST ?? "localhost",
  port: Number(process.env.PORT ?? 8765),
  signal: controller.signal,
  pubsub,
  history,
  processRequest(request, context) {
    const url = new URL(request.url);
    if (url.pathname === "/") {
      return new Response(CHAT_PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    const match = ROOM_PATH.exec(url.pathname);
    if (!match) return new Response("404 Not Found\n", { status: 404 });
    try {
      context.data = { room: decodeURIComponent(match[1]) };
    } catch {
      return new Response("400 Bad Request: the room name is not valid percent-encoding\n", { status: 400 });
    }
  },
  onListen: ({ hostname, port }) => console.log(`chat on http://${hostname}:${port}/`),
});

await server.finished;
process.exit(0);
