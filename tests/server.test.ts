import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type Connection, ConnectionClosed, ConnectionClosedOK } from "../mod.ts";
import { delay, startServer, TestClient, waitFor, within } from "./helpers.ts";
import { rawRequest, UPGRADE_HEADERS } from "./raw.ts";

const echo = async (ws: Connection) => {
  for await (const message of ws) await ws.send(message);
};

test("echoes text as text and binary as binary", async () => {
  await using server = startServer(echo);
  const client = await TestClient.open(server.url);
  client.send("hello");
  assert.equal(await client.next(), "hello");
  client.send(new Uint8Array([0, 1, 2, 255]));
  assert.deepEqual(await client.next(), new Uint8Array([0, 1, 2, 255]));
  client.send("héllo wörld ✓");
  assert.equal(await client.next(), "héllo wörld ✓");
  client.close(1000);
  assert.equal((await client.closed).code, 1000);
});

test("binary messages a handler keeps stay intact as more arrive, and do not keep a large buffer alive", async () => {
  const sizes = [0, 1, 40, 64, 65, 100, 1000, 1024, 2047, 2048, 2049, 3000, 5000, 20000, 70000];
  const count = sizes.length * 4;
  const pattern = (index: number, size: number) => new Uint8Array(size).map((_, i) => (index * 31 + i) & 255);
  let problems: string[] | undefined; // recorded here, asserted below
  await using server = startServer(async (ws) => {
    const kept: Uint8Array[] = [];
    while (kept.length < count) kept.push(await ws.recv() as Uint8Array);
    problems = [];
    kept.forEach((message, index) => {
      const expected = pattern(index, sizes[index % sizes.length]);
      if (Buffer.compare(message, expected) !== 0) problems!.push(`message ${index} changed`);
      // What keeping one message keeps alive: itself, or a buffer of 16 KiB, or 4 times itself.
      const limit = Math.max(16 * 1024, 4 * message.byteLength);
      if (message.buffer.byteLength > limit) {
        problems!.push(`message ${index} (${message.byteLength} B) keeps ${message.buffer.byteLength} B`);
      }
    });
    await ws.send("checked");
  });
  const client = await TestClient.open(server.url);
  // In one burst, so that many messages arrive in each read.
  for (let index = 0; index < count; index++) client.send(pattern(index, sizes[index % sizes.length]));
  assert.equal(await client.next(), "checked");
  assert.deepEqual(problems, []);
  client.close();
  await client.closed;
});

test("a handler that returns closes the connection with 1000", async () => {
  await using server = startServer(async (ws) => {
    await ws.send("bye");
  });
  const client = new TestClient(server.url);
  assert.equal(await client.next(), "bye");
  assert.equal((await client.closed).code, 1000);
});

test("a handler that throws closes with 1011, reports to onError, and the server goes on", async () => {
  const errors: unknown[] = [];
  let calls = 0;
  await using server = startServer(async (ws) => {
    if (calls++ === 0) throw new Error("boom");
    await echo(ws);
  }, { onError: (error) => errors.push(error) });
  const first = new TestClient(server.url);
  assert.equal((await first.closed).code, 1011);
  assert.equal(errors.length, 1);
  assert.equal((errors[0] as Error).message, "boom");
  assert.equal(server.counters.closed.handlerError, 1);
  const second = await TestClient.open(server.url);
  second.send("still here");
  assert.equal(await second.next(), "still here");
  second.close();
  await second.closed;
});

test("recv after the peer closed rejects with ConnectionClosed carrying code and reason", async () => {
  const seen = Promise.withResolvers<unknown>();
  let first: unknown; // recorded here, asserted below: a failed assert in a handler only reaches onError
  await using server = startServer(async (ws) => {
    first = await ws.recv();
    await ws.closed;
    try {
      await ws.recv();
      seen.resolve("no error");
    } catch (error) {
      seen.resolve(error);
    }
  });
  const client = await TestClient.open(server.url);
  client.send("one");
  client.close(4000, "done here");
  const error = await within(seen.promise, 5000, "recv rejection");
  assert.equal(first, "one");
  assert.ok(error instanceof ConnectionClosed, String(error));
  assert.equal((error as ConnectionClosed).code, 4000);
  assert.equal((error as ConnectionClosed).reason, "done here");
});

test("concurrent receivers get messages in call order; an aborted one leaves the line; the rest fail at close", async () => {
  const done = Promise.withResolvers<unknown[]>();
  await using server = startServer(async (ws) => {
    const abort = new AbortController();
    const first = ws.recv();
    const aborted = ws.recv({ signal: abort.signal });
    const second = ws.recv();
    const third = ws.recv();
    const fourth = ws.recv();
    abort.abort(new Error("not wanted"));
    await ws.send("ready");
    const settled = await Promise.allSettled([first, aborted, second, third, fourth]);
    done.resolve(
      settled.map((result) =>
        result.status === "fulfilled" ? result.value : (result.reason as Error).constructor.name + ":" +
          (result.reason as Error).message
      ),
    );
  });
  const client = await TestClient.open(server.url);
  assert.equal(await client.next(), "ready");
  client.send("a");
  client.send("b");
  client.send("c");
  client.close(4001, "bye");
  const results = await within(done.promise, 5000, "receivers settled");
  assert.deepEqual(results.slice(0, 4), ["a", "Error:not wanted", "b", "c"]);
  assert.match(String(results[4]), /^ConnectionClosed\w*:.*4001/);
});

test("iteration ends quietly on a normal close; signal aborts and closed resolves", async () => {
  const done = Promise.withResolvers<{ received: string[]; aborted: boolean; closed: unknown }>();
  await using server = startServer(async (ws) => {
    const received: string[] = [];
    for await (const message of ws) received.push(message as string);
    done.resolve({ received, aborted: ws.signal.aborted, closed: await ws.closed });
  });
  const client = await TestClient.open(server.url);
  client.send("a");
  client.send("b");
  client.close(1000, "bye"); // after the messages, in order

  const result = await within(done.promise, 5000, "handler end");
  assert.deepEqual(result.received, ["a", "b"]);
  assert.equal(result.aborted, true);
  assert.deepEqual(result.closed, { code: 1000, reason: "bye" });
});

test("recv({ signal }) stops waiting when the signal aborts", async () => {
  const outcome = Promise.withResolvers<unknown>();
  await using server = startServer(async (ws) => {
    try {
      await ws.recv({ signal: AbortSignal.timeout(50) });
    } catch (error) {
      outcome.resolve(error);
    }
    await ws.send("still open");
  });
  const client = await TestClient.open(server.url);
  const error = await within(outcome.promise, 5000, "recv() to stop waiting");
  assert.equal((error as Error).name, "TimeoutError");
  assert.equal(await client.next(), "still open");
});

test("close() sends the code and reason and resolves when the handshake ends", async () => {
  const closedInfo = Promise.withResolvers<unknown>();
  await using server = startServer(async (ws) => {
    await ws.close(4321, "custom");
    closedInfo.resolve(await ws.closed);
  });
  const client = new TestClient(server.url);
  assert.deepEqual(await client.closed, { code: 4321, reason: "custom" });
  assert.deepEqual(await within(closedInfo.promise, 5000, "the handler's closed"), {
    code: 4321,
    reason: "custom",
  });
});

test("send after close rejects with ConnectionClosed, and an unawaited one does not crash", async () => {
  const outcome = Promise.withResolvers<unknown>();
  await using server = startServer(async (ws) => {
    await ws.closed;
    ws.send("ignored"); // not awaited: must not be an unhandled rejection
    try {
      await ws.send("x");
      outcome.resolve("sent");
    } catch (error) {
      outcome.resolve(error);
    }
  });
  const client = await TestClient.open(server.url);
  client.close(1000);
  const error = await within(outcome.promise, 5000, "the late send's rejection");
  assert.ok(error instanceof ConnectionClosedOK);
});

test("processRequest can answer instead of upgrading (health check) and attach data", async () => {
  await using server = startServer<{ user: string }>(async (ws) => {
    await ws.send(`hello ${ws.data.user}`);
  }, {
    processRequest(request, context) {
      const url = new URL(request.url);
      if (url.pathname === "/healthz") return new Response("OK");
      const token = url.searchParams.get("token");
      if (token !== "secret") return new Response("unauthorized", { status: 401 });
      context.data = { user: "ada" };
    },
  });
  const health = await fetch(`${server.http}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(await health.text(), "OK");
  const denied = await rawRequest(server.addr.port, UPGRADE_HEADERS, { path: "/ws" });
  assert.equal(denied.status, 401);
  denied.socket.destroy();
  const client = new TestClient(`${server.url}/ws?token=secret`);
  assert.equal(await client.next(), "hello ada");
  await client.closed;
  assert.equal(server.counters.refused.processRequest, 1); // the 401; the health check is an answer
  assert.equal(server.counters.answered, 1);
});

test("an async processRequest works the same", async () => {
  await using server = startServer<string>(async (ws) => {
    await ws.send(ws.data);
  }, {
    async processRequest(_request, context) {
      await delay(5);
      context.data = "async data";
    },
  });
  const client = new TestClient(server.url);
  assert.equal(await client.next(), "async data");
});

test("origins: an allowed origin connects, another gets 403", async () => {
  await using server = startServer(echo, { origins: ["https://good.example", /\.trusted\.example$/] });
  const good = await rawRequest(server.addr.port, { ...UPGRADE_HEADERS, Origin: "https://good.example" });
  assert.equal(good.status, 101);
  good.socket.destroy();
  const pattern = await rawRequest(server.addr.port, {
    ...UPGRADE_HEADERS,
    Origin: "https://a.trusted.example",
  });
  assert.equal(pattern.status, 101);
  pattern.socket.destroy();
  const bad = await rawRequest(server.addr.port, { ...UPGRADE_HEADERS, Origin: "https://evil.example" });
  assert.equal(bad.status, 403);
  bad.socket.destroy();
  const none = await rawRequest(server.addr.port, UPGRADE_HEADERS);
  assert.equal(none.status, 403);
  none.socket.destroy();
  assert.equal(server.counters.refused.forbiddenOrigin, 2);
});

test("subprotocol: the server's first choice among those offered", async () => {
  await using server = startServer(async (ws) => {
    await ws.send(`protocol=${ws.protocol}`);
  }, { subprotocols: ["chat.v2", "chat.v1"] });
  const client = new TestClient(server.url, ["chat.v1", "chat.v2"]);
  await client.opened;
  assert.equal(client.socket.protocol, "chat.v2");
  assert.equal(await client.next(), "protocol=chat.v2");
});

test("subprotocol: none when the client offers none, or none the server speaks", async () => {
  await using server = startServer(async (ws) => {
    await ws.send(`protocol=${ws.protocol}`);
  }, { subprotocols: ["chat.v1"] });
  const plain = new TestClient(server.url);
  assert.equal(await plain.next(), "protocol=");
  const unknown = await rawRequest(server.addr.port, {
    ...UPGRADE_HEADERS,
    "Sec-WebSocket-Protocol": "other",
  });
  assert.equal(unknown.status, 101);
  assert.equal(unknown.headers.get("sec-websocket-protocol"), null);
  unknown.socket.destroy();
});

test("without subprotocols configured, none is answered even when offered", async () => {
  await using server = startServer(echo);
  const response = await rawRequest(server.addr.port, {
    ...UPGRADE_HEADERS,
    "Sec-WebSocket-Protocol": "a, b",
  });
  assert.equal(response.status, 101);
  assert.equal(response.headers.get("sec-websocket-protocol"), null);
  response.socket.destroy();
});

test("extra response headers reach the client", async () => {
  await using server = startServer(echo, { headers: { "x-served-by": "wsport", "x-region": "test" } });
  const response = await rawRequest(server.addr.port);
  assert.equal(response.status, 101);
  assert.equal(response.headers.get("x-served-by"), "wsport");
  assert.equal(response.headers.get("x-region"), "test");
  response.socket.destroy();
});

test("a plain HTTP request gets 426 with a short text body", async () => {
  await using server = startServer(echo);
  const response = await fetch(server.http);
  assert.equal(response.status, 426);
  assert.match(await response.text(), /Upgrade Required/);
  assert.equal(server.counters.refused.upgradeRequired, 1);
  const client = await TestClient.open(server.url); // still serving
  client.close();
});

test("connections grows with clients and shrinks back to 0", async () => {
  await using server = startServer(echo);
  const clients = await Promise.all(Array.from({ length: 10 }, () => TestClient.open(server.url)));
  await waitFor(() => server.connections.size === 10, 5000, "10 connections");
  for (const client of clients) client.close();
  await waitFor(() => server.connections.size === 0, 5000, "0 connections");
  assert.equal(server.counters.accepted, 10);
});

test("remoteAddress is the client's address and port", async () => {
  const seen = Promise.withResolvers<{ hostname: string; port: number }>();
  await using server = startServer((ws) => {
    seen.resolve(ws.remoteAddress);
  });
  const response = await rawRequest(server.addr.port);
  const address = await within(seen.promise, 5000, "the handler");
  assert.equal(address.hostname, "127.0.0.1");
  assert.equal(address.port, response.socket.localPort);
  response.socket.destroy();
});

test("request, url and id describe the connection", async () => {
  const seen = Promise.withResolvers<Connection>();
  await using server = startServer(async (ws) => {
    seen.resolve(ws);
    await ws.closed;
  });
  const client = await TestClient.open(`${server.url}/rooms/blue?x=1`);
  const ws = await within(seen.promise, 5000, "the handler");
  assert.equal(ws.url.pathname, "/rooms/blue");
  assert.equal(ws.url.searchParams.get("x"), "1");
  assert.equal(ws.request.headers.get("upgrade")?.toLowerCase(), "websocket");
  assert.match(ws.id, /^[0-9a-f-]{36}$/);
  client.close();
});

test("ws.request keeps every header of the upgrade request, long after the runtime freed the original", async () => {
  const { default: WS } = await import("ws");
  await using server = startServer(async (ws) => {
    // Read well after the upgrade: Deno frees the original request once it has answered 101.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const { headers, method, url } = ws.request;
    await ws.send(JSON.stringify({
      method,
      url,
      cookie: headers.get("cookie"),
      token: headers.get("x-token"),
      multi: headers.get("x-multi"),
      key: headers.get("sec-websocket-key"),
      same: ws.request === ws.request,
    }));
  });
  const client = new WS(`${server.url}/path?q=1`, {
    headers: { cookie: "a=1; b=2", "x-token": "t0k3n", "x-multi": ["one", "two"] },
  });
  const message = new Promise<string>((resolve, reject) => {
    client.once("message", (data: Buffer) => resolve(data.toString()));
    client.once("error", reject);
  });
  const seen = JSON.parse(await within(message, 5000, "the request as the handler saw it"));
  assert.equal(seen.method, "GET");
  assert.equal(seen.url, `${server.http}/path?q=1`);
  assert.equal(seen.cookie, "a=1; b=2");
  assert.equal(seen.token, "t0k3n");
  assert.equal(seen.multi, "one, two");
  assert.match(seen.key, /^[A-Za-z0-9+/]{22}==$/);
  assert.equal(seen.same, true);
  client.close();
});

test("readable and writable streams carry the same messages", async () => {
  await using server = startServer(async (ws) => {
    await ws.readable
      .pipeThrough(
        new TransformStream<string | Uint8Array, string>({
          transform: (message, controller) => controller.enqueue(`stream:${message}`),
        }),
      )
      .pipeTo(ws.writable);
  });
  const client = await TestClient.open(server.url);
  client.send("x");
  assert.equal(await client.next(), "stream:x");
  client.send("y");
  assert.equal(await client.next(), "stream:y");
  client.close(1000);
  assert.equal((await client.closed).code, 1000);
});

test("interoperates with the ws npm client, text and binary", async () => {
  const { default: WS } = await import("ws");
  await using server = startServer(echo);
  const ws = new WS(server.url);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const replies: { data: Buffer; binary: boolean }[] = [];
  const two = new Promise<void>((resolve) => {
    ws.on("message", (data: Buffer, binary: boolean) => {
      replies.push({ data, binary });
      if (replies.length === 2) resolve();
    });
  });
  ws.send("text");
  ws.send(Buffer.from([9, 8, 7]));
  await within(two, 5000, "ws replies");
  assert.equal(replies[0].binary, false);
  assert.equal(replies[0].data.toString(), "text");
  assert.equal(replies[1].binary, true);
  assert.deepEqual([...replies[1].data], [9, 8, 7]);
  const closed = new Promise<number>((resolve) => ws.once("close", resolve));
  ws.close(1000);
  assert.equal(await closed, 1000);
});

test("a processRequest that throws answers 500, reports to onError, and the server goes on", async () => {
  const errors: unknown[] = [];
  await using server = startServer(echo, {
    onError: (error) => errors.push(error),
    processRequest(request) {
      const path = new URL(request.url).pathname;
      if (path === "/sync") throw new Error("sync hook failure"); // thrown, not rejected
      if (path === "/async") return delay(1).then(() => Promise.reject(new Error("async hook failure")));
    },
  });
  for (const path of ["/sync", "/async"]) {
    const response = await rawRequest(server.addr.port, UPGRADE_HEADERS, { path });
    assert.equal(response.status, 500);
    response.socket.destroy();
  }
  assert.deepEqual(errors.map((error) => (error as Error).message), [
    "sync hook failure",
    "async hook failure",
  ]);
  assert.equal(server.connections.size, 0);
  const client = await TestClient.open(server.url);
  client.send("fine");
  assert.equal(await client.next(), "fine");
  client.close();
});
