/**
 * wsport on Cloudflare Workers: an echo WebSocket in the Worker itself, and
 * chat rooms in a hibernating Durable Object.
 *
 *   GET  /                       200, a short text saying what is here
 *   GET  /ws                     echo WebSocket (text as text, binary as binary); plain HTTP gets 426
 *   GET  /private/ws?token=…     the same echo behind a token check (401 without the demo token)
 *   GET  /rooms/:room?name=…     chat: every message a client sends reaches every client of the room
 *   POST /rooms/:room/publish    publishes the request body to the room (from plain HTTP)
 *   GET  /rooms/:room/info       the room's instance id and connections (to see hibernation at work)
 *
 * Run it locally with `npx wrangler dev` in this directory (wrangler.toml is
 * beside this file), deploy it with `npx wrangler deploy`. The test suite
 * runs it in workerd through miniflare (tests/workers/).
 */
import {
  type DurableObjectNamespaceLike,
  type Message,
  type RoomConnection,
  type RoomOptions,
  WebSocketRoom,
  workersFetch,
} from "../../workers.ts";

/** The Worker's bindings (wrangler.toml). */
export interface Env {
  /** The `ChatRoom` Durable Object namespace. */
  ROOMS: DurableObjectNamespaceLike;
}

/** A demo token for /private/ws; a real Worker would check a secret or a session. */
const DEMO_TOKEN = "let-me-in";

const echo = workersFetch(async (ws) => {
  for await (const message of ws) await ws.send(message);
}, {
  maxMessageSize: 64 * 1024,
  closeTimeout: 3000,
  processRequest(request) {
    const url = new URL(request.url);
    if (url.pathname.startsWith("/private/") && url.searchParams.get("token") !== DEMO_TOKEN) {
      return new Response("401 Unauthorized\n", { status: 401 });
    }
  },
});

/** What each chat client carries through hibernation (in its socket's attachment). */
interface Member {
  /** The name from `?name=`. */
  name: string;
}

/**
 * One chat room per name. Text and binary messages are relayed as they are,
 * to every client of the room including the sender. The object hibernates
 * when the room is idle; its clients stay connected.
 */
export class ChatRoom extends WebSocketRoom<Member, Env> {
  /** A new id each time the runtime creates the object (e.g. after hibernation). */
  readonly instance: string = crypto.randomUUID();

  override options: RoomOptions<Member> = {
    maxMessageSize: 64 * 1024,
    processRequest(request, context) {
      context.data = { name: new URL(request.url).searchParams.get("name") ?? "anonymous" };
    },
  };

  override onMessage(_connection: RoomConnection<Member>, message: Message): void {
    this.publish(message);
  }

  override onRequest(request: Request): Promise<Response> {
    if (request.method === "GET" && new URL(request.url).pathname.endsWith("/info")) {
      const connections = this.connections().map((c) => ({
        id: c.id,
        name: c.data.name,
        state: c.readyState,
      }));
      return Promise.resolve(Response.json({ instance: this.instance, connections }));
    }
    return super.onRequest(request);
  }
}

const ROOM_PATH = /^\/rooms\/([\w-]{1,64})(\/publish|\/info)?$/;

export default {
  fetch(request: Request, env: Env, ctx: unknown): Response | Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/") {
      return new Response("wsport on Cloudflare Workers: /ws (echo), /rooms/:room (chat)\n");
    }
    if (url.pathname === "/ws" || url.pathname === "/private/ws") return echo(request, env, ctx);
    const room = ROOM_PATH.exec(url.pathname);
    if (room) return env.ROOMS.get(env.ROOMS.idFromName(room[1])).fetch(request);
    return new Response("404 Not Found\n", { status: 404 });
  },
};
