/**
 * The raw-runtime benchmark server: what a handler written directly against
 * `Bun.serve` (native topics for broadcast), `Deno.serve` +
 * `Deno.upgradeWebSocket` (a send loop for broadcast), or on Node the `ws`
 * package on `node:http` (`noServer` + `handleUpgrade`, a send loop) does. Workloads by path,
 * as described in ./common.ts. Run under deno or bun; prints one JSON line
 * `{ port, pid, runtime }` once listening.
 *
 * With `RAW_WS=1` in the environment, Deno runs the Node branch (ws on node:http) instead of `Deno.serve`.
 *
 * With `RAW_KEEPS_HEADERS=1` in the environment, the raw server also keeps a
 * copy of each upgrade request's URL and headers for the socket's life, as
 * wsport does for `ws.request`: the idle workload then shows what that copy
 * costs on each runtime.
 */
import {
  announce,
  control,
  hostname,
  isBun,
  isNode,
  parsePublish,
  publishLoop,
  sessionFor,
  TOPIC,
} from "./common.ts";
import type { SessionData } from "./common.ts";
import process from "node:process";
import { copyRequest } from "../../src/request_copy.ts";

const keepsHeaders = process.env.RAW_KEEPS_HEADERS === "1";

/** The session data, with a copy of the request's URL and headers when asked to keep one. */
function sessionOf(request: Request, url: URL): SessionData & { request?: string } {
  const data: SessionData & { request?: string } = sessionFor(url);
  // The same copy wsport keeps, so that the two servers hold the same bytes.
  if (keepsHeaders) data.request = copyRequest(request);
  return data;
}

interface BunSocket {
  data: SessionData;
  send(data: string | ArrayBufferView | ArrayBuffer): number;
  subscribe(topic: string): void;
}
interface BunServer {
  port: number;
  upgrade(request: Request, options: { data: SessionData }): boolean;
  publish(topic: string, data: string): number;
}
interface BunLike {
  serve(options: {
    hostname: string;
    port: number;
    fetch(request: Request, server: BunServer): Response | undefined;
    websocket: {
      open(ws: BunSocket): void;
      message(ws: BunSocket, message: string | Uint8Array): void;
    };
  }): BunServer;
}

if (isBun) {
  const Bun = (globalThis as unknown as { Bun: BunLike }).Bun;
  const server: BunServer = Bun.serve({
    hostname,
    port: 0,
    fetch(request, server) {
      const url = new URL(request.url);
      const answer = control(url);
      if (answer) return answer;
      if (server.upgrade(request, { data: sessionOf(request, url) })) return undefined;
      return new Response("Upgrade Required", { status: 426 });
    },
    websocket: {
      open(ws) {
        if (ws.data.workload !== "broadcast") return;
        ws.subscribe(TOPIC);
        ws.send("ready");
      },
      message(ws, message) {
        if (ws.data.workload === "echo") {
          ws.send(message);
          return;
        }
        const trigger = parsePublish(message);
        if (trigger) {
          publishLoop(trigger.count, trigger.size, (data) => server.publish(TOPIC, data))
            .then((report) => ws.send(report));
        }
      },
    },
  });
  announce(server.port);
} else if (isNode || process.env.RAW_WS === "1") {
  // (RAW_WS=1 runs this branch on Deno too, through its Node layer: bench/deno_layers.ts.)
  const http = await import("node:http");
  const { WebSocketServer } = await import("ws");
  const wss = new WebSocketServer({ noServer: true, clientTracking: false, maxPayload: 1024 * 1024 });
  const subscribers = new Set<import("ws").WebSocket>();
  const sessions = new Map<import("ws").WebSocket, SessionData>();
  const server = http.createServer(async (req, res) => {
    const answer = control(new URL(req.url ?? "/", `http://${hostname}`));
    if (!answer) return void res.writeHead(426).end("Upgrade Required");
    res.writeHead(answer.status, { "content-type": "application/json" }).end(await answer.text());
  });
  server.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url ?? "/", `http://${req.headers.host}`);
    const data: SessionData & { request?: string } = sessionFor(url);
    // The same bytes wsport's copy of the request holds: the URL, then each header's name and value.
    if (keepsHeaders) data.request = [url.href, ...req.rawHeaders].join("\n");
    wss.handleUpgrade(req, socket, head, (ws: import("ws").WebSocket) => {
      if (data.workload === "echo") {
        ws.on("message", (message: Buffer, isBinary: boolean) => ws.send(message, { binary: isBinary }));
      } else if (data.workload === "broadcast") {
        subscribers.add(ws);
        ws.on("close", () => subscribers.delete(ws));
        ws.send("ready");
        ws.on("message", (message: Buffer, isBinary: boolean) => {
          const trigger = parsePublish(isBinary ? undefined : message.toString());
          if (!trigger) return;
          publishLoop(trigger.count, trigger.size, (payload) => {
            for (const subscriber of subscribers) subscriber.send(payload);
          }).then((report) => ws.send(report));
        });
      } else {
        sessions.set(ws, data);
        ws.on("close", () => sessions.delete(ws));
      }
    });
  });
  server.listen(0, hostname, () => announce((server.address() as { port: number }).port));
} else {
  const subscribers = new Set<WebSocket>();
  const sessions = new Map<WebSocket, SessionData>();
  const server = Deno.serve({ hostname, port: 0, onListen() {} }, (request) => {
    const url = new URL(request.url);
    const answer = control(url);
    if (answer) return answer;
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("Upgrade Required", { status: 426 });
    }
    const data = sessionOf(request, url);
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.binaryType = "arraybuffer";
    if (data.workload === "echo") {
      socket.onmessage = (event) => socket.send(event.data);
    } else if (data.workload === "broadcast") {
      socket.onopen = () => {
        subscribers.add(socket);
        socket.send("ready");
      };
      socket.onclose = () => subscribers.delete(socket);
      socket.onmessage = (event) => {
        const trigger = parsePublish(event.data);
        if (!trigger) return;
        publishLoop(trigger.count, trigger.size, (data) => {
          for (const subscriber of subscribers) subscriber.send(data);
        }).then((report) => socket.send(report));
      };
    } else {
      // churn, idle: what a raw app does to attach data to a socket for its lifetime.
      socket.onopen = () => sessions.set(socket, data);
      socket.onclose = () => sessions.delete(socket);
    }
    return response;
  });
  announce(server.addr.port);
}
