import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { spawn } from "node:child_process";
import { broadcast, type Connection, PublishError } from "../mod.ts";
import { redisBackend } from "../redis.ts";
import { delay, startNonReader, startServer, TestClient, waitFor, within } from "./helpers.ts";
import { freePort, RedisServer } from "./redis_server.ts";
import { runArgs, runtime } from "./runtime.ts";

/** Repeats `send` until `client` receives a message that `match`es (bounded). */
async function untilHeard(
  send: () => unknown,
  client: TestClient,
  match: (message: string | Uint8Array) => boolean,
): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    send();
    const heard = await client.next(300).then(match, () => false);
    if (heard) return;
  }
  throw new Error("the message never got through");
}

/** Reads from `client` until a message `match`es. */
async function skipUntil(
  client: TestClient,
  match: (message: string | Uint8Array) => boolean,
): Promise<void> {
  while (!match(await client.next())) { /* skip */ }
}

/** A room handler: subscribes to the room in the path; publishes what it receives there. */
const room = async (ws: Connection) => {
  const topic = `room:${ws.url.pathname.split("/").at(-1)}`;
  ws.subscribe(topic);
  for await (const message of ws) ws.publish(topic, message);
};

test("broadcast reaches 200 clients without awaiting any", async () => {
  await using server = startServer(async (ws) => {
    await ws.closed;
  });
  const clients = await Promise.all(Array.from({ length: 200 }, () => TestClient.open(server.url)));
  await waitFor(() => server.connections.size === 200, 5000, "200 connections");
  const result = broadcast(server.connections, "to everyone");
  assert.deepEqual(result, { sent: 200, skipped: 0 });
  const received = await Promise.all(clients.map((client) => client.next()));
  assert.ok(received.every((message) => message === "to everyone"));
  for (const client of clients) client.close();
});

test("broadcast skips a slow client over its write limit and still reaches the others", async () => {
  const filled = Promise.withResolvers<void>();
  await using server = startServer(async (ws) => {
    if (ws.url.pathname === "/slow") {
      const chunk = new Uint8Array(64 * 1024);
      // Fill the slow peer's buffers until wsport considers it over the write limit (bounded:
      // a trySend() that ignored the limit would otherwise fill memory).
      for (let i = 0; i < 1024 && ws.trySend(chunk); i++) await delay(1);
      filled.resolve();
    }
    await ws.closed;
  });
  const slow = await startNonReader(server.addr.port, "/slow");
  try {
    await within(filled.promise, 10_000, "slow peer to fill up");
    const fast = await Promise.all(Array.from({ length: 5 }, () => TestClient.open(server.url)));
    await waitFor(() => server.connections.size === 6, 5000, "6 connections");
    const result = broadcast(server.connections, "hello");
    assert.deepEqual(result, { sent: 5, skipped: 1 });
    for (const client of fast) assert.equal(await client.next(), "hello");
    for (const client of fast) client.close();
  } finally {
    await slow.kill(); // (a peer that reads nothing would hold the server's close for closeTimeout)
  }
});

test("topics: subscribe, publish, unsubscribe, and unsubscribe on close", async () => {
  const seen = Promise.withResolvers<Connection>();
  await using server = startServer(async (ws) => {
    ws.subscribe("news");
    ws.subscribe("sports");
    seen.resolve(ws);
    for await (const message of ws) if (message === "leave sports") ws.unsubscribe("sports");
  });
  const client = await TestClient.open(server.url);
  const ws = await within(seen.promise, 5000, "the handler");
  assert.deepEqual([...ws.topics].sort(), ["news", "sports"]);
  assert.equal(server.subscribers("news"), 1);
  assert.deepEqual(await server.publish("news", "headline"), { delivered: 1, skipped: 0 });
  assert.equal(await client.next(), "headline");
  client.send("leave sports");
  await waitFor(() => server.subscribers("sports") === 0, 5000, "unsubscribe");
  assert.deepEqual([...ws.topics], ["news"]);
  assert.deepEqual(await server.publish("sports", "score"), { delivered: 0, skipped: 0 });
  await server.publish("news", "binary follows");
  await server.publish("news", new Uint8Array([1, 2, 3]));
  assert.equal(await client.next(), "binary follows");
  assert.deepEqual(await client.next(), new Uint8Array([1, 2, 3]));
  client.close();
  await waitFor(() => server.subscribers("news") === 0, 5000, "unsubscribe on close");
  assert.equal(ws.topics.size, 0);
});

test("rooms are isolated, and the sender gets its own message unless exceptSelf", async () => {
  await using server = startServer(async (ws) => {
    const topic = `room:${ws.url.pathname.split("/").at(-1)}`;
    ws.subscribe(topic);
    for await (const message of ws) {
      ws.publish(topic, message, { exceptSelf: ws.url.searchParams.has("quiet") });
    }
  });
  const a1 = await TestClient.open(`${server.url}/rooms/a`);
  const a2 = await TestClient.open(`${server.url}/rooms/a?quiet`);
  const b1 = await TestClient.open(`${server.url}/rooms/b`);
  await waitFor(() => server.subscribers("room:a") === 2 && server.subscribers("room:b") === 1, 5000, "subs");
  a1.send("for room a");
  assert.equal(await a1.next(), "for room a");
  assert.equal(await a2.next(), "for room a");
  a2.send("from the quiet one");
  assert.equal(await a1.next(), "from the quiet one");
  b1.send("for room b");
  assert.equal(await b1.next(), "for room b");
  await delay(100);
  await assert.rejects(a2.next(100), /no message/, "a2 got neither its own message nor room b's");
  for (const client of [a1, a2, b1]) client.close();
});

test("per-user delivery: a user:<id> topic reaches every connection of that user", async () => {
  await using server = startServer<{ user: string }>(async (ws) => {
    ws.subscribe(`user:${ws.data.user}`);
    await ws.closed;
  }, {
    processRequest(request, context) {
      context.data = { user: new URL(request.url).searchParams.get("user")! };
    },
  });
  const tab1 = await TestClient.open(`${server.url}/?user=ada`);
  const tab2 = await TestClient.open(`${server.url}/?user=ada`);
  const other = await TestClient.open(`${server.url}/?user=bob`);
  await waitFor(() => server.subscribers("user:ada") === 2, 5000, "ada's two connections");
  assert.equal((await server.publish("user:ada", "for ada only")).delivered, 2);
  assert.equal(await tab1.next(), "for ada only");
  assert.equal(await tab2.next(), "for ada only");
  await assert.rejects(other.next(150), /no message/);
  for (const client of [tab1, tab2, other]) client.close();
});

/** Sends `message` to a fixture worker and resolves with its answer (within 5 s). */
function ask<T>(worker: Worker, message: unknown): Promise<T> {
  return within(
    new Promise<T>((resolve) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.postMessage(message);
    }),
    5000,
    `the worker's answer to ${JSON.stringify(message)}`,
  );
}

test("BroadcastChannel backend: a room spans servers in two Workers", {
  timeout: 30_000,
  skip: runtime === "node" ? "Node has no Web Worker" : false,
}, async () => {
  const channel = `wsport-test-${crypto.randomUUID()}`;
  const workers = [0, 1].map(() =>
    new Worker(new URL("./fixtures/bc_worker.ts", import.meta.url).href, { type: "module" })
  );
  try {
    const ports: number[] = [];
    for (const worker of workers) ports.push((await ask<{ port: number }>(worker, { channel })).port);
    const a = await TestClient.open(`ws://127.0.0.1:${ports[0]}/rooms/x`);
    const b = await TestClient.open(`ws://127.0.0.1:${ports[1]}/rooms/x`);
    const other = await TestClient.open(`ws://127.0.0.1:${ports[1]}/rooms/y`);
    // Ready when each handler has subscribed (the channel itself carries every topic).
    const subscribers = async (worker: Worker, topic: string) =>
      (await ask<{ subscribers: number }>(worker, { subscribers: topic })).subscribers;
    const deadline = Date.now() + 5000;
    while (
      await subscribers(workers[0], "room:x") !== 1 || await subscribers(workers[1], "room:x") !== 1 ||
      await subscribers(workers[1], "room:y") !== 1
    ) {
      if (Date.now() > deadline) throw new Error("the handlers did not subscribe within 5000 ms");
      await delay(5);
    }
    a.send("across workers");
    assert.equal(await a.next(), "across workers");
    assert.equal(await b.next(), "across workers");
    b.send(new Uint8Array([4, 2]));
    assert.deepEqual(await a.next(), new Uint8Array([4, 2]));
    assert.deepEqual(await b.next(), new Uint8Array([4, 2]));
    await assert.rejects(other.next(150), /no message/);
    for (const client of [a, b, other]) client.close();
    await Promise.all(workers.map((worker) => ask(worker, "close")));
  } finally {
    for (const worker of workers) worker.terminate();
  }
});

test("Redis backend: server.publish reaches another server; failures are reported, delivery resumes", {
  timeout: 60_000,
}, async () => {
  const redis = await RedisServer.start();
  const errors: unknown[] = [];
  // Each backend's status changes, recorded: "down" once it noticed Redis went away.
  const statuses: string[][] = [[], []];
  const recording = (i: number) => ({ onStatus: (status: string) => void statuses[i].push(status) });
  try {
    await using one = startServer(room, {
      pubsub: redisBackend(redis.url, recording(0)),
      onError: (e) => errors.push(e),
    });
    await using two = startServer(room, {
      pubsub: redisBackend(redis.url, recording(1)),
      onError: (e) => errors.push(e),
    });
    const a = await TestClient.open(`${one.url}/rooms/r`);
    const b = await TestClient.open(`${two.url}/rooms/r`);
    await waitFor(() => one.subscribers("room:r") === 1 && two.subscribers("room:r") === 1, 5000, "subs");
    // SUBSCRIBE reaches Redis asynchronously: publish until the other server hears it.
    await untilHeard(() => one.publish("room:r", "warm-up").catch(() => {}), b, (m) => m === "warm-up");
    await skipUntil(a, (m) => m === "warm-up");
    while (await a.next(100).catch(() => undefined) !== undefined);
    while (await b.next(100).catch(() => undefined) !== undefined);
    await one.publish("room:r", "via redis");
    assert.equal(await a.next(), "via redis");
    assert.equal(await b.next(), "via redis");
    await one.publish("room:r", new Uint8Array([7, 7]));
    assert.deepEqual(await b.next(), new Uint8Array([7, 7]));
    assert.deepEqual(await a.next(), new Uint8Array([7, 7]));

    const failuresBefore = one.counters.pubsub.publishFailures;
    const errorsBefore = errors.length;
    await redis.stop();
    await waitFor(() => statuses[0].includes("down"), 5000, "the backend to notice Redis is gone");
    // Local delivery goes on; the backend failure rejects this publish and is counted and reported.
    const failed = await one.publish("room:r", "redis is down").catch((error) => error);
    assert.ok(failed instanceof PublishError, String(failed));
    assert.equal(failed.local.delivered, 1);
    assert.equal(await a.next(), "redis is down");
    assert.equal(one.counters.pubsub.publishFailures - failuresBefore, 1);
    assert.deepEqual(errors.slice(errorsBefore), [failed]);

    await redis.restart();
    // The backend reconnects and resubscribes by itself.
    const deadline = Date.now() + 20_000;
    let delivered = false;
    while (!delivered && Date.now() < deadline) {
      await one.publish("room:r", "back").catch(() => {});
      delivered = await b.next(500).then((message) => message === "back", () => false);
      if (!delivered) await a.next(100).catch(() => {});
    }
    assert.ok(delivered, "delivery through Redis resumed after the restart");
    a.close();
    b.close();
  } finally {
    await redis.stop();
  }
});

test("Redis: two chat processes form one chat, keep one sender's order, and survive a Redis restart", {
  timeout: 90_000,
}, async () => {
  const redis = await RedisServer.start();
  const chat = new URL("../examples/chat/server.ts", import.meta.url).pathname;
  const processes: ReturnType<typeof spawn>[] = [];
  const logs: string[] = [];
  const startChat = async () => {
    const port = await freePort();
    const args = runArgs(chat);
    const child = spawn(process.execPath, args, {
      env: { ...process.env, HOST: "127.0.0.1", PORT: String(port), REDIS_URL: redis.url },
      stdio: ["ignore", "pipe", "pipe"],
    });
    processes.push(child);
    child.stderr!.on("data", (chunk) => logs.push(`[chat ${port}] ${chunk}`));
    await within(
      new Promise<void>((resolve) =>
        child.stdout!.on("data", (chunk) => String(chunk).includes("chat on") && resolve())
      ),
      15_000,
      "chat server start",
    );
    return port;
  };
  try {
    const [p1, p2] = await Promise.all([startChat(), startChat()]);
    const alice = await TestClient.open(`ws://127.0.0.1:${p1}/rooms/lobby`);
    const bob = await TestClient.open(`ws://127.0.0.1:${p2}/rooms/lobby`);
    const eve = await TestClient.open(`ws://127.0.0.1:${p2}/rooms/other`);
    const text = (m: string | Uint8Array) => JSON.parse(m as string).text;
    await untilHeard(() => alice.send("warm-up"), bob, (m) => text(m) === "warm-up");
    while (await bob.next(200).catch(() => undefined) !== undefined);
    for (let i = 0; i < 50; i++) alice.send(`msg ${i}`);
    await skipUntil(alice, (m) => text(m) === "msg 0");
    for (let i = 1; i < 50; i++) assert.equal(text(await alice.next()), `msg ${i}`);
    for (let i = 0; i < 50; i++) assert.equal(text(await bob.next()), `msg ${i}`);
    await assert.rejects(eve.next(200), /no message/);

    await redis.stop();
    // The room keeps history in Redis: with Redis away the message reaches nobody, and alice is told.
    alice.send("while redis is down");
    assert.deepEqual(JSON.parse(await alice.next() as string), {
      room: "lobby",
      error: "not delivered, try again",
      text: "while redis is down",
    });
    await redis.restart();
    const deadline = Date.now() + 20_000;
    let resumed = false;
    while (!resumed && Date.now() < deadline) {
      alice.send("after restart");
      resumed = await bob.next(500).then(
        (m) => JSON.parse(m as string).text === "after restart",
        () => false,
      );
    }
    assert.ok(resumed, "bob hears alice again after Redis came back");
    for (const child of processes) assert.equal(child.exitCode, null, "chat processes did not crash");
    for (const client of [alice, bob, eve]) client.close();
  } catch (error) {
    console.error(logs.join(""));
    throw error;
  } finally {
    for (const child of processes) child.kill("SIGTERM");
    await redis.stop();
  }
});
