import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import type { Buffer } from "node:buffer";
import {
  type CloseInfo,
  connect,
  type Connection,
  ConnectionClosed,
  ConnectionClosedError,
  InvalidHandshake,
  InvalidOption,
  InvalidURI,
  reconnect,
  type ReconnectCloseInfo,
} from "../mod.ts";
import { delay, startServer, waitFor, within } from "./helpers.ts";
import { runtime } from "./runtime.ts";

/** Node's WebSocket does not tell the client the status of a refused handshake. */
const noStatus = runtime === "node" ? "Node's WebSocket does not report the handshake status" : "";
/** Node's WebSocket (undici) opens a second TCP connection after close() during the open, and closes it. */
const reopens = runtime === "node" ? "Node's WebSocket reconnects once after close() during the open" : "";

const echo = async (ws: Connection) => {
  for await (const message of ws) await ws.send(message);
};

/** A raw TCP listener that accepts, records the request head, and never answers. */
async function silentListener(): Promise<
  AsyncDisposable & { port: number; heads: string[]; closedSockets(): number; accepted(): number }
> {
  const sockets = new Set<net.Socket>();
  const heads: string[] = [];
  let accepted = 0;
  let closed = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    let head = "";
    socket.on("data", (chunk: Buffer) => {
      head += chunk.toString("latin1");
      if (head.includes("\r\n\r\n")) heads.push(head);
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      closed++;
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    heads,
    closedSockets: () => closed,
    accepted: () => accepted,
    async [Symbol.asyncDispose]() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Awaits a promise expected to reject and returns the error. */
async function rejection(promise: Promise<unknown>, ms = 5000): Promise<unknown> {
  try {
    await within(promise, ms, "rejection");
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

test("connect: echo of text and binary, with request, remoteAddress and protocol filled in", async () => {
  await using server = startServer(echo, { subprotocols: ["chat.v2", "chat.v1"] });
  const ws = await connect(server.url + "/room?x=1", { protocols: ["chat.v1", "chat.v2"] });
  assert.equal(ws.protocol, "chat.v2");
  assert.equal(ws.readyState, "open");
  assert.equal(ws.request.url, `${server.http}/room?x=1`);
  assert.equal(ws.url.pathname, "/room");
  assert.equal(ws.request.headers.get("sec-websocket-protocol"), "chat.v1, chat.v2");
  assert.deepEqual(ws.remoteAddress, { hostname: "127.0.0.1", port: server.addr.port });
  await ws.send("héllo ✓");
  assert.equal(await within(ws.recv(), 5000, "text echo"), "héllo ✓");
  await ws.send(new Uint8Array([0, 1, 2, 255]));
  assert.deepEqual(await within(ws.recv(), 5000, "binary echo"), new Uint8Array([0, 1, 2, 255]));
  await ws.send(new Uint8Array([7, 8, 9]).buffer);
  assert.deepEqual(await within(ws.recv(), 5000, "ArrayBuffer echo"), new Uint8Array([7, 8, 9]));
  await within(ws.close(), 5000, "close");
  assert.deepEqual(await within(ws.closed, 5000, "closed"), { code: 1000, reason: "" });
  assert.equal(ws.signal.aborted, true);
});

test("connect: http(s) URLs mean ws(s); iteration and streams work on the client", async () => {
  await using server = startServer(async (ws) => {
    await ws.send("one");
    await ws.send("two");
    await ws.close(1000);
  });
  const ws = await connect(server.http);
  assert.equal(ws.request.url, server.http + "/");
  const received: unknown[] = [];
  await within(
    (async () => {
      for await (const message of ws) received.push(message);
    })(),
    5000,
    "the iteration to end at the server's close",
  );
  assert.deepEqual(received, ["one", "two"]);
  assert.equal((await within(ws.closed, 5000, "closed")).code, 1000);

  await using streaming = startServer(echo);
  const client = await connect(streaming.url);
  const writer = client.writable.getWriter();
  const reader = client.readable.getReader();
  await writer.write("via streams");
  assert.deepEqual(await within(reader.read(), 5000, "stream read"), { done: false, value: "via streams" });
  reader.releaseLock();
  await within(writer.close(), 5000, "the writable's close");
  assert.equal((await within(client.closed, 5000, "closed")).code, 1000);
});

test("close(): the client's code and reason reach the server; the server's reach the client", async () => {
  const serverSaw = Promise.withResolvers<CloseInfo>();
  await using server = startServer(async (ws) => {
    if (ws.url.pathname === "/server-closes") return await ws.close(4002, "server done");
    serverSaw.resolve(await ws.closed);
  });

  const client = await connect(server.url + "/client-closes");
  await within(client.close(4001, "client done"), 5000, "client close");
  assert.deepEqual(await within(client.closed, 5000, "closed"), { code: 4001, reason: "client done" });
  assert.deepEqual(await within(serverSaw.promise, 5000, "server close info"), {
    code: 4001,
    reason: "client done",
  });

  const other = await connect(server.url + "/server-closes");
  const error = await rejection(other.recv());
  assert.ok(error instanceof ConnectionClosedError, String(error));
  assert.equal(error.code, 4002);
  assert.equal(error.reason, "server done");
  assert.deepEqual(await within(other.closed, 5000, "closed"), { code: 4002, reason: "server done" });
  await assert.rejects(other.send("late"), ConnectionClosed);
});

test("close() with a code the standard client API refuses (1011) is still reported as 1011 locally", async () => {
  const serverSaw = Promise.withResolvers<CloseInfo>();
  await using server = startServer(async (ws) => {
    serverSaw.resolve(await ws.closed);
  });
  const client = await connect(server.url);
  await within(client.close(1011, "oops"), 5000, "close");
  assert.deepEqual(await within(client.closed, 5000, "closed"), { code: 1011, reason: "oops" });
  const seen = await within(serverSaw.promise, 5000, "server close info");
  // Bun sends 1011 as asked; Deno's client WebSocket may only send 1000 and 3000-4999.
  if (seen.code === 1000) assert.equal(seen.reason, "1011 oops");
  else assert.deepEqual(seen, { code: 1011, reason: "oops" });
});

test("maxMessageSize applies to what the client receives: 1009, and the message is dropped", async () => {
  const serverSaw = Promise.withResolvers<CloseInfo>();
  await using server = startServer(async (ws) => {
    await ws.send("x".repeat(2000));
    serverSaw.resolve(await ws.closed);
  });
  const client = await connect(server.url, { maxMessageSize: 1024 });
  const error = await rejection(client.recv());
  assert.ok(error instanceof ConnectionClosedError, String(error));
  assert.equal(error.code, 1009);
  const seen = await within(serverSaw.promise, 5000, "server close info");
  assert.ok(
    seen.code === 1009 || (seen.code === 1000 && seen.reason.startsWith("1009")),
    JSON.stringify(seen),
  );
});

test("openTimeout: a server that accepts TCP and never answers rejects with TimeoutError and the socket is closed", async (t) => {
  if (reopens) return t.skip(reopens);
  await using listener = await silentListener();
  const started = performance.now();
  const error = await rejection(connect(`ws://127.0.0.1:${listener.port}/`, { openTimeout: 300 }));
  const elapsed = performance.now() - started;
  assert.ok(error instanceof DOMException, String(error));
  assert.equal(error.name, "TimeoutError");
  assert.ok(elapsed >= 250 && elapsed < 3000, `rejected after ${elapsed} ms`);
  await waitFor(() => listener.closedSockets() === 1, 5000, "the client to close its TCP connection");
});

test("signal: aborting before the open rejects with its reason and closes the socket; an aborted one never connects", async (t) => {
  if (reopens) return t.skip(reopens);
  await using listener = await silentListener();
  const controller = new AbortController();
  const pending = connect(`ws://127.0.0.1:${listener.port}/`, { signal: controller.signal });
  await waitFor(() => listener.heads.length === 1, 5000, "the handshake request");
  const reason = new Error("changed my mind");
  controller.abort(reason);
  assert.equal(await rejection(pending), reason);
  await waitFor(() => listener.closedSockets() === 1, 5000, "the client to close its TCP connection");

  const aborted = AbortSignal.abort(new Error("already"));
  const error = await rejection(connect(`ws://127.0.0.1:${listener.port}/`, { signal: aborted }));
  assert.equal((error as Error).message, "already");
  await delay(50);
  assert.equal(listener.accepted(), 1);
});

test("signal: aborting after the open closes the connection with 1000", async () => {
  const serverSaw = Promise.withResolvers<CloseInfo>();
  await using server = startServer(async (ws) => {
    serverSaw.resolve(await ws.closed);
  });
  const controller = new AbortController();
  const ws = await connect(server.url, { signal: controller.signal });
  controller.abort();
  assert.equal((await within(ws.closed, 5000, "client closed")).code, 1000);
  assert.equal((await within(serverSaw.promise, 5000, "server closed")).code, 1000);
});

test("a 401 or 404 answer rejects with InvalidHandshake carrying the status", async (t) => {
  if (noStatus) return t.skip(noStatus);
  await using server = startServer(echo, {
    processRequest(request) {
      const path = new URL(request.url).pathname;
      if (path === "/private") return new Response("log in", { status: 401 });
      if (path !== "/ok") return new Response("no such room", { status: 404 });
    },
  });
  for (const [path, status] of [["/private", 401], ["/missing", 404]] as const) {
    const error = await rejection(connect(server.url + path));
    assert.ok(error instanceof InvalidHandshake, String(error));
    // Deno and Bun both name the status in their error; Node and browsers do not.
    assert.equal(error.status, status);
    assert.match(error.message, new RegExp(`answered ${status}`));
  }
  const ok = await connect(server.url + "/ok");
  await ok.close();
});

test("an unreachable server rejects with InvalidHandshake without a status", async () => {
  const port = await freePort();
  const error = await rejection(connect(`ws://127.0.0.1:${port}/`));
  assert.ok(error instanceof InvalidHandshake, String(error));
  assert.equal(error.status, undefined);
});

test("bad URLs and options reject with InvalidURI and InvalidOption", async () => {
  for (const url of ["ftp://example.com/", "not a url", "localhost:8080"]) {
    const error = await rejection(connect(url));
    assert.ok(error instanceof InvalidURI, `${url}: ${error}`);
    assert.equal(error.uri, url);
  }
  assert.ok(await rejection(connect("ws://127.0.0.1:1/", { openTimeout: -1 })) instanceof InvalidOption);
  assert.ok(await rejection(connect("ws://127.0.0.1:1/", { maxQueue: 0 })) instanceof InvalidOption);
  for (const protocols of [["not a token"], ["twice", "twice"]]) {
    const error = await rejection(connect("ws://127.0.0.1:1/", { protocols }));
    assert.ok(error instanceof InvalidOption, `${protocols}: ${error}`);
  }
  const loop = reconnect("mailto:someone@example.com")[Symbol.asyncIterator]();
  assert.ok(await rejection(loop.next()) instanceof InvalidURI);
  const badDelays = reconnect("ws://127.0.0.1:1/", { minDelay: 100, maxDelay: 10 })[Symbol.asyncIterator]();
  assert.ok(await rejection(badDelays.next()) instanceof InvalidOption);
});

test("headers: sent with the handshake (seen by a wsport server and on the wire), and in ws.request", async () => {
  const seen = Promise.withResolvers<Headers>();
  await using server = startServer(echo, {
    processRequest(request) {
      seen.resolve(new Headers(request.headers));
    },
  });
  const ws = await connect(server.url, {
    headers: { authorization: "Bearer s3cret", "x-client": "wsport-test" },
  });
  const headers = await within(seen.promise, 5000, "server saw headers");
  assert.equal(headers.get("authorization"), "Bearer s3cret");
  assert.equal(headers.get("x-client"), "wsport-test");
  assert.equal(ws.request.headers.get("authorization"), "Bearer s3cret");
  await ws.close();

  await using listener = await silentListener();
  const controller = new AbortController();
  const pending = connect(`ws://127.0.0.1:${listener.port}/raw`, {
    headers: [["x-trace", "abc123"]],
    protocols: "p1",
    signal: controller.signal,
  });
  await waitFor(() => listener.heads.length === 1, 5000, "the raw handshake request");
  controller.abort();
  await rejection(pending);
  const head = listener.heads[0].toLowerCase();
  assert.match(head, /^get \/raw http\/1\.1\r\n/);
  assert.match(head, /\r\nx-trace: abc123\r\n/);
  assert.match(head, /\r\nsec-websocket-protocol: p1\r\n/);
  assert.match(head, /\r\nupgrade: websocket\r\n/);
});

test("reconnect(): survives a server restart on the same port, with growing delays while it is down", async () => {
  let served = 0;
  const handler = async (ws: Connection) => {
    await ws.send(`hello ${++served}`);
    await ws.closed;
  };
  let server = startServer(handler);
  const port = server.addr.port;
  const controller = new AbortController();
  const retries: { at: number; delay: number; error: unknown }[] = [];
  const received: string[] = [];
  let connections = 0;
  const loop = (async () => {
    for await (
      const ws of reconnect(server.url, {
        signal: controller.signal,
        minDelay: 40,
        factor: 2,
        maxDelay: 2000,
        jitter: 0,
        onRetry: (error, delay) => retries.push({ at: performance.now(), delay, error }),
      })
    ) {
      connections++;
      for await (const message of ws) received.push(message as string);
    }
  })();
  try {
    await within(waitFor(() => received.length === 1, 5000, "first message"), 6000);
    await server.close(); // 1001 to the client: it reconnects, and fails while nothing listens
    await waitFor(() => retries.length >= 4, 5000, "four failed attempts");
    server = startServer(handler, { port });
    await waitFor(() => received.length === 2, 5000, "a message on the second connection");
    assert.deepEqual(received, ["hello 1", "hello 2"]);
    assert.equal(connections, 2);

    const delays = retries.map((retry) => retry.delay);
    for (let i = 1; i < delays.length; i++) assert.ok(delays[i] > delays[i - 1], `delays ${delays}`);
    assert.deepEqual(delays.slice(0, 4), [80, 160, 320, 640]);
    // The time between failed attempts is at least the announced wait (which grows, above). Not
    // compared with each other: a refused attempt takes 2 ms, or 140 ms on a loaded machine.
    const gaps = retries.slice(1).map((retry, i) => retry.at - retries[i].at);
    for (let i = 0; i < gaps.length; i++) {
      assert.ok(gaps[i] >= delays[i] - 5, `gaps ${gaps}, delays ${delays}`);
    }
    assert.ok(retries.every((retry) => retry.error instanceof InvalidHandshake));

    controller.abort();
    await within(loop, 5000, "the loop to end on abort");
    assert.equal(connections, 2);
  } finally {
    controller.abort();
    await server.close();
  }
});

test("reconnect(): abort during a backoff wait ends the loop at once", async () => {
  const port = await freePort();
  const controller = new AbortController();
  const retries: number[] = [];
  const loop = (async () => {
    for await (
      const _ of reconnect(`ws://127.0.0.1:${port}/`, {
        signal: controller.signal,
        minDelay: 30_000,
        maxDelay: 60_000,
        onRetry: (_error, delay) => retries.push(delay),
      })
    ) assert.fail("nothing listens, so nothing can be yielded");
  })();
  await waitFor(() => retries.length === 1, 5000, "a failed attempt");
  const started = performance.now();
  controller.abort();
  await within(loop, 1000, "the loop to end");
  assert.ok(performance.now() - started < 1000);
  assert.ok(retries[0] >= 15_000 && retries[0] <= 30_000, `delay ${retries[0]}`);
});

test("reconnect(): by default reconnects after a server's 1012 and 1000, stops after the client's own 1000", async () => {
  let served = 0;
  await using server = startServer(async (ws) => {
    served++;
    if (served === 1) await ws.close(1012, "restarting");
    else if (served === 2) await ws.close(1000, "bye for now");
    else await echo(ws);
  });
  const closes: CloseInfo[] = [];
  let connections = 0;
  const loop = (async () => {
    for await (const ws of reconnect(server.url, { minDelay: 10, jitter: 0 })) {
      connections++;
      if (connections < 3) {
        closes.push(await ws.closed);
        continue;
      }
      await ws.send("ping");
      assert.equal(await within(ws.recv(), 5000, "echo"), "ping");
      await ws.close(1000); // this side's normal close: the loop ends by itself
    }
  })();
  await within(loop, 10_000, "the loop to end by itself");
  assert.equal(connections, 3);
  assert.deepEqual(closes, [{ code: 1012, reason: "restarting" }, { code: 1000, reason: "bye for now" }]);
});

test("reconnect(): shouldReconnect decides, and sees who closed", async () => {
  let served = 0;
  await using server = startServer(async (ws) => {
    served++;
    await ws.close(4000 + served, "go away");
  });
  const asked: ReconnectCloseInfo[] = [];
  let connections = 0;
  const loop = (async () => {
    for await (
      const ws of reconnect(server.url, {
        minDelay: 10,
        shouldReconnect: (close) => {
          asked.push(close);
          return close.code < 4002;
        },
      })
    ) {
      connections++;
      await within(ws.closed, 5000, "server close");
    }
  })();
  await within(loop, 10_000, "the loop to end when shouldReconnect says no");
  assert.equal(connections, 2);
  assert.deepEqual(asked, [
    { code: 4001, reason: "go away", initiatedByClient: false },
    { code: 4002, reason: "go away", initiatedByClient: false },
  ]);
});

test("reconnect(): retries 503 with backoff, throws a 401; break closes the connection", async (t) => {
  if (noStatus) return t.skip(noStatus);
  let requests = 0;
  const serverSaw = Promise.withResolvers<CloseInfo>();
  await using server = startServer(async (ws) => {
    serverSaw.resolve(await ws.closed);
  }, {
    processRequest(request) {
      requests++;
      if (new URL(request.url).pathname === "/denied") return new Response("no", { status: 401 });
      if (requests <= 2) return new Response("busy", { status: 503 });
    },
  });
  const retried: unknown[] = [];
  let connections = 0;
  const first = (async () => {
    for await (const ws of reconnect(server.url, { minDelay: 10, onRetry: (error) => retried.push(error) })) {
      connections++;
      assert.equal(ws.readyState, "open");
      break;
    }
  })();
  await within(first, 10_000, "a connection after two 503s");
  assert.equal(connections, 1);
  assert.equal(retried.length, 2);
  assert.ok(retried.every((error) => error instanceof InvalidHandshake && error.status === 503));
  assert.equal((await within(serverSaw.promise, 5000, "server saw the close")).code, 1000);

  const retriedDenied: unknown[] = [];
  const loop = reconnect(server.url + "/denied", { minDelay: 10, onRetry: (e) => retriedDenied.push(e) });
  const error = await rejection(loop[Symbol.asyncIterator]().next());
  assert.ok(error instanceof InvalidHandshake && error.status === 401, String(error));
  assert.equal(retriedDenied.length, 0);
});

test("interoperates with a server built on the ws npm package", async () => {
  const { WebSocketServer } = await import("ws");
  const wss = new WebSocketServer({
    host: "127.0.0.1",
    port: 0,
    handleProtocols: (offered: Set<string>) => (offered.has("echo") ? "echo" : false),
  });
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  const port = (wss.address() as net.AddressInfo).port;
  const serverSaw = Promise.withResolvers<{ code: number; reason: string; auth: unknown }>();
  interface WsSocket {
    on(event: "message", listener: (data: Buffer, isBinary: boolean) => void): void;
    on(event: "close", listener: (code: number, reason: Buffer) => void): void;
    send(data: Buffer, options: { binary: boolean }): void;
  }
  wss.on("connection", (socket: WsSocket, request: { headers: Record<string, unknown> }) => {
    socket.on("message", (data: Buffer, isBinary: boolean) => socket.send(data, { binary: isBinary }));
    socket.on("close", (code: number, reason: Buffer) => {
      serverSaw.resolve({ code, reason: reason.toString(), auth: request.headers["authorization"] });
    });
  });
  try {
    const ws = await connect(`ws://127.0.0.1:${port}/`, {
      protocols: ["other", "echo"],
      headers: { authorization: "Basic dTpw" },
    });
    assert.equal(ws.protocol, "echo");
    await ws.send("text through ws");
    assert.equal(await within(ws.recv(), 5000, "text"), "text through ws");
    await ws.send(new Uint8Array([3, 2, 1]));
    assert.deepEqual(await within(ws.recv(), 5000, "binary"), new Uint8Array([3, 2, 1]));
    await within(ws.close(4321, "done"), 5000, "close");
    assert.deepEqual(await within(ws.closed, 5000, "closed"), { code: 4321, reason: "done" });
    assert.deepEqual(await within(serverSaw.promise, 5000, "ws server close"), {
      code: 4321,
      reason: "done",
      auth: "Basic dTpw",
    });
  } finally {
    for (const client of wss.clients) client.terminate();
    await new Promise((resolve) => wss.close(resolve));
  }
});
