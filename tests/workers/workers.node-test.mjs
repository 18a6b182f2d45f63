// Cloudflare Workers: wsport in real workerd, through miniflare, driven from Node over real sockets.
// Run by `npm test` (its Node phase), or alone with: node --test tests/workers/workers.node-test.mjs
// (named so that `deno test` and `bun test`, which do not need to run it twice, leave it alone).
//
// 1. Bundles examples/cloudflare/worker.ts with esbuild (platform "neutral") and fails on any Node
//    built-in, hono or ioredis in the bundle.
// 2. Runs the bundle in workerd with the Durable Object class ChatRoom bound as ROOMS, at the
//    compatibility date of examples/cloudflare/wrangler.toml: echo, 426, 401, 1009, room chat and
//    isolation, publish from plain HTTP, and hibernation (the room's object is evicted after 10 s
//    idle and a new instance serves the same sockets).
// 3. Runs tests/workers/fixture_worker.ts at an old compatibility date (workerd neither answers
//    close frames itself nor defaults binaryType to "blob" there): the connection API of a
//    workersFetch handler and the close semantics of a WebSocketRoom.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { Miniflare } from "miniflare";
import WebSocket from "ws";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const TEST_TIMEOUT_MS = 60_000;
const MESSAGE_TIMEOUT_MS = 10_000;
/** workerd evicts an idle Durable Object after 10 s (src/workerd/server/server.c++). */
const HIBERNATION_WAIT_MS = 13_000;
/** A compatibility date before `websocket_standard_binary_type` and `web_socket_auto_reply_to_close`. */
const OLD_COMPATIBILITY_DATE = "2024-09-01";

const wranglerToml = readFileSync(join(root, "examples/cloudflare/wrangler.toml"), "utf8");
const COMPATIBILITY_DATE = /^compatibility_date\s*=\s*"([\d-]+)"/m.exec(wranglerToml)[1];

const NODE_BUILTINS = new Set(builtinModules.filter((name) => !name.startsWith("_")));
const FORBIDDEN_PACKAGES = /(^|\/)node_modules\/(hono|ioredis)\//;

/** Bundles `entry` to one ES module as Workers would; throws naming any Node built-in it imports. */
async function bundle(entry) {
  const nodeImports = [];
  const result = await esbuild.build({
    entryPoints: [join(root, entry)],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    write: false,
    metafile: true,
    logLevel: "silent",
    plugins: [{
      name: "no-node-builtins",
      setup(build) {
        build.onResolve({ filter: /.*/ }, (args) => {
          const bare = args.path.replace(/^node:/, "").split("/")[0];
          if (args.path.startsWith("node:") || NODE_BUILTINS.has(bare)) {
            nodeImports.push(`${args.path} (imported by ${args.importer.replace(root + "/", "")})`);
            return { path: args.path, external: true };
          }
          return undefined;
        });
      },
    }],
  });
  assert.deepEqual(nodeImports, [], `${entry} imports Node built-ins`);
  const inputs = Object.keys(result.metafile.inputs);
  assert.deepEqual(
    inputs.filter((input) => FORBIDDEN_PACKAGES.test(input)),
    [],
    `${entry} bundles hono or ioredis`,
  );
  const code = result.outputFiles[0].text;
  assert.doesNotMatch(
    code,
    /\bfrom\s*["']node:|\brequire\(/,
    "the bundle must not import or require anything",
  );
  return { code, inputs };
}

const servers = [];
const clients = new Set();

after(async () => {
  for (const client of clients) client.terminate();
  for (const server of servers) await server.dispose();
});

/** Starts workerd with one module Worker and its Durable Object class; resolves with base URLs. */
async function startWorker(code, className, compatibilityDate) {
  const mf = new Miniflare({
    modules: true,
    script: code,
    compatibilityDate,
    durableObjects: { ROOMS: className },
    host: "127.0.0.1",
    port: 0,
  });
  servers.push(mf);
  const url = await mf.ready;
  const http = url.href.replace(/\/$/, "");
  return { mf, http, ws: http.replace(/^http/, "ws") };
}

/** `promise`, or a rejection naming `what` after `ms`. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A `ws` client that queues messages; rejects with the HTTP status if the upgrade is refused,
 * and with the error if the connection fails. Every wait (open, `next()`, `closed`) has a deadline.
 */
function connect(url, { protocols, headers } = {}) {
  const socket = new WebSocket(url, protocols, { headers });
  clients.add(socket);
  const messages = [];
  const waiters = [];
  let upgradeHeaders;
  socket.on("upgrade", (response) => (upgradeHeaders = response.headers));
  socket.on("message", (data, isBinary) => {
    const message = isBinary ? new Uint8Array(data) : data.toString();
    const waiter = waiters.shift();
    if (waiter) waiter(message);
    else messages.push(message);
  });
  const closed = new Promise((resolve) => {
    socket.on("close", (code, reason) => {
      clients.delete(socket);
      resolve({ code, reason: reason.toString() });
    });
  });
  const client = {
    socket,
    /** The close code and reason; rejects if the close takes over MESSAGE_TIMEOUT_MS from now. */
    get closed() {
      return within(closed, MESSAGE_TIMEOUT_MS, "the client's close");
    },
    get protocol() {
      return socket.protocol;
    },
    get headers() {
      return upgradeHeaders;
    },
    send: (data) => socket.send(data),
    close: (code, reason) => socket.close(code, reason),
    /** The next message, or a rejection after `ms`. */
    next(ms = MESSAGE_TIMEOUT_MS) {
      if (messages.length > 0) return Promise.resolve(messages.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no message within ${ms} ms`));
        }, ms);
        const waiter = (message) => {
          clearTimeout(timer);
          resolve(message);
        };
        waiters.push(waiter);
      });
    },
    /** Resolves with no message if none arrives within `ms`, else fails. */
    async nothingWithin(ms) {
      await new Promise((resolve) => setTimeout(resolve, ms));
      assert.deepEqual(messages, [], "expected no message");
    },
  };
  const opened = new Promise((resolve, reject) => {
    socket.once("open", () => resolve(client));
    socket.once("unexpected-response", (_request, response) => {
      response.resume();
      clients.delete(socket);
      reject(
        Object.assign(new Error(`upgrade refused: ${response.statusCode}`), { status: response.statusCode }),
      );
    });
    // Before the open, an error fails the connect; after it, the close event says what happened.
    socket.on("error", (error) => reject(error));
  });
  return within(opened, MESSAGE_TIMEOUT_MS, `the upgrade of ${url}`);
}

/** The fixture's counters (one server for every fixture test: compare before and after). */
async function fixtureCounters(http) {
  return (await (await fetch(`${http}/log`)).json()).counters;
}

/** The status of a refused upgrade (fails if the upgrade succeeds). */
async function refusedStatus(url, options) {
  try {
    const client = await connect(url, options);
    client.close();
  } catch (error) {
    if (error.status) return error.status;
    throw error;
  }
  assert.fail(`${url} was upgraded`);
}

let example;
let fixture;

async function exampleWorker() {
  example ??= bundle("examples/cloudflare/worker.ts").then(({ code }) =>
    startWorker(code, "ChatRoom", COMPATIBILITY_DATE)
  );
  return await example;
}

async function fixtureWorker() {
  fixture ??= bundle("tests/workers/fixture_worker.ts").then(({ code }) =>
    startWorker(code, "TestRoom", OLD_COMPATIBILITY_DATE)
  );
  return await fixture;
}

test("the workers example bundles to one ES module without Node built-ins, hono or ioredis", async () => {
  const { code, inputs } = await bundle("examples/cloudflare/worker.ts");
  assert.ok(inputs.includes("src/workers/adapter.ts"));
  assert.ok(inputs.every((input) => !input.startsWith("node_modules/")), `npm packages bundled: ${inputs}`);
  assert.match(code, /export\s*\{[^}]*ChatRoom/);
});

test(
  "workers example: GET / answers 200, plain HTTP on /ws gets 426",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { http } = await exampleWorker();
    const home = await fetch(`${http}/`);
    assert.equal(home.status, 200);
    await home.text();
    const plain = await fetch(`${http}/ws`);
    assert.equal(plain.status, 426);
    // workerd drops the hop-by-hop `Upgrade: websocket` header the core adds to a 426; the body says it.
    assert.match(await plain.text(), /426 Upgrade Required/);
  },
);

test(
  "workers example: /ws echoes text as text and binary as binary",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { ws } = await exampleWorker();
    const client = await connect(`${ws}/ws`);
    client.send("hello workers");
    assert.equal(await client.next(), "hello workers");
    client.send(new Uint8Array([0, 1, 2, 255]));
    assert.deepEqual(await client.next(), new Uint8Array([0, 1, 2, 255]));
    client.send("é€😀");
    assert.equal(await client.next(), "é€😀");
    client.close(1000, "done");
    assert.deepEqual(await client.closed, { code: 1000, reason: "done" });
  },
);

test(
  "workers example: processRequest answers 401 without the token",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { ws } = await exampleWorker();
    assert.equal(await refusedStatus(`${ws}/private/ws`), 401);
    assert.equal(await refusedStatus(`${ws}/private/ws?token=wrong`), 401);
    const client = await connect(`${ws}/private/ws?token=let-me-in`);
    client.send("in");
    assert.equal(await client.next(), "in");
    client.close();
    await client.closed;
  },
);

test(
  "workers example: a message over maxMessageSize closes with 1009",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { ws } = await exampleWorker();
    const client = await connect(`${ws}/ws`);
    client.send("x".repeat(64 * 1024)); // at the limit: served
    assert.equal((await client.next()).length, 64 * 1024);
    client.send(new Uint8Array(64 * 1024 + 1));
    assert.deepEqual(await client.closed, { code: 1009, reason: "message too big" });
  },
);

test("workers example: room chat reaches every client of the room and no other room", {
  timeout: TEST_TIMEOUT_MS,
}, async () => {
  const { ws } = await exampleWorker();
  const ann = await connect(`${ws}/rooms/blue?name=ann`);
  const bob = await connect(`${ws}/rooms/blue?name=bob`);
  const cat = await connect(`${ws}/rooms/green?name=cat`);
  ann.send("hi blue");
  assert.equal(await ann.next(), "hi blue");
  assert.equal(await bob.next(), "hi blue");
  bob.send("hi from bob");
  assert.equal(await ann.next(), "hi from bob");
  assert.equal(await bob.next(), "hi from bob");
  cat.send("hi green");
  assert.equal(await cat.next(), "hi green");
  await ann.nothingWithin(300);
  await bob.nothingWithin(0);
  for (const client of [ann, bob, cat]) client.close(1000);
  for (const client of [ann, bob, cat]) assert.equal((await client.closed).code, 1000);
});

test("workers example: POST /rooms/:room/publish reaches the room's clients from plain HTTP", {
  timeout: TEST_TIMEOUT_MS,
}, async () => {
  const { http, ws } = await exampleWorker();
  const ann = await connect(`${ws}/rooms/news?name=ann`);
  const bob = await connect(`${ws}/rooms/news?name=bob`);
  const other = await connect(`${ws}/rooms/sports?name=cat`);
  const response = await fetch(`${http}/rooms/news/publish`, {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: "extra edition",
  });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { delivered: 2, skipped: 0 });
  assert.equal(await ann.next(), "extra edition");
  assert.equal(await bob.next(), "extra edition");
  const binary = await fetch(`${http}/rooms/news/publish`, { method: "POST", body: new Uint8Array([7, 8]) });
  assert.deepEqual(await binary.json(), { delivered: 2, skipped: 0 });
  assert.deepEqual(await ann.next(), new Uint8Array([7, 8]));
  assert.deepEqual(await bob.next(), new Uint8Array([7, 8]));
  await other.nothingWithin(300);
  for (const client of [ann, bob, other]) client.close(1000);
  for (const client of [ann, bob, other]) await client.closed;
});

test("workers example: a room keeps serving its sockets after its object is evicted (hibernation)", {
  timeout: TEST_TIMEOUT_MS,
}, async () => {
  const { http, ws } = await exampleWorker();
  const info = async () => await (await fetch(`${http}/rooms/sleepy/info`)).json();
  const ann = await connect(`${ws}/rooms/sleepy?name=ann`);
  const bob = await connect(`${ws}/rooms/sleepy?name=bob`);
  ann.send("before");
  assert.equal(await ann.next(), "before");
  assert.equal(await bob.next(), "before");
  const awake = await info();
  assert.equal((await info()).instance, awake.instance, "the instance id is stable while the object lives");
  assert.deepEqual(awake.connections.map((c) => c.name).sort(), ["ann", "bob"]);

  // No traffic to the room: workerd evicts the object and hibernates its sockets.
  await new Promise((resolve) => setTimeout(resolve, HIBERNATION_WAIT_MS));

  ann.send("after hibernation"); // wakes a new instance through webSocketMessage
  assert.equal(await ann.next(), "after hibernation");
  assert.equal(await bob.next(), "after hibernation");
  const woken = await info();
  assert.notEqual(woken.instance, awake.instance, "a new instance after eviction");
  // The same sockets, with their ids and data, rebuilt from their attachments.
  const byId = (connections) => connections.map(({ id, name }) => `${id}:${name}`).sort();
  assert.deepEqual(byId(woken.connections), byId(awake.connections));
  bob.send("still here");
  assert.equal(await ann.next(), "still here");
  assert.equal(await bob.next(), "still here");
  ann.close(1000);
  bob.close(1000);
  await ann.closed;
  await bob.closed;
});

test(
  "workers fixture: the connection API of a workersFetch handler",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { http, ws } = await fixtureWorker();
    const client = await connect(`${ws}/api?user=ann`, {
      protocols: ["v1", "v2"],
      headers: { "cf-connecting-ip": "203.0.113.7" },
    });
    assert.equal(client.protocol, "v2", "the server's first choice among those offered");
    assert.equal(client.headers["x-served-by"], "wsport");
    assert.deepEqual(JSON.parse(await client.next()), {
      protocol: "v2",
      remoteAddress: { hostname: "203.0.113.7", port: 0 },
      data: { user: "ann" },
      path: "/api",
    });
    client.send("abc");
    assert.equal(await client.next(), "ABC");
    client.send(new Uint8Array([1, 2, 3]));
    assert.deepEqual(await client.next(), new Uint8Array([1, 2, 3]));
    client.send("close-me");
    assert.deepEqual(await client.closed, { code: 4000, reason: "asked" });
    const { log } = await (await fetch(`${http}/log`)).json();
    assert.deepEqual(log.filter((entry) => entry.id === "ann"), [
      { id: "ann", event: "abort" },
      { id: "ann", event: "closed", code: 4000, reason: "asked" },
    ]);
  },
);

test(
  "workers fixture: handshake refusals (426, 401, 403) are the core's",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { http, ws } = await fixtureWorker();
    const before = await fixtureCounters(http);
    const plain = await fetch(`${http}/api?user=x`);
    assert.equal(plain.status, 426);
    await plain.text();
    assert.equal(await refusedStatus(`${ws}/api`), 401);
    assert.equal(
      await refusedStatus(`${ws}/api?user=x`, { headers: { origin: "https://evil.example" } }),
      403,
    );
    const allowed = await connect(`${ws}/api?user=ok`, { headers: { origin: "https://ok.example" } });
    assert.equal(allowed.protocol, "");
    await allowed.next();
    allowed.close(1000);
    await allowed.closed;
    const after = await fixtureCounters(http);
    const delta = (key) => after.refused[key] - before.refused[key];
    assert.equal(delta("upgradeRequired"), 1);
    assert.equal(delta("processRequest"), 1);
    assert.equal(delta("forbiddenOrigin"), 1);
    assert.equal(after.accepted - before.accepted, 1);
  },
);

test("workers fixture: peer close, handler error (1011) and 1009 in a workersFetch handler", {
  timeout: TEST_TIMEOUT_MS,
}, async () => {
  const { http, ws } = await fixtureWorker();
  const before = await fixtureCounters(http);
  const cat = await connect(`${ws}/api?user=cat`);
  await cat.next();
  cat.close(4100, "bye");
  assert.deepEqual(await cat.closed, { code: 4100, reason: "bye" }, "the Worker answered the close frame");
  const dan = await connect(`${ws}/api?user=dan`);
  await dan.next();
  dan.send("throw");
  assert.equal((await dan.closed).code, 1011);
  const eve = await connect(`${ws}/api?user=eve`);
  await eve.next();
  eve.send("y".repeat(1025));
  assert.deepEqual(await eve.closed, { code: 1009, reason: "message too big" });
  let body;
  for (let attempt = 0; attempt < 50; attempt++) {
    body = await (await fetch(`${http}/log`)).json();
    if (body.log.some((entry) => entry.id === "cat" && entry.event === "closed")) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const entries = (id) => body.log.filter((entry) => entry.id === id).map(({ id: _, ...rest }) => rest);
  assert.deepEqual(entries("cat"), [
    { event: "abort" },
    { event: "recv rejected", name: "ConnectionClosedError", code: 4100 },
    { event: "closed", code: 4100, reason: "bye" },
  ]);
  assert.deepEqual(entries("dan").filter((entry) => entry.event === "error"), [
    { event: "error", message: "Error: boom" },
  ]);
  assert.equal(body.counters.closed.messageTooBig - before.closed.messageTooBig, 1);
  assert.equal(body.counters.closed.handlerError - before.closed.handlerError, 1);
});

test("workers fixture: room close semantics (peer close, kick, 1011, 1009, 401)", {
  timeout: TEST_TIMEOUT_MS,
}, async () => {
  const { http, ws } = await fixtureWorker();
  assert.equal(await refusedStatus(`${ws}/room?deny=1`), 401);
  const plain = await fetch(`${http}/room`);
  assert.equal(plain.status, 426);
  await plain.text();

  const r1 = await connect(`${ws}/room?name=r1`, { protocols: ["chat"] });
  assert.equal(r1.protocol, "chat");
  assert.equal(await r1.next(), "welcome r1", "onConnect's message arrives first");
  r1.send("kick");
  assert.deepEqual(await r1.closed, { code: 4002, reason: "kicked" });

  const r2 = await connect(`${ws}/room?name=r2`);
  await r2.next();
  r2.send("throw");
  assert.equal((await r2.closed).code, 1011);

  const r3 = await connect(`${ws}/room?name=r3`);
  await r3.next();
  r3.close(4001, "bye");
  assert.deepEqual(await r3.closed, { code: 4001, reason: "bye" }, "the room answered the close frame");

  const r4 = await connect(`${ws}/room?name=r4`);
  await r4.next();
  r4.send(new Uint8Array(1025));
  assert.deepEqual(await r4.closed, { code: 1009, reason: "message too big" });

  let events;
  for (let attempt = 0; attempt < 50; attempt++) {
    events = await (await fetch(`${http}/room/log`)).json();
    if (events.filter((event) => event.event === "close").length >= 4) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.deepEqual(events, [
    { event: "close", name: "r1", code: 4002, reason: "kicked", state: "closed" },
    { event: "error", name: "r2", message: "Error: room boom" },
    { event: "close", name: "r2", code: 1011, reason: "internal error", state: "closed" },
    { event: "close", name: "r3", code: 4001, reason: "bye", state: "closed" },
    { event: "close", name: "r4", code: 1009, reason: "message too big", state: "closed" },
  ]);
});

test("workers fixture: room topics, publish except the sender, and data stored with the socket", {
  timeout: TEST_TIMEOUT_MS,
}, async () => {
  const { ws } = await fixtureWorker();
  const t1 = await connect(`${ws}/room?name=t1&topic=red`);
  const t2 = await connect(`${ws}/room?name=t2&topic=red&topic=blue`);
  const t3 = await connect(`${ws}/room?name=t3&topic=blue`);
  for (const client of [t1, t2, t3]) await client.next(); // welcome
  t1.send("topic:red");
  assert.equal(await t2.next(), "topic:red");
  assert.deepEqual(JSON.parse(await t1.next()), { delivered: 1, skipped: 0 });
  await t3.nothingWithin(300);
  t3.send("topic:blue");
  assert.equal(await t2.next(), "topic:blue");
  assert.deepEqual(JSON.parse(await t3.next()), { delivered: 1, skipped: 0 });
  await t1.nothingWithin(0);
  t1.send("everyone");
  for (const client of [t1, t2, t3]) assert.equal(await client.next(), "everyone");
  t1.send("rename");
  assert.equal(await t1.next(), "t12");
  for (const client of [t1, t2, t3]) client.close(1000);
  for (const client of [t1, t2, t3]) await client.closed;
});

test("workers fixture: per-request response headers (context.headers) in a workersFetch handler and a room", {
  timeout: TEST_TIMEOUT_MS,
}, async () => {
  const { ws } = await fixtureWorker();
  const sorted = (pairs) => pairs.sort((a, b) => (a[0] + a[1]).localeCompare(b[0] + b[1]));
  // Two handshakes at once: each gets its own headers, beside the static ones.
  const [a, b] = await Promise.all([connect(`${ws}/headers?id=a1`), connect(`${ws}/headers?id=b2`)]);
  for (const [client, id] of [[a, "a1"], [b, "b2"]]) {
    assert.equal(client.headers["x-request-id"], id);
    assert.equal(client.headers["x-served-by"], "wsport");
    assert.deepEqual(client.headers["set-cookie"].sort(), [`session=${id}; HttpOnly`, "theme=dark"]);
    assert.deepEqual(sorted(JSON.parse(await client.next())), [
      ["set-cookie", `session=${id}; HttpOnly`],
      ["set-cookie", "theme=dark"],
      ["x-request-id", id],
      ["x-served-by", "wsport"],
    ], "ws.responseHeaders");
    client.close(1000);
    await client.closed;
  }

  // A room: the 101 carries them, and the connection shows them (kept in its attachment).
  const member = await connect(`${ws}/room?name=h1&id=r1`);
  assert.equal(member.headers["x-request-id"], "r1");
  assert.equal(member.headers["x-room"], "test");
  assert.deepEqual(member.headers["set-cookie"], ["room=r1"]);
  assert.equal(await member.next(), "welcome h1");
  member.send("headers");
  assert.deepEqual(sorted(JSON.parse(await member.next())), [
    ["set-cookie", "room=r1"],
    ["x-request-id", "r1"],
    ["x-room", "test"],
  ]);
  // One without: the static header only, and nothing stored with its socket.
  const plain = await connect(`${ws}/room?name=h2`);
  assert.equal(plain.headers["x-request-id"], undefined);
  assert.equal(plain.headers["set-cookie"], undefined);
  assert.equal(await plain.next(), "welcome h2");
  plain.send("headers");
  assert.deepEqual(JSON.parse(await plain.next()), [["x-room", "test"]]);
  for (const client of [member, plain]) client.close(1000);
  for (const client of [member, plain]) await client.closed;
});
