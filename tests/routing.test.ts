import { test } from "node:test";
import assert from "node:assert/strict";
import { type Connection, createServer, InvalidOption, serve } from "../mod.ts";
import { assertEchoes, startServer, TestClient, waitFor, within } from "./helpers.ts";
import { rawRequest, UPGRADE_HEADERS } from "./raw.ts";
import { noURLPattern } from "./runtime.ts";

const echo = async (ws: Connection) => {
  for await (const message of ws) await ws.send(message);
};

test("routes: each path gets its handler, and route params reach ws.params and processRequest", {
  skip: noURLPattern,
}, async () => {
  const seen: Record<string, string | undefined>[] = [];
  await using server = startServer({
    "/rooms/:room": async (ws) => {
      await ws.send(JSON.stringify({ room: ws.params.room, path: ws.url.pathname }));
    },
    "/files/*": (ws) => ws.send(`file ${ws.params[0]}`),
    "/echo": echo,
  }, {
    processRequest(_request, context) {
      seen.push({ ...context.params });
    },
  });

  const room = new TestClient(`${server.url}/rooms/lobby?x=1`);
  assert.deepEqual(JSON.parse(await room.next() as string), { room: "lobby", path: "/rooms/lobby" });

  // Params are percent-decoded.
  const spaced = new TestClient(`${server.url}/rooms/tea%20room`);
  assert.deepEqual(JSON.parse(await spaced.next() as string), {
    room: "tea room",
    path: "/rooms/tea%20room",
  });

  const file = new TestClient(`${server.url}/files/a/b.txt`);
  assert.equal(await file.next(), "file a/b.txt");

  const client = await TestClient.open(`${server.url}/echo`);
  await assertEchoes(client, "hello");
  client.close();
  await client.closed;

  assert.deepEqual(seen, [{ room: "lobby" }, { room: "tea room" }, { 0: "a/b.txt" }, {}]);
  assert.equal(server.counters.accepted, 4);
});

test("routes: an unknown path is refused 404 before upgrading, and no connection is made", {
  skip: noURLPattern,
}, async () => {
  let handlerCalls = 0;
  await using server = startServer({
    "/echo": async (ws) => {
      handlerCalls++;
      await echo(ws);
    },
  });

  for (const path of ["/", "/nope", "/echo/extra", "/ECHO"]) {
    const response = await rawRequest(server.addr.port, UPGRADE_HEADERS, { path });
    response.socket.destroy();
    assert.equal(response.status, 404, path);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
    assert.equal(response.headers.get("upgrade"), null);
  }
  // Plain HTTP on an unknown path: 404 as well (not 426).
  const plain = await fetch(`${server.http}/nope`);
  assert.equal(plain.status, 404);
  assert.match(await plain.text(), /^404 Not Found/);

  assert.equal(server.counters.refused.notFound, 5);
  assert.equal(server.counters.accepted, 0);
  assert.equal(server.connections.size, 0);
  assert.equal(handlerCalls, 0);

  // The known path still upgrades.
  const client = await TestClient.open(`${server.url}/echo`);
  client.send("still here");
  assert.equal(await client.next(), "still here");
  client.close();
  await client.closed;
  assert.equal(handlerCalls, 1);
});

test("routes: processRequest still sees every request, so a health check works beside the routes", {
  skip: noURLPattern,
}, async () => {
  await using server = startServer({ "/ws": echo }, {
    processRequest(request, context) {
      const url = new URL(request.url);
      if (url.pathname === "/healthz") return new Response("OK\n");
      if (url.pathname === "/ws" && url.searchParams.get("token") !== "t") {
        return new Response("unauthorized\n", { status: 401 });
      }
      context.data = { user: "t" };
    },
  });

  const health = await fetch(`${server.http}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(await health.text(), "OK\n");

  const refused = await rawRequest(server.addr.port, UPGRADE_HEADERS, { path: "/ws" });
  refused.socket.destroy();
  assert.equal(refused.status, 401);

  // processRequest returned nothing and no route matched: 404.
  const unknown = await rawRequest(server.addr.port, UPGRADE_HEADERS, { path: "/other" });
  unknown.socket.destroy();
  assert.equal(unknown.status, 404);

  const client = await TestClient.open(`${server.url}/ws?token=t`);
  await assertEchoes(client);
  client.close();
  await client.closed;

  assert.equal(server.counters.refused.processRequest, 1); // the 401; the health check is an answer
  assert.equal(server.counters.answered, 1);
  assert.equal(server.counters.refused.notFound, 1);
  assert.equal(server.counters.accepted, 1);
});

test("routes: the first matching route wins; async processRequest gets the params too", {
  skip: noURLPattern,
}, async () => {
  await using server = startServer({
    "/rooms/lobby": (ws) => ws.send("the lobby"),
    "/rooms/:room": (ws) => ws.send(`room ${ws.params.room} for ${(ws.data as { user: string }).user}`),
  }, {
    async processRequest(_request, context) {
      await Promise.resolve();
      context.data = { user: `user-of-${context.params.room}` };
    },
  });
  assert.equal(await new TestClient(`${server.url}/rooms/lobby`).next(), "the lobby");
  assert.equal(
    await new TestClient(`${server.url}/rooms/kitchen`).next(),
    "room kitchen for user-of-kitchen",
  );
});

test("a single handler still serves every path, with empty params", async () => {
  await using server = startServer((ws) => ws.send(JSON.stringify(ws.params)));
  assert.equal(await new TestClient(`${server.url}/any/path`).next(), "{}");
  assert.equal(server.counters.refused.notFound, 0);
});

test(
  "routes: a handler's connection closes like any other on server.close()",
  { skip: noURLPattern },
  async () => {
    const server = startServer({ "/hold": (ws) => ws.closed.then(() => {}) });
    const client = await TestClient.open(`${server.url}/hold`);
    await waitFor(() => server.connections.size === 1, 5000, "connection");
    await within(server.close(), 15_000, "close");
    assert.deepEqual(await client.closed, { code: 1001, reason: "going away" });
  },
);

test("routes: patterns that are not paths, and handlers that are not functions, are rejected", {
  skip: noURLPattern,
}, () => {
  assert.throws(() => createServer({ "rooms/:room": echo }), InvalidOption);
  assert.throws(() => createServer({ "/rooms/(": echo }), InvalidOption);
  assert.throws(() => createServer({ "/x": "nope" as unknown as typeof echo }), InvalidOption);
  assert.throws(() => createServer({}), InvalidOption);
});

test("routes on a runtime without URLPattern throw InvalidOption naming the cause and the fix", async () => {
  // Runs everywhere: on a runtime that has URLPattern, it is taken away for the duration.
  const saved = Object.getOwnPropertyDescriptor(globalThis, "URLPattern");
  if (saved) delete (globalThis as { URLPattern?: unknown }).URLPattern;
  try {
    // Thrown before anything listens.
    assert.throws(() => serve({ "/rooms/:room": echo }, { hostname: "127.0.0.1", port: 0 }), (error) => {
      assert.ok(error instanceof InvalidOption, String(error));
      assert.match(error.message, /^routes: this runtime has no global URLPattern/);
      assert.match(error.message, /Node 23\.8 or later/);
      assert.match(error.message, /globalThis\.URLPattern/);
      assert.match(error.message, /urlpattern-polyfill/);
      return true;
    });
    // One handler for every path needs no URLPattern.
    await using server = startServer(echo);
    const client = await TestClient.open(`${server.url}/any/path`);
    await assertEchoes(client);
    client.close();
    await client.closed;
  } finally {
    if (saved) Object.defineProperty(globalThis, "URLPattern", saved);
  }
});
