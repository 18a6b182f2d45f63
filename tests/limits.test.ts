import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { type Connection, ConnectionClosed, ConnectionClosedError } from "../mod.ts";
import { delay, startNonReader, startServer, TestClient, waitFor, within } from "./helpers.ts";
import { rawRequest, rawWebSocket } from "./raw.ts";
import { engine } from "./runtime.ts";

const isBun = "Bun" in globalThis;

const echo = async (ws: Connection) => {
  for await (const message of ws) await ws.send(message);
};

/** Runs `handler` and records how it ended: "returned" or the error it threw. */
function recordingEcho() {
  const ended = Promise.withResolvers<unknown>();
  const handler = async (ws: Connection) => {
    try {
      await echo(ws);
      ended.resolve("returned");
    } catch (error) {
      ended.resolve(error);
    }
  };
  return { handler, ended: ended.promise };
}

for (const kind of ["text", "binary"] as const) {
  test(`maxMessageSize: an oversized ${kind} message closes with 1009, and others are still served`, async () => {
    const { handler, ended } = recordingEcho();
    await using server = startServer(handler, { maxMessageSize: 1000 });
    const client = await TestClient.open(server.url);
    const fits = kind === "text" ? "x".repeat(1000) : new Uint8Array(1000);
    client.send(fits);
    assert.equal((await client.next()).length, 1000);
    client.send(kind === "text" ? "x".repeat(1001) : new Uint8Array(1001));
    assert.equal((await client.closed).code, 1009);
    const error = await within(ended, 5000, "handler end");
    assert.ok(error instanceof ConnectionClosedError, String(error));
    assert.equal((error as ConnectionClosed).code, 1009);
    assert.equal(server.counters.closed.messageTooBig, 1);
    const other = await TestClient.open(server.url);
    other.send("still serving");
    assert.equal(await other.next(), "still serving");
    other.close();
  });
}

test("maxMessageSize counts UTF-8 bytes, not characters", async () => {
  await using server = startServer(echo, { maxMessageSize: 1000 });
  const client = await TestClient.open(server.url);
  client.send("€".repeat(333)); // 999 bytes
  assert.equal(await client.next(), "€".repeat(333));
  client.send("€".repeat(400)); // 400 characters, 1200 bytes
  assert.equal((await client.closed).code, 1009);
});

test("maxQueue: past maxQueue × maxMessageSize bytes the connection closes with 1013; queued messages stay readable", async (t) => {
  if (engine === "ws") return t.skip("the ws engine pauses reading instead (tests/engine_limits.test.ts)");
  const release = Promise.withResolvers<void>();
  const outcome = Promise.withResolvers<{ read: string[]; error: unknown }>();
  await using server = startServer(async (ws) => {
    await release.promise; // a handler that stops reading
    const read: string[] = [];
    try {
      for await (const message of ws) read.push((message as string).slice(0, 2));
      outcome.resolve({ read, error: undefined });
    } catch (error) {
      outcome.resolve({ read, error });
    }
  }, { maxQueue: 4, maxMessageSize: 1000 }); // a budget of 4,000 bytes
  const client = await TestClient.open(server.url);
  // Each message counts 900 + 64 bytes: four fit, the fifth does not. (A peer that goes on
  // sending after the close frame makes Deno drop TCP, so it would see 1006: see the README.)
  for (let i = 0; i < 5; i++) client.send(`m${i}`.padEnd(900, "."));
  assert.equal((await client.closed).code, 1013);
  release.resolve();
  const { read, error } = await within(outcome.promise, 5000, "handler end");
  assert.deepEqual(read, ["m0", "m1", "m2", "m3"]);
  assert.ok(error instanceof ConnectionClosedError);
  assert.equal((error as ConnectionClosed).code, 1013);
  assert.equal(server.counters.closed.queueOverflow, 1);
  assert.ok(server.counters.droppedMessages >= 1);
});

test("maxQueue: a client pipelining many small messages to a slow handler is not cut off", async () => {
  await using server = startServer(async (ws) => {
    for await (const message of ws) {
      await delay(1); // slower than the client sends
      await ws.send(message);
    }
  }); // defaults: maxQueue 16, maxMessageSize 1 MiB
  const client = await TestClient.open(server.url);
  for (let i = 0; i < 200; i++) client.send(`small ${i}`);
  for (let i = 0; i < 200; i++) assert.equal(await client.next(), `small ${i}`);
  assert.equal(server.counters.closed.queueOverflow, 0);
  client.close();
});

test("writeLimit: send() waits while a peer does not read, and rejects once it is gone", async () => {
  const chunk = new Uint8Array(64 * 1024);
  const state = { resolvedSends: 0, pending: undefined as Promise<void> | undefined, buffered: 0 };
  const started = Promise.withResolvers<Connection>();
  await using server = startServer(async (ws) => {
    started.resolve(ws);
    while (true) {
      const sent = ws.send(chunk);
      state.pending = sent;
      await sent;
      state.resolvedSends++;
      state.buffered = Math.max(state.buffered, ws.bufferedAmount);
    }
  }, { writeLimit: { high: 64 * 1024, low: 16 * 1024 } });
  const peer = await startNonReader(server.addr.port); // never reads: kernel buffers fill, then the runtime's
  await started.promise;
  // Wait until sends stop resolving: the writer is held by backpressure.
  let last = -1;
  while (last !== state.resolvedSends) {
    last = state.resolvedSends;
    await delay(300);
  }
  const sentBytes = state.resolvedSends * chunk.byteLength;
  assert.ok(sentBytes < 64 * 1024 * 1024, `sent ${sentBytes} bytes to a client that reads nothing`);
  const pending = state.pending!;
  let settled = false;
  pending.then(() => settled = true, () => settled = true);
  await delay(200);
  assert.equal(settled, false, "the last send() is still waiting for the buffer to drain");
  await peer.kill();
  await assert.rejects(within(pending, 15_000, "pending send"), ConnectionClosed);
});

test("firehose to a client that never reads: memory stays bounded and other clients are echoed promptly", async () => {
  const chunk = new Uint8Array(16 * 1024).fill(7);
  let sends = 0;
  await using server = startServer(async (ws) => {
    if (ws.url.pathname === "/firehose") {
      while (true) {
        await ws.send(chunk);
        sends++;
      }
    }
    await echo(ws);
  });
  const before = process.memoryUsage().rss;
  const slow = await startNonReader(server.addr.port, "/firehose");
  const other = await TestClient.open(server.url);
  const latencies: number[] = [];
  for (let i = 0; i < 20; i++) {
    const start = performance.now();
    other.send(`ping ${i}`);
    assert.equal(await other.next(2000), `ping ${i}`);
    latencies.push(performance.now() - start);
    await delay(50);
  }
  const growth = (process.memoryUsage().rss - before) / 1024 / 1024;
  latencies.sort((a, b) => a - b);
  console.log(
    `firehose: ${sends} sends held, RSS +${growth.toFixed(1)} MiB, echo p50 ${
      latencies[10].toFixed(1)
    } ms, max ${latencies[19].toFixed(1)} ms`,
  );
  assert.ok(latencies[19] < 250, `echo took ${latencies[19]} ms while a firehose ran`);
  assert.ok(growth < 64, `RSS grew ${growth.toFixed(1)} MiB`);
  assert.ok(sends * chunk.byteLength < 32 * 1024 * 1024, `${sends} chunks went into buffers`);
  await slow.kill();
  other.close();
});

test(
  "keepalive: a peer that never answers pings is closed (1006) after idleTimeout",
  { timeout: 20_000 },
  async () => {
    const { handler, ended } = recordingEcho();
    await using server = startServer(handler, { idleTimeout: 1000 });
    const socket = await rawWebSocket(server.addr.port);
    const started = performance.now();
    const error = await within(ended, 15_000, "idle close");
    const elapsed = performance.now() - started;
    assert.ok(error instanceof ConnectionClosedError, String(error));
    assert.equal((error as ConnectionClosed).code, 1006);
    assert.equal(server.counters.closed.idleTimeout, 1);
    // Deno pings at half the timeout; Bun's uWebSockets checks idle sockets on a 4-second tick.
    assert.ok(elapsed < (isBun ? 12_000 : 3_000), `closed after ${elapsed.toFixed(0)} ms`);
    await waitFor(() => server.connections.size === 0, 2000, "registry cleared");
    socket.destroy();
  },
);

test("keepalive: a peer that answers pings stays open past idleTimeout", { timeout: 20_000 }, async () => {
  await using server = startServer(echo, { idleTimeout: 1000 });
  const client = await TestClient.open(server.url);
  await delay(isBun ? 9_000 : 2_500);
  client.send("alive");
  assert.equal(await client.next(), "alive");
  assert.equal(server.counters.closed.idleTimeout, 0);
  client.close();
});

test("maxConnections: past the bound upgrades get 503 before upgrading", async () => {
  await using server = startServer(echo, { maxConnections: 2 });
  const a = await TestClient.open(server.url);
  const b = await TestClient.open(server.url);
  const refused = await rawRequest(server.addr.port);
  assert.equal(refused.status, 503);
  refused.socket.destroy();
  assert.equal(server.counters.refused.overCapacity, 1);
  a.close();
  await waitFor(() => server.connections.size === 1, 5000, "one connection");
  const c = await TestClient.open(server.url);
  c.send("room again");
  assert.equal(await c.next(), "room again");
  b.close();
  c.close();
});

test("closeTimeout: a peer that never answers the close frame is dropped after it", async () => {
  const closed = Promise.withResolvers<unknown>();
  await using server = startServer(async (ws) => {
    await ws.close(1000, "bye");
    closed.resolve(await ws.closed);
  }, { closeTimeout: 300 });
  const socket = await rawWebSocket(server.addr.port);
  const start = performance.now();
  const info = await within(closed.promise, 5000, "close after timeout");
  const elapsed = performance.now() - start;
  if (isBun) {
    // Bun sends the close frame and shuts TCP down at once, without waiting for the answer.
    assert.deepEqual(info, { code: 1000, reason: "bye" });
    assert.equal(server.counters.closed.closeTimeout, 0);
  } else {
    assert.equal((info as { code: number }).code, 1006);
    assert.ok(elapsed >= 250 && elapsed < 2000, `dropped after ${elapsed.toFixed(0)} ms`);
    assert.equal(server.counters.closed.closeTimeout, 1);
  }
  assert.equal(server.connections.size, 0);
  socket.destroy();
});

test("limits reject nonsense values with InvalidOption", () => {
  assert.throws(() => startServer(echo, { maxQueue: 0 }), { name: "InvalidOption" });
  assert.throws(() => startServer(echo, { writeLimit: { high: 10, low: 20 } }), { name: "InvalidOption" });
  assert.throws(() => startServer(echo, { maxMessageSize: Number.NaN }), { name: "InvalidOption" });
});
