/**
 * A Worker for tests/workers/workers.node-test.mjs: the connection API
 * (recv, send, close, closed, signal, protocol, data, remoteAddress) of a
 * `workersFetch` handler, and the close semantics of a `WebSocketRoom`. What
 * happens server-side is recorded and answered at `/log` and `/room/log`.
 */
import {
  type CloseInfo,
  ConnectionClosed,
  type DurableObjectNamespaceLike,
  type Message,
  type RoomConnection,
  type RoomOptions,
  WebSocketRoom,
  workersFetch,
} from "../../workers.ts";

interface Env {
  ROOMS: DurableObjectNamespaceLike;
}

/** Module state lives as long as the isolate: enough for one test run. */
const log: Record<string, unknown>[] = [];

const api = workersFetch<{ user: string }>(async (ws) => {
  const id = ws.data.user;
  await ws.send(JSON.stringify({
    protocol: ws.protocol,
    remoteAddress: ws.remoteAddress,
    data: ws.data,
    path: ws.url.pathname,
  }));
  ws.signal.addEventListener("abort", () => log.push({ id, event: "abort" }));
  try {
    while (true) {
      const message = await ws.recv();
      if (message === "close-me") {
        await ws.close(4000, "asked");
        break;
      }
      if (message === "throw") throw new Error("boom");
      await ws.send(typeof message === "string" ? message.toUpperCase() : message);
    }
  } catch (error) {
    if (!(error instanceof ConnectionClosed)) throw error;
    log.push({ id, event: "recv rejected", name: error.name, code: error.code });
  }
  log.push({ id, event: "closed", ...(await ws.closed) });
}, {
  subprotocols: ["v2", "v1"],
  origins: [null, "https://ok.example"],
  headers: { "x-served-by": "wsport" },
  maxMessageSize: 1024,
  closeTimeout: 3000,
  processRequest(request, context) {
    const user = new URL(request.url).searchParams.get("user");
    if (!user) return new Response("401 Unauthorized\n", { status: 401 });
    context.data = { user };
  },
  onError(error, connection) {
    log.push({ id: connection?.data.user, event: "error", message: String(error) });
  },
});

/** Per-request response headers (`context.headers`) beside the static ones; the handler reports what was sent. */
const withHeaders = workersFetch(async (ws) => {
  await ws.send(JSON.stringify([...ws.responseHeaders]));
  for await (const _ of ws); // until the client closes
}, {
  headers: { "x-served-by": "wsport", "set-cookie": "theme=dark" },
  processRequest(request, context) {
    const id = new URL(request.url).searchParams.get("id") ?? "none";
    context.headers.set("x-request-id", id);
    context.headers.append("set-cookie", `session=${id}; HttpOnly`);
  },
});

interface Member {
  name: string;
}

/** A room that records its events. */
export class TestRoom extends WebSocketRoom<Member, Env> {
  events: Record<string, unknown>[] = [];

  override options: RoomOptions<Member> = {
    maxMessageSize: 1024,
    subprotocols: ["chat"],
    headers: { "x-room": "test" },
    processRequest(request, context) {
      const url = new URL(request.url);
      if (url.searchParams.get("deny")) return new Response("401 Unauthorized\n", { status: 401 });
      context.data = { name: url.searchParams.get("name") ?? "anonymous" };
      context.topics = url.searchParams.getAll("topic");
      const id = url.searchParams.get("id");
      if (id) {
        context.headers.set("x-request-id", id);
        context.headers.append("set-cookie", `room=${id}`);
      }
    },
  };

  override onConnect(connection: RoomConnection<Member>): void {
    connection.send(`welcome ${connection.data.name}`);
  }

  override onMessage(connection: RoomConnection<Member>, message: Message): void {
    if (message === "kick") return connection.close(4002, "kicked");
    if (message === "headers") return void connection.send(JSON.stringify([...connection.responseHeaders]));
    if (message === "throw") throw new Error("room boom");
    if (message === "rename") {
      connection.data = { name: connection.data.name + "2" };
      return void connection.send(connection.data.name);
    }
    const topic = typeof message === "string" && message.startsWith("topic:")
      ? message.split(":")[1]
      : undefined;
    const result = this.publish(message, { topic, except: topic ? connection : undefined });
    if (topic) connection.send(JSON.stringify(result));
  }

  override onClose(connection: RoomConnection<Member>, info: CloseInfo): void {
    this.events.push({ event: "close", name: connection.data.name, ...info, state: connection.readyState });
  }

  override onError(error: unknown, connection: RoomConnection<Member> | undefined): void {
    this.events.push({ event: "error", name: connection?.data.name, message: String(error) });
  }

  override onRequest(request: Request): Promise<Response> {
    if (new URL(request.url).pathname.endsWith("/log")) return Promise.resolve(Response.json(this.events));
    return super.onRequest(request);
  }
}

export default {
  fetch(request: Request, env: Env, ctx: unknown): Response | Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/log") return Response.json({ log, counters: api.server.counters });
    if (url.pathname === "/api") return api(request, env, ctx);
    if (url.pathname === "/headers") return withHeaders(request, env, ctx);
    if (url.pathname.startsWith("/room")) return env.ROOMS.get(env.ROOMS.idFromName("test")).fetch(request);
    return new Response("404 Not Found\n", { status: 404 });
  },
};
