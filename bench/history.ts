/**
 * What topic history costs: publish with and without it (in memory, and
 * through Redis when `redis-server` is on the PATH and the Redis backend keeps
 * history), replay speed, and memory per stored message.
 *
 *   deno run -A --v8-flags=--expose-gc bench/history.ts [--json] [--messages N]
 *   (npm run bench:history)
 *
 * Publish: N messages (default 20,000) of 100 bytes to a topic with 10 subscribers (real
 * WebSocket clients in this process, counting what they receive), published
 * in batches of 500 that are awaited; the time runs until every subscriber has
 * received every message; without and with history alternate, 5 times
 * each (`--reps`), and the medians are reported. Replay: a topic keeping 20,000 messages; one client
 * subscribes from the first with `jsonEnvelope`; the time runs from the
 * subscribe request to its last message. Memory: the heap after storing
 * 200,000 messages of 100 bytes over 100 topics, minus before, divided by the
 * count (after a GC on each side when --expose-gc is given).
 *
 * @module
 */
import process from "node:process";
import { spawnSync } from "node:child_process";
import { answerTopicRequest, type Connection, type PubSubBackend, serve, type ServeOptions } from "../mod.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? Number(args[index + 1]) : fallback;
};
const MESSAGES = option("messages", 20_000);
const SUBSCRIBERS = 10;
const BATCH = 500;
const REPLAY = 20_000;
const STORED = 200_000;
const PAYLOAD = "x".repeat(100);
const REPS = option("reps", 5);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const gc = (globalThis as { gc?: () => void }).gc;

function startFeed(options: ServeOptions) {
  return serve(async (ws: Connection) => {
    ws.subscribe("bench");
    for await (const message of ws) await answerTopicRequest(ws, message, { allow: () => true });
  }, { hostname: "127.0.0.1", port: 0, ...options });
}

/** A client that counts messages and resolves once it has `target`. */
function counter(url: string) {
  const socket = new WebSocket(url);
  let count = 0;
  let target = Infinity;
  let reached: (() => void) | undefined;
  socket.onmessage = () => {
    if (++count >= target) reached?.();
  };
  return {
    socket,
    opened: new Promise<void>((resolve) => (socket.onopen = () => resolve())),
    until(n: number) {
      target = n;
      return count >= n ? Promise.resolve() : new Promise<void>((resolve) => (reached = resolve));
    },
  };
}

/** Messages per second of publishing to 10 subscribers, with or without a history rule. */
async function publishRate(options: ServeOptions): Promise<number> {
  const server = startFeed(options);
  const url = `ws://127.0.0.1:${server.addr.port}/`;
  const clients = Array.from({ length: SUBSCRIBERS }, () => counter(url));
  await Promise.all(clients.map((client) => client.opened));
  while (server.subscribers("bench") < SUBSCRIBERS) await new Promise((r) => setTimeout(r, 5));
  const started = performance.now();
  for (let sent = 0; sent < MESSAGES; sent += BATCH) {
    const batch = [];
    for (let i = 0; i < BATCH; i++) batch.push(server.publish("bench", PAYLOAD));
    await Promise.all(batch);
  }
  await Promise.all(clients.map((client) => client.until(MESSAGES)));
  const seconds = (performance.now() - started) / 1000;
  for (const client of clients) client.socket.close();
  await server.close();
  return MESSAGES / seconds;
}

/** Messages per second of one subscriber's replay of REPLAY stored messages. */
async function replayRate(): Promise<number> {
  const server = startFeed({ history: { "kept": { size: REPLAY } } });
  let first;
  for (let i = 0; i < REPLAY; i++) {
    const { position } = await server.publish("kept", PAYLOAD);
    first ??= position!;
  }
  const client = counter(`ws://127.0.0.1:${server.addr.port}/`);
  await client.opened;
  const started = performance.now();
  client.socket.send(JSON.stringify({ subscribe: "kept", since: { epoch: first!.epoch, offset: 0 } }));
  await client.until(REPLAY + 1); // the messages and the answer
  const seconds = (performance.now() - started) / 1000;
  client.socket.close();
  await server.close();
  return REPLAY / seconds;
}

/** Heap bytes per stored message. */
async function bytesPerMessage(): Promise<number> {
  const server = startFeed({ history: { "t:*": { size: STORED } } });
  gc?.();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < STORED; i++) {
    server.publish(`t:${i % 100}`, `${PAYLOAD.slice(8)}${String(i).padStart(8, "0")}`);
  }
  gc?.();
  const after = process.memoryUsage().heapUsed;
  const read = await server.history("t:0", { limit: 1 }); // keeps the store alive up to here
  if (read.messages.length !== 1) throw new Error("nothing stored");
  await server.close();
  return (after - before) / STORED;
}

/** A Redis server for the Redis rows, if redis-server exists and the backend keeps history. */
async function redisRows(): Promise<Record<string, number> | string> {
  if (spawnSync("sh", ["-c", "command -v redis-server"]).status !== 0) return "redis-server not installed";
  const { redisBackend } = await import("../redis.ts");
  const { RedisServer } = await import("../tests/redis_server.ts");
  const probe: PubSubBackend = redisBackend("redis://127.0.0.1:1", { onStatus() {}, connectTimeout: 1 });
  const keeps = probe.history !== undefined;
  await probe.close();
  if (!keeps) return "redisBackend keeps no history (yet)";
  const redis = await RedisServer.start();
  try {
    const without = await publishRate({ pubsub: redisBackend(redis.url) });
    const withHistory = await publishRate({
      pubsub: redisBackend(redis.url),
      history: { bench: { size: 1000 } },
    });
    return { "publish, Redis, no history (msg/s)": without, "publish, Redis, history (msg/s)": withHistory };
  } finally {
    await redis.stop();
  }
}

const started = Date.now();
const rows: Record<string, number> = {};
// Without and with alternate, REPS times each; the median of each is reported (the first runs warm up).
const without: number[] = [];
const withHistory: number[] = [];
for (let rep = 0; rep < REPS; rep++) {
  without.push(await publishRate({}));
  withHistory.push(await publishRate({ history: { bench: { size: 1000 } } }));
}
rows["publish, memory, no history (msg/s)"] = median(without);
rows["publish, memory, history size 1000 (msg/s)"] = median(withHistory);
const redis = await redisRows();
if (typeof redis === "object") Object.assign(rows, redis);
rows["replay with jsonEnvelope (msg/s)"] = await replayRate();
rows["heap per stored 100-byte message (bytes)"] = await bytesPerMessage();

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
console.log(
  `history bench (${runtime}, ${MESSAGES} messages, ${SUBSCRIBERS} subscribers; ${
    gc ? "" : "no "
  }--expose-gc)`,
);
for (const [name, value] of Object.entries(rows)) {
  console.log(`${name.padEnd(48)} ${Math.round(value).toLocaleString("en")}`);
}
if (typeof redis === "string") console.log(`Redis rows skipped: ${redis}`);
console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`);
if (args.includes("--json")) {
  console.log(
    JSON.stringify({
      bench: "history",
      runtime,
      messages: MESSAGES,
      subscribers: SUBSCRIBERS,
      rows,
      redis: typeof redis === "string" ? redis : "measured",
    }),
  );
}
process.exit(0);
