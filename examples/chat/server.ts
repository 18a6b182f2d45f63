/**
 * A chat: `GET /` serves the page (`/?room=NAME` picks a room); the
 * WebSocket path `/rooms/:room` delivers every text message a client sends
 * to every client of that room, sender included, as JSON `{ room, text }`.
 * Start two processes with the same REDIS_URL and they form one chat.
 *
 *   deno run --allow-net --allow-env examples/chat/server.ts
 *   REDIS_URL=redis://127.0.0.1:6379 bun run examples/chat/server.ts
 *
 * Environment: HOST (default localhost), PORT (default 8765), REDIS_URL (optional).
 */
import process from "node:process";
import { type PubSubBackend, serve } from "../../mod.ts";
import { CHAT_PAGE } from "./page.ts";

const rooms = new URLPattern({ pathname: "/rooms/:room" });

let pubsub: PubSubBackend | undefined;
if (process.env.REDIS_URL) {
  const { redisBackend } = await import("../../redis.ts");
  pubsub = redisBackend(process.env.REDIS_URL);
}

const controller = new AbortController();
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => controller.abort());

const server = serve<{ room: string }>(async (ws) => {
  const topic = `room:${ws.data.room}`;
  ws.subscribe(topic);
  for await (const message of ws) {
    if (typeof message !== "string") continue;
    // Not awaited: a Redis failure is counted and reported by the server, never thrown here.
    ws.publish(topic, JSON.stringify({ room: ws.data.room, text: message }));
  }
}, {
  hostname: process.env.HOST ?? "localhost",
  port: Number(process.env.PORT ?? 8765),
  signal: controller.signal,
  pubsub,
  processRequest(request, context) {
    const url = new URL(request.url);
    if (url.pathname === "/") {
      return new Response(CHAT_PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    const match = rooms.exec(url);
    if (!match) return new Response("404 Not Found\n", { status: 404 });
    try {
      context.data = { room: decodeURIComponent(match.pathname.groups.room!) };
    } catch {
      return new Response("400 Bad Request: the room name is not valid percent-encoding\n", { status: 400 });
    }
  },
  onListen: ({ hostname, port }) => console.log(`chat on http://${hostname}:${port}/`),
});

await server.finished;
process.exit(0);
