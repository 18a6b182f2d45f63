/**
 * Memory against hostile or hasty peers, per engine: a fragment flood, a
 * client that pipelines faster than its handler reads, and a broadcast to
 * many subscribers. The ws engine (Node; Deno with engine "ws") bounds all three;
 * where an engine cannot, the test says what it does instead.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { Buffer } from "node:buffer";
import type net from "node:net";
import { broadcast, type Connection } from "../mod.ts";
import { delay, startServer, TestClient, waitFor, within } from "./helpers.ts";
import { frame, RawPeer } from "./raw.ts";
import { engine } from "./runtime.ts";

const MiB = 1024 * 1024;

/** node --expose-gc (the Node phase): garbage is collected before RSS is read. */
const collect = (globalThis as { gc?: () => void }).gc;

function rss(): number {
  return process.memoryUsage().rss;
}

const echo = async (ws: Connection) => {
  for await (const message of ws) await ws.send(message);
};

/** Writes `chunks` to `socket` and waits for it to take more, or for `stop` (TCP ended). Returns whether it had to wait. */
async function writeAll(socket: net.Socket, chunks: Uint8Array[], stop: Promise<unknown>): Promise<boolean> {
  socket.cork();
  let ok = true;
  for (const chunk of chunks) ok = socket.write(chunk);
  socket.uncork();
  if (ok) return false;
  await Promise.race([new Promise((resolve) => socket.once("drain", resolve)), stop]);
  return true;
}

/** Echoes one message through `client` and returns the round trip in ms. */
async function echoTime(client: TestClient, text: string): Promise<number> {
  const start = performance.now();
  client.send(text);
  assert.equal(await client.next(2000), text);
  return performance.now() - start;
}

test(
  "fragment flood: a binary message without FIN and endless 1 MiB continuations is closed with 1009 within a few MiB",
  {
    timeout: 60_000,
    skip: engine === "deno"
      ? "Deno's native engine assembles a fragmented message without limit before wsport sees it (README)"
      : false,
  },
  async () => {
    await using server = startServer(echo); // maxMessageSize: 1 MiB
    const other = await TestClient.open(server.url);
    await echoTime(other, "warm up");
    const first = frame(2, new Uint8Array(MiB), { fin: false }); // at the limit: fine by itself
    const continuation = frame(0, new Uint8Array(MiB), { fin: false });
    collect?.();
    const before = rss();
    let peak = before;
    const peer = await RawPeer.open(server.addr.port);
    const ended = peer.end(30_000);
    let sent = 0;
    let tcpEnded = false;
    ended.then(() => tcpEnded = true);
    const latencies: number[] = [];
    await writeAll(peer.socket, [first], ended);
    sent += MiB;
    // A peer would send 600 MiB this way; stop at 64 MiB, far past any bound worth the name.
    while (!tcpEnded && sent < 64 * MiB) {
      await writeAll(peer.socket, [continuation], ended);
      sent += MiB;
      peak = Math.max(peak, rss());
      if (sent % (4 * MiB) === 0 && !tcpEnded) latencies.push(await echoTime(other, `during ${sent}`));
    }
    const end = await ended;
    collect?.();
    const growth = (Math.max(peak, rss()) - before) / MiB;
    console.log(
      `fragment flood (${engine}): closed with ${end.closeCode} after ${sent / MiB} MiB written; ` +
        `RSS +${growth.toFixed(1)} MiB; echo during the flood ${
          latencies.map((ms) => ms.toFixed(1)).join(", ")
        } ms`,
    );
    assert.equal(end.closeCode, 1009);
    assert.notEqual(end.tcp, "open");
    // Written is not read: the kernel's socket buffers hold several MiB on loopback.
    assert.ok(sent <= 32 * MiB, `the server took ${sent / MiB} MiB before closing`);
    assert.ok(growth < 32, `RSS grew ${growth.toFixed(1)} MiB`);
    await waitFor(() => server.counters.closed.messageTooBig === 1, 5000, "the 1009 to be counted");
    assert.ok((await echoTime(other, "after the flood")) < 250);
    other.close();
  },
);

test(
  "inbound pause: 10,000 pipelined messages of 16 KiB to a slow handler",
  { timeout: 120_000 },
  async () => {
    const COUNT = 10_000;
    const SIZE = 16 * 1024;
    const received: number[] = [];
    const ended = Promise.withResolvers<unknown>();
    await using server = startServer(async (ws) => {
      try {
        for await (const message of ws) {
          const bytes = message as Uint8Array;
          received.push(new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0));
          if (received.length % 32 === 0) await delay(2); // slower than the client writes
          if (received.length === COUNT) await ws.send("all read");
        }
        ended.resolve("returned");
      } catch (error) {
        ended.resolve(error);
      }
    }); // maxQueue 16, maxMessageSize 1 MiB: a budget of 16 MiB, a tenth of what is sent
    collect?.();
    const before = rss();
    let peak = before;
    const sampler = setInterval(() => peak = Math.max(peak, rss()), 10);
    const peer = await RawPeer.open(server.addr.port);
    const tcpEnd = peer.end(60_000);
    let tcpEnded = false;
    tcpEnd.then(() => tcpEnded = true);
    // Each message: a masked binary frame head (mask key 0, so the payload goes as it is), the index, zeros.
    const zeros = new Uint8Array(SIZE - 4);
    let waits = 0;
    const start = performance.now();
    for (let i = 0; i < COUNT && !tcpEnded; i++) {
      const head = Buffer.alloc(12);
      head.set([0x82, 0x80 | 126, SIZE >> 8, SIZE & 255, 0, 0, 0, 0]);
      head.writeUInt32BE(i, 8);
      if (await writeAll(peer.socket, [head, zeros], tcpEnd)) waits++;
    }
    if (engine === "ws") {
      const done = await peer.next(60_000);
      clearInterval(sampler);
      const ms = performance.now() - start;
      assert.equal(done?.payload.toString(), "all read");
      const growth = (peak - before) / MiB;
      console.log(
        `inbound pause (${engine}): ${COUNT} × 16 KiB read in ${ms.toFixed(0)} ms; the client waited ` +
          `${waits} times; server RSS peak +${growth.toFixed(1)} MiB`,
      );
      assert.equal(received.length, COUNT);
      assert.ok(received.every((index, i) => index === i), "messages lost or out of order");
      assert.equal(server.counters.closed.queueOverflow, 0);
      assert.equal(server.counters.droppedMessages, 0);
      assert.ok(waits > 0, "the client was never held back");
      // 160 MiB went through; the queue holds 16 messages and what one socket read brings.
      assert.ok(growth < 48, `RSS grew ${growth.toFixed(1)} MiB`);
      peer.destroy();
    } else {
      // Bun and Deno's native engine cannot stop reading: past the queue's budget, 1013 (README).
      await tcpEnd;
      clearInterval(sampler);
      const error = await within(ended.promise, 10_000, "the handler's end");
      console.log(`inbound pause (${engine}): closed after ${received.length} of ${COUNT} messages`);
      assert.equal(server.counters.closed.queueOverflow, 1);
      assert.ok(received.length < COUNT);
      assert.ok(error instanceof Error, String(error));
    }
  },
);

test("broadcast on the ws engine frames a message once: 100 subscribers of 512 KiB of text cost one frame", {
  timeout: 60_000,
  skip: engine === "ws" ? false : "Bun and Deno's native engine frame inside the runtime",
}, async () => {
  const SUBSCRIBERS = 100;
  await using server = startServer(async (ws) => {
    ws.subscribe("news");
    await ws.closed;
  });
  const peers = await Promise.all(Array.from({ length: SUBSCRIBERS }, () => RawPeer.open(server.addr.port)));
  await waitFor(() => server.subscribers("news") === SUBSCRIBERS, 5000, "the subscribers");
  const text = "é".repeat(256 * 1024); // 512 KiB of UTF-8: a frame per subscriber would be 50 MiB
  collect?.();
  const before = process.memoryUsage().external;
  const result = broadcast(server.connections, text);
  const after = process.memoryUsage().external;
  const growth = (after - before) / MiB;
  console.log(
    `broadcast (${engine}): 512 KiB to ${SUBSCRIBERS} sockets; external memory +${growth.toFixed(1)} MiB`,
  );
  assert.deepEqual(result, { sent: SUBSCRIBERS, skipped: 0 });
  assert.ok(growth < 8, `external memory grew ${growth.toFixed(1)} MiB`);
  // Every subscriber gets the same, whole frame.
  for (const peer of peers) {
    const received = await peer.next(10_000);
    assert.equal(received?.opcode, 1);
    assert.equal(received?.payload.length, 512 * 1024);
    assert.ok(received?.payload.equals(Buffer.from(text)));
  }
  // The same through a topic: a second publish while every peer has read the first.
  const published = await server.publish("news", text);
  assert.deepEqual(published, { delivered: SUBSCRIBERS, skipped: 0 });
  for (const peer of peers) assert.equal((await peer.next(10_000))?.payload.length, 512 * 1024);
  for (const peer of peers) peer.destroy();
});
