/**
 * Per-request response headers (`context.headers` in processRequest, shown
 * as `ws.responseHeaders`), over raw TCP so that the exact 101 is seen, and
 * `fetch` answering every request with a Response when embedded.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { type Connection, createServer, type ServerOptions } from "../mod.ts";
import { bunWebSocket, websocket } from "../hono.ts";
import { startServer, within } from "./helpers.ts";
import { RawPeer, rawRequest, UPGRADE_HEADERS } from "./raw.ts";
import { runtime } from "./runtime.ts";

const isBun = "Bun" in globalThis;

/** The handler tells the peer what its connection says was sent. */
const reportHeaders = (ws: Connection) => ws.send(JSON.stringify([...ws.responseHeaders]));

/** The pairs a handler reported, in a stable order. */
async function reported(peer: RawPeer): Promise<[string, string][]> {
  const received = await peer.next();
  assert.ok(received, "the handler's message");
  return (JSON.parse(received.payload.toString()) as [string, string][]).sort(byPair);
}

const byPair = (a: [string, string], b: [string, string]) =>
  a[0] === b[0] ? a[1].localeCompare(b[1]) : a[0].localeCompare(b[0]);

/** Static headers, and per-request ones for a request that names a user. */
const options: ServerOptions = {
  headers: { "x-served-by": "wsport", "set-cookie": "theme=dark", "x-env": "static" },
  processRequest(request, context) {
    const user = request.headers.get("x-user");
    if (user === "mallory") {
      context.headers.set("x-request-id", "refused");
      return new Response("401 Unauthorized\n", { status: 401 });
    }
    if (!user) return;
    context.headers.append("set-cookie", `session=${user}; HttpOnly`);
    context.headers.set("x-request-id", `req-${user}`);
    context.headers.set("x-env", "per-request");
  },
};

const STATIC = [["set-cookie", "theme=dark"], ["x-env", "static"], ["x-served-by", "wsport"]];

test("processRequest's context.headers reach the 101 after the static headers; ws.responseHeaders shows them", async () => {
  await using server = startServer(reportHeaders, options);
  const peer = await RawPeer.open(server.addr.port, { ...UPGRADE_HEADERS, "X-User": "ann" });
  // A cookie of its own beside the static one; a name set per request replaces the static value.
  assert.deepEqual(peer.headers.getSetCookie().sort(), ["session=ann; HttpOnly", "theme=dark"]);
  assert.equal(peer.headers.get("x-request-id"), "req-ann");
  assert.equal(peer.headers.get("x-env"), "per-request");
  assert.equal(peer.headers.get("x-served-by"), "wsport");
  assert.deepEqual(await reported(peer), [
    ["set-cookie", "session=ann; HttpOnly"],
    ["set-cookie", "theme=dark"],
    ["x-env", "per-request"],
    ["x-request-id", "req-ann"],
    ["x-served-by", "wsport"],
  ]);
  peer.destroy();

  // A handshake whose hook sets nothing gets the static headers only.
  const plain = await RawPeer.open(server.addr.port);
  assert.deepEqual(plain.headers.getSetCookie(), ["theme=dark"]);
  assert.equal(plain.headers.get("x-request-id"), null);
  assert.equal(plain.headers.get("x-env"), "static");
  assert.deepEqual(await reported(plain), STATIC);
  plain.destroy();

  // A Response from the hook is sent as it is: the headers set for the 101 are not added to it.
  const refused = await rawRequest(server.addr.port, { ...UPGRADE_HEADERS, "X-User": "mallory" });
  refused.socket.destroy();
  assert.equal(refused.status, 401);
  assert.equal(refused.headers.get("x-request-id"), null);
});

test("two concurrent handshakes each get their own response headers", async () => {
  // Both hooks wait until both requests are in, so the two handshakes overlap.
  let arrived = 0;
  const bothIn = Promise.withResolvers<void>();
  await using server = startServer(reportHeaders, {
    async processRequest(request, context) {
      const id = request.headers.get("x-id")!;
      context.headers.set("x-request-id", id);
      if (++arrived === 2) bothIn.resolve();
      await within(bothIn.promise, 5000, "both handshakes");
      context.headers.append("set-cookie", `session=${id}`);
    },
  });
  const [a, b] = await Promise.all(
    ["a-1", "b-2"].map((id) => RawPeer.open(server.addr.port, { ...UPGRADE_HEADERS, "X-Id": id })),
  );
  assert.equal(a.headers.get("x-request-id"), "a-1");
  assert.deepEqual(a.headers.getSetCookie(), ["session=a-1"]);
  assert.equal(b.headers.get("x-request-id"), "b-2");
  assert.deepEqual(b.headers.getSetCookie(), ["session=b-2"]);
  assert.deepEqual(await reported(a), [["set-cookie", "session=a-1"], ["x-request-id", "a-1"]]);
  assert.deepEqual(await reported(b), [["set-cookie", "session=b-2"], ["x-request-id", "b-2"]]);
  a.destroy();
  b.destroy();
});

interface BunLike {
  serve(options: {
    hostname: string;
    port: number;
    fetch: (request: Request, server: unknown) => Response | Promise<Response>;
    websocket: unknown;
  }): { port: number; stop(closeActiveConnections?: boolean): Promise<void> | void };
}

/** Serves `fetch` with the runtime's own server, the way the README embeds wsport. */
function embed(
  fetch: (request: Request, context: unknown) => Response | Promise<Response>,
  bunHandlers: unknown,
): { port: number; stop(): Promise<void> } {
  if (isBun) {
    const Bun = (globalThis as unknown as { Bun: BunLike }).Bun;
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch, websocket: bunHandlers });
    return { port: server.port, stop: async () => await server.stop(true) };
  }
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, fetch);
  return { port: server.addr.port, stop: () => server.shutdown() };
}

test("embedded, fetch answers an upgrade with a 101 Response, and the runtime sends the 101 wsport chose", {
  skip: runtime === "node" && "createServer() embeds in Deno and Bun; on Node, serve() runs the ws engine",
}, async () => {
  const wss = createServer(async (ws) => {
    await ws.send("first frame");
    await reportHeaders(ws);
  }, options);
  const answers: Promise<Response>[] = [];
  const http = embed((request, context) => {
    const answer = wss.fetch(request, context);
    answers.push(Promise.resolve(answer));
    return answer;
  }, wss.websocket);
  try {
    const peer = await RawPeer.open(http.port, { ...UPGRADE_HEADERS, "X-User": "bob" });
    assert.equal(peer.headers.get("x-request-id"), "req-bob");
    assert.deepEqual(peer.headers.getSetCookie().sort(), ["session=bob; HttpOnly", "theme=dark"]);
    // The stream after the head is the handler's frames: nothing of the returned Response's leaked into it
    // (Bun ignores a Response returned after server.upgrade()).
    const first = await peer.next();
    assert.equal(first?.opcode, 1);
    assert.equal(first?.payload.toString(), "first frame");
    assert.equal((await reported(peer)).find(([name]) => name === "x-request-id")?.[1], "req-bob");

    const answer = await answers[0];
    assert.ok(answer instanceof Response);
    assert.equal(answer.status, 101);
    assert.equal(answer.headers.get("x-request-id"), "req-bob");
    assert.equal(answer.headers.get("upgrade")?.toLowerCase(), "websocket");
    peer.destroy();

    // Refusals are Responses too.
    const plain = await fetch(`http://127.0.0.1:${http.port}/`);
    assert.equal(plain.status, 426);
    await plain.body?.cancel();
    assert.equal((await answers[1]).status, 426);
  } finally {
    await within(wss.close(), 15_000, "wss.close");
    await within(http.stop(), 15_000, "http.stop");
  }
});

test("Hono: context.headers reach the 101 after other middleware's and the static headers", {
  skip: runtime === "node" && "the Hono middleware embeds in Deno.serve and Bun.serve",
}, async () => {
  const app = new Hono();
  app.use("*", async (c, next) => {
    c.header("x-from-middleware", "1");
    c.header("x-env", "middleware");
    c.header("set-cookie", "mw=1", { append: true });
    await next();
  });
  const ws = websocket(reportHeaders, options);
  app.get("/", ws);
  const http = embed(app.fetch, bunWebSocket);
  try {
    const response = await rawRequest(http.port, { ...UPGRADE_HEADERS, "X-User": "cat" });
    response.socket.destroy();
    assert.equal(response.status, 101);
    assert.equal(response.headers.get("x-from-middleware"), "1");
    assert.equal(response.headers.get("x-served-by"), "wsport");
    assert.equal(response.headers.get("x-request-id"), "req-cat");
    assert.equal(response.headers.get("x-env"), "per-request");
    assert.deepEqual(response.headers.getSetCookie().sort(), ["mw=1", "session=cat; HttpOnly", "theme=dark"]);

    const peer = await RawPeer.open(http.port, { ...UPGRADE_HEADERS, "X-User": "dan" });
    assert.deepEqual(await reported(peer), [
      ["set-cookie", "mw=1"],
      ["set-cookie", "session=dan; HttpOnly"],
      ["set-cookie", "theme=dark"],
      ["x-env", "per-request"],
      ["x-from-middleware", "1"],
      ["x-request-id", "req-dan"],
      ["x-served-by", "wsport"],
    ]);
    peer.destroy();
  } finally {
    await within(ws.close(), 15_000, "middleware close");
    await within(http.stop(), 15_000, "http.stop");
  }
});
