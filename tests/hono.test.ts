import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type net from "node:net";
import { type Context, Hono } from "hono";
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import type { Connection } from "../mod.ts";
import { bunWebSocket, type UpgradeWebSocketMiddleware, websocket } from "../hono.ts";
import { assertEchoes, TestClient, waitFor, within } from "./helpers.ts";
import { frame, parseFrames, rawRequest, type ServerFrame, UPGRADE_HEADERS } from "./raw.ts";

const isBun = "Bun" in globalThis;

const echo = async (ws: Connection) => {
  for await (const message of ws) await ws.send(message);
};

interface BunLike {
  serve(options: {
    port: number;
    hostname: string;
    fetch: (request: Request, server: unknown) => Response | Promise<Response>;
    websocket: unknown;
  }): { port: number; stop(closeActiveConnections?: boolean): Promise<void> | void };
}

/** A Hono app served on a free loopback port, the way the module's docs say to. */
interface Hosted {
  port: number;
  url: string;
  http: string;
  [Symbol.asyncDispose](): Promise<void>;
}

// deno-lint-ignore no-explicit-any
function host(app: Hono<any>, middlewares: UpgradeWebSocketMiddleware<any, any>[]): Hosted {
  let port: number;
  let stop: () => Promise<void>;
  if (isBun) {
    const Bun = (globalThis as unknown as { Bun: BunLike }).Bun;
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch, websocket: bunWebSocket });
    port = server.port;
    stop = async () => await server.stop(true);
  } else {
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
    port = server.addr.port;
    stop = () => server.shutdown();
  }
  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    http: `http://127.0.0.1:${port}`,
    async [Symbol.asyncDispose]() {
      // The WebSockets first (Deno's shutdown drops upgraded sockets), then the HTTP server.
      await within(
        Promise.all(middlewares.map((middleware) => middleware.close())),
        15_000,
        "middlewares close",
      );
      await within(stop(), 15_000, "HTTP server stop");
    },
  };
}

/** An upgrade over raw TCP that records the 101's headers and reads the server's frames. */
async function rawUpgrade(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<
  { status: number; headers: Headers; body: string; next(): Promise<ServerFrame>; socket: net.Socket }
> {
  const response = await rawRequest(port, { ...UPGRADE_HEADERS, ...headers }, { path });
  let buffer = response.rest;
  const frames: ServerFrame[] = [];
  const waiters: (() => void)[] = [];
  const take = (chunk: Buffer) => {
    const parsed = parseFrames(Buffer.concat([buffer, chunk]));
    buffer = parsed.rest;
    frames.push(...parsed.frames);
    waiters.splice(0).forEach((wake) => wake());
  };
  if (response.status === 101) {
    response.socket.on("data", take);
    take(Buffer.alloc(0));
  }
  return {
    status: response.status,
    headers: response.headers,
    body: response.rest.toString(),
    socket: response.socket,
    async next() {
      const deadline = Date.now() + 5000;
      while (frames.length === 0) {
        if (Date.now() > deadline) throw new Error("no frame within 5000 ms");
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
      return frames.shift()!;
    },
  };
}

test("Hono: HTTP routes and a WebSocket share one port", async () => {
  const app = new Hono();
  const ws = websocket(async (ws) => {
    await ws.send(`protocol=${ws.protocol}`);
    await echo(ws);
  }, { subprotocols: ["chat"], origins: ["https://app.example", null] });
  app.get("/", (c) => c.text("home"));
  app.post("/api/items", async (c) => c.json({ got: await c.req.json() }, 201));
  app.get("/ws", ws);
  await using server = host(app, [ws]);

  const home = await fetch(`${server.http}/`);
  assert.equal(home.status, 200);
  assert.equal(await home.text(), "home");
  const created = await fetch(`${server.http}/api/items`, { method: "POST", body: JSON.stringify({ a: 1 }) });
  assert.equal(created.status, 201);
  assert.deepEqual(await created.json(), { got: { a: 1 } });
  const missing = await fetch(`${server.http}/nothing`);
  assert.equal(missing.status, 404);
  await missing.body?.cancel();

  // Plain HTTP on the WebSocket route: wsport's 426, as a Hono response.
  const plain = await fetch(`${server.http}/ws`);
  assert.equal(plain.status, 426);
  await plain.body?.cancel();
  // The core's origin policy applies.
  const forbidden = await rawUpgrade(server.port, "/ws", { Origin: "https://evil.example" });
  forbidden.socket.destroy();
  assert.equal(forbidden.status, 403);

  const client = await TestClient.open(`${server.url}/ws`, ["other", "chat"]);
  assert.equal(client.socket.protocol, "chat");
  assert.equal(await client.next(), "protocol=chat");
  await assertEchoes(client, "hello");
  await assertEchoes(client, new Uint8Array([1, 2, 3]));
  client.close(1000);
  assert.equal((await client.closed).code, 1000);

  assert.equal(ws.server.counters.accepted, 1);
  assert.equal(ws.server.counters.refused.upgradeRequired, 1);
  assert.equal(ws.server.counters.refused.forbiddenOrigin, 1);
});

test("Hono: route params reach ws.params, and the remote address is the peer's", async () => {
  const app = new Hono();
  const room = websocket((ws) =>
    ws.send(JSON.stringify({ params: ws.params, host: ws.remoteAddress.hostname }))
  );
  app.get("/rooms/:room/:seat?", room);
  await using server = host(app, [room]);

  const a = new TestClient(`${server.url}/rooms/tea%20room`);
  assert.deepEqual(JSON.parse(await a.next() as string), { params: { room: "tea room" }, host: "127.0.0.1" });
  const b = new TestClient(`${server.url}/rooms/kitchen/3`);
  assert.deepEqual(JSON.parse(await b.next() as string).params, { room: "kitchen", seat: "3" });
});

test("Hono: an auth middleware answers 401 before the upgrade; what it sets reaches ws.data", async () => {
  type AppEnv = { Variables: { user: string } };
  const app = new Hono<AppEnv>();
  app.use("/private/*", async (c, next) => {
    const token = c.req.header("authorization");
    if (token !== "Bearer secret") return c.text("unauthorized", 401, { "www-authenticate": "Bearer" });
    c.set("user", "alice");
    await next();
  });
  let handlerCalls = 0;
  const dataSeenByProcessRequest: unknown[] = []; // asserted below: a throw here would only answer 500
  const chat = websocket<{ user: string; room: string }, Context<AppEnv>>(async (ws) => {
    handlerCalls++;
    await ws.send(`hello ${ws.data.user} in ${ws.data.room}`);
  }, {
    data: (c) => ({ user: c.get("user"), room: c.req.param("room") ?? "" }),
    processRequest(request, context) {
      // processRequest runs after `data`, and sees it.
      if (new URL(request.url).searchParams.has("kick")) return new Response("kicked\n", { status: 403 });
      dataSeenByProcessRequest.push(context.data);
    },
  });
  app.get("/private/rooms/:room", chat);
  await using server = host(app, [chat]);

  const refused = await rawUpgrade(server.port, "/private/rooms/lobby");
  refused.socket.destroy();
  assert.equal(refused.status, 401);
  assert.equal(refused.headers.get("www-authenticate"), "Bearer");
  const wrong = await rawUpgrade(server.port, "/private/rooms/lobby", { Authorization: "Bearer nope" });
  wrong.socket.destroy();
  assert.equal(wrong.status, 401);
  // The middleware never ran: nothing was counted, nothing was upgraded.
  assert.equal(chat.server.counters.accepted, 0);
  assert.equal(Object.values(chat.server.counters.refused).reduce((a, b) => a + b, 0), 0);
  assert.equal(chat.server.connections.size, 0);

  const kicked = await rawUpgrade(server.port, "/private/rooms/lobby?kick", {
    Authorization: "Bearer secret",
  });
  kicked.socket.destroy();
  assert.equal(kicked.status, 403);
  assert.equal(chat.server.counters.refused.processRequest, 1);
  assert.equal(handlerCalls, 0);

  const allowed = await rawUpgrade(server.port, "/private/rooms/lobby", { Authorization: "Bearer secret" });
  assert.equal(allowed.status, 101);
  const greeting = await allowed.next();
  assert.equal(greeting.opcode, 1);
  assert.equal(greeting.payload.toString(), "hello alice in lobby");
  allowed.socket.write(frame(8, new Uint8Array([0x03, 0xe8])));
  allowed.socket.destroy();
  assert.equal(handlerCalls, 1);
  assert.equal(chat.server.counters.accepted, 1);
  assert.deepEqual(dataSeenByProcessRequest, [{ user: "alice", room: "lobby" }]);
});

test("Hono: cors(), secureHeaders() and headers set after next() do not break the upgrade", async () => {
  const app = new Hono();
  app.use("*", cors({ origin: "https://app.example", credentials: true }));
  app.use("*", secureHeaders());
  app.use("*", async (c, next) => {
    c.header("x-before", "1");
    await next();
    c.header("x-after", "1");
    c.res.headers.set("x-after-raw", "1");
  });
  app.use("*", async (c, next) => {
    await next();
    // The documented way to replace the response in Hono: a rebuilt copy.
    c.res = new Response(c.res.body, c.res);
    c.res.headers.set("x-rebuilt", "1");
  });
  const ws = websocket(async (ws) => {
    await ws.send("hello");
    await echo(ws);
  }, { headers: { "x-from-options": "1" } });
  app.get("/ws", ws);
  app.get("/", (c) => c.text("home"));
  await using server = host(app, [ws]);

  // The same middleware on an HTTP route, for comparison.
  const home = await fetch(`${server.http}/`, { headers: { origin: "https://app.example" } });
  assert.equal(home.status, 200);
  assert.equal(await home.text(), "home");
  for (
    const name of [
      "access-control-allow-origin",
      "x-content-type-options",
      "x-before",
      "x-after",
      "x-rebuilt",
    ]
  ) {
    assert.ok(home.headers.has(name), name);
  }

  const upgraded = await rawUpgrade(server.port, "/ws", { Origin: "https://app.example" });
  assert.equal(upgraded.status, 101);
  assert.equal(upgraded.headers.get("upgrade")?.toLowerCase(), "websocket");
  assert.ok(upgraded.headers.get("sec-websocket-accept"));
  const greeting = await upgraded.next();
  assert.equal(greeting.payload.toString(), "hello");
  // Set before the upgrade: in the 101 on both runtimes.
  assert.equal(upgraded.headers.get("access-control-allow-origin"), "https://app.example");
  assert.equal(upgraded.headers.get("access-control-allow-credentials"), "true");
  assert.equal(upgraded.headers.get("x-before"), "1");
  assert.equal(upgraded.headers.get("x-from-options"), "1");
  // Set after the upgrade: Deno sends them in the 101; Bun wrote the 101 inside server.upgrade().
  for (const name of ["x-after", "x-after-raw", "x-rebuilt", "x-content-type-options"]) {
    assert.equal(upgraded.headers.has(name), !isBun, name);
  }
  upgraded.socket.write(frame(1, "over raw"));
  assert.equal((await upgraded.next()).payload.toString(), "over raw");
  upgraded.socket.destroy();

  // And a real client works through the whole stack.
  const client = await TestClient.open(`${server.url}/ws`);
  assert.equal(await client.next(), "hello");
  await assertEchoes(client);
  client.close();
  await client.closed;
  assert.equal(ws.server.counters.accepted, 2);
});

test("Hono: a middleware that fails after the upgrade leaves the WebSocket and the server up", async () => {
  const app = new Hono();
  app.use("*", async (c, next) => {
    await next();
    if (c.req.path === "/ws") throw new Error("failed after next()");
  });
  app.onError((error, c) => c.text(`error: ${error.message}`, 500));
  const reports: unknown[] = [];
  const ws = websocket(async (ws) => {
    await ws.send("hello");
    await echo(ws);
  }, { onError: (error) => reports.push(error) });
  app.get("/ws", ws);
  app.get("/", (c) => c.text("home"));
  await using server = host(app, [ws]);

  // Hono turns the error into a 500 after the socket was upgraded. Deno would close its listener
  // for a non-101 answer to an upgraded request; the middleware keeps the 101 and reports it.
  const client = await within(TestClient.open(`${server.url}/ws`), 5000, "upgrade");
  assert.equal(await client.next(), "hello");
  await assertEchoes(client);
  client.close();
  await client.closed;
  assert.equal(reports.length, isBun ? 0 : 1); // Bun ignores what follows an upgrade
  const home = await fetch(`${server.http}/`, { signal: AbortSignal.timeout(5000) });
  assert.equal(home.status, 200);
  assert.equal(await home.text(), "home");
});

test("Hono: several middlewares on one server keep their own limits and topics", async () => {
  const app = new Hono();
  const room = (ws: Connection) => {
    ws.subscribe("news");
    return echo(ws);
  };
  const small = websocket(room, { maxMessageSize: 1024 });
  const large = websocket(room, { maxMessageSize: 64 * 1024 });
  app.get("/small", small);
  app.get("/large", large);
  await using server = host(app, [small, large]);

  const a = await TestClient.open(`${server.url}/small`);
  const b = await TestClient.open(`${server.url}/large`);
  await waitFor(() => small.server.subscribers("news") === 1 && large.server.subscribers("news") === 1);

  // A topic of one middleware is not another's, even through Bun's native fan-out.
  await small.server.publish("news", "for small");
  await large.server.publish("news", "for large");
  assert.equal(await a.next(), "for small");
  assert.equal(await b.next(), "for large");

  const big = "x".repeat(2000);
  b.send(big);
  assert.equal(await b.next(), big);
  a.send(big);
  assert.equal((await within(a.closed, 5000, "close of the small one")).code, 1009);
  assert.equal(small.server.counters.closed.messageTooBig, 1);
  b.send("still open");
  assert.equal(await b.next(), "still open");
  b.close();
  await b.closed;
});

test("Hono: close() shuts the hosted WebSockets down with 1001 while HTTP goes on", async () => {
  const app = new Hono();
  const ended = Promise.withResolvers<unknown>();
  const ws = websocket(async (ws) => {
    try {
      await echo(ws);
    } finally {
      ended.resolve(await ws.closed);
    }
  });
  app.get("/ws", ws);
  app.get("/", (c) => c.text("home"));
  await using server = host(app, [ws]);

  const clients = await Promise.all([
    TestClient.open(`${server.url}/ws`),
    TestClient.open(`${server.url}/ws`),
  ]);
  await waitFor(() => ws.server.connections.size === 2);
  await within(ws.close(), 15_000, "close");
  for (const client of clients) assert.deepEqual(await client.closed, { code: 1001, reason: "going away" });
  assert.deepEqual(await within(ended.promise, 5000, "handler end"), { code: 1001, reason: "going away" });
  assert.equal(ws.server.connections.size, 0);

  const late = await rawUpgrade(server.port, "/ws");
  late.socket.destroy();
  assert.equal(late.status, 503);
  const home = await fetch(`${server.http}/`);
  assert.equal(home.status, 200);
  assert.equal(await home.text(), "home");
});
